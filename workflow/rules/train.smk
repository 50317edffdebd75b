rule train:
    input:
        index=f"{RESULTS}/index/train_photos.csv",
        folds=f"{RESULTS}/folds.csv",
        cache=get_image_cache("train"),
    output:
        checkpoint=f"{RESULTS}/train/{{model}}/fold{{fold}}/checkpoint.pt",
        oof_logits=f"{RESULTS}/train/{{model}}/fold{{fold}}/oof_logits.csv",
        history=f"{RESULTS}/train/{{model}}/fold{{fold}}/history.csv",
    log:
        f"{RESULTS}/logs/train/{{model}}/fold{{fold}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{model}}/fold{{fold}}.tsv"
    params:
        settings=get_model_settings,
        seed=config["seed"],
        age_bins=config["age_bins"],
        device=config["device"],
        match_class_shares=config["ensemble"]["match_class_shares"],
        code=code_digest("train.py"),
    threads: config["threads"]["train"]
    retries: 1
    resources:
        gpu=1,
    conda:
        "../../envs/gpu.yaml"
    script:
        "../../scripts/train.py"
