rule prepare_images:
    input:
        train=f"{RESULTS}/index/train_photos.csv",
        eval=f"{RESULTS}/index/eval_photos.csv",
    output:
        train=f"{RESULTS}/cache/{{size}}/train.npy",
        eval=f"{RESULTS}/cache/{{size}}/eval.npy",
        crops=f"{RESULTS}/cache/{{size}}/crops.csv",
        report=f"{RESULTS}/cache/{{size}}/cache_report.json",
    log:
        f"{RESULTS}/logs/prepare_images/{{size}}.log",
    params:
        data_dir=DATA,
        cache=get_cache_settings(),
        code=code_digest("facemask.cache"),
    threads: config["threads"]["prepare"]
    conda:
        "../../envs/cpu.yaml"
    script:
        "../../scripts/prepare_images.py"
