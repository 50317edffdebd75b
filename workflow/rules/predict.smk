rule predict:
    input:
        checkpoint=f"{RESULTS}/train/{{model}}/fold{{fold}}/checkpoint.pt",
        index=f"{RESULTS}/index/eval_photos.csv",
        cache=get_image_cache("eval"),
        age_cuts=get_age_cuts,
    output:
        f"{RESULTS}/predict/{{model}}/fold{{fold}}/eval_logits.csv",
    log:
        f"{RESULTS}/logs/predict/{{model}}/fold{{fold}}.log",
    params:
        tta=config["tta"],
        code=code_digest("facemask.inference"),
    threads: config["threads"]["predict"]
    resources:
        gpu=1,
    conda:
        "../../envs/gpu.yaml"
    script:
        "../../scripts/predict.py"


rule fit_age_cuts:
    input:
        oof_logits=expand(f"{RESULTS}/train/{{model}}/fold{{fold}}/oof_logits.csv", fold=FOLDS, allow_missing=True),
        train_index=f"{RESULTS}/index/train_photos.csv",
    output:
        f"{RESULTS}/train/{{model}}/age_cuts.json",
    log:
        f"{RESULTS}/logs/fit_age_cuts/{{model}}.log",
    params:
        folds=FOLDS,
        match_class_shares=config["ensemble"]["match_class_shares"],
        code=code_digest("facemask.ensemble"),
    conda:
        "../../envs/cpu.yaml"
    script:
        "../../scripts/fit_age_cuts.py"
