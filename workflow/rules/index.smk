rule index_photos:
    input:
        get_index_input,
    output:
        photos=index_output("{split}"),
        report=f"{RESULTS}/index/{{split}}_data_report.json",
    log:
        f"{RESULTS}/logs/index_photos/{{split}}.log",
    params:
        data_dir=DATA,
        photos=get_photo_listing,
        age_bins=list(SETTINGS.age_bins),
        skip_unreadable_photos=SETTINGS.skip_unreadable_photos,
        min_photo_side=SETTINGS.min_photo_side,
        code=code_digest("index_photos.py"),
    conda:
        "../../envs/cpu.yaml"
    localrule: True
    script:
        "../../scripts/index_photos.py"
