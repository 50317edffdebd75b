rule index_photos:
    input:
        get_index_input,
    output:
        photos=f"{RESULTS}/index/{{split}}_photos.csv",
        report=f"{RESULTS}/index/{{split}}_data_report.json",
    log:
        f"{RESULTS}/logs/index_photos/{{split}}.log",
    params:
        data_dir=DATA,
        photos=get_photo_listing,
        age_bins=config["age_bins"],
        skip_unreadable_photos=config["skip_unreadable_photos"],
        code=code_digest("index_photos.py"),
    conda:
        "../../envs/cpu.yaml"
    script:
        "../../scripts/index_photos.py"
