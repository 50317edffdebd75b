rule train:
    input:
        index=f"{RESULTS}/index/train_photos.csv",
        folds=f"{RESULTS}/folds.csv",
        cache=get_image_cache("train"),
        # not read: orders the eval photos' check before any training, and as ancient() an
        # eval-side change never retrains
        eval_checked=ancient(f"{RESULTS}/index/eval_photos.csv"),
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
        code=code_digest("train.py"),
    threads: config["threads"]["train"]
    retries: 1
    resources:
        gpu=1,
    conda:
        "../../envs/gpu.yaml"
    script:
        "../../scripts/train.py"
