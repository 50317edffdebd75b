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
    params:
        settings=get_model_settings,
        seed=config["seed"],
        age_bins=config["age_bins"],
        code=code_digest("facemask.training"),
    threads: config["threads"]["train"]
    resources:
        gpu=1,
    conda:
        "../../envs/gpu.yaml"
    script:
        "../../scripts/train.py"
