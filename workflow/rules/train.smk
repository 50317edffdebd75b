rule train:
    input:
        index=index_output("train"),
        folds=f"{RESULTS}/folds.csv",
        cache=get_image_cache("train"),
    output:
        checkpoint=train_output("checkpoint.pt"),
        oof_logits=train_output("oof_logits.csv"),
        history=train_output("history.csv"),
    log:
        f"{RESULTS}/logs/train/{{model}}/fold{{fold}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{model}}/fold{{fold}}.tsv"
    params:
        settings=get_model_settings,
        seed=SETTINGS.seed,
        age_bins=list(SETTINGS.age_bins),
        device=SETTINGS.device,
        match_class_shares=SETTINGS.ensemble.match_class_shares,
        code=code_digest("train.py"),
    threads: SETTINGS.threads.train
    retries: 1
    resources:
        gpu=1,
    conda:
        "../../envs/gpu.yaml"
    script:
        "../../scripts/train.py"
