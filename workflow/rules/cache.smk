rule prepare_images:
    input:
        index_output("{split}"),
    output:
        cache=f"{RESULTS}/cache/{{size}}/{{split}}.npy",
        crops=f"{RESULTS}/cache/{{size}}/{{split}}_crops.csv",
        report=f"{RESULTS}/cache/{{size}}/{{split}}_report.json",
    log:
        f"{RESULTS}/logs/prepare_images/{{size}}_{{split}}.log",
    params:
        data_dir=DATA,
        cache=get_cache_settings(),
        code=code_digest("prepare_images.py"),
    threads: SETTINGS.threads.prepare
    conda:
        get_cache_env()
    script:
        "../../scripts/prepare_images.py"
