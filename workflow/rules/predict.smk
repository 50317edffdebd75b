rule predict_eval:
    input:
        checkpoint=f"{RESULTS}/train/{{model}}/fold{{fold}}/checkpoint.pt",
        index=f"{RESULTS}/index/eval_photos.csv",
        cache=get_image_cache("eval"),
        age_cuts=get_age_cuts,
    output:
        f"{RESULTS}/predict/{{model}}/fold{{fold}}/eval_logits.csv",
    log:
        f"{RESULTS}/logs/predict/{{model}}/fold{{fold}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/predict/{{model}}/fold{{fold}}.tsv"
    params:
        tta=config["tta"],
        device=config["device"],
        code=code_digest("predict_eval.py"),
    threads: config["threads"]["predict"]
    retries: 1
    resources:
        gpu=1,
    conda:
        "../../envs/gpu.yaml"
    script:
        "../../scripts/predict_eval.py"


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
        code=code_digest("fit_age_cuts.py"),
    conda:
        "../../envs/cpu.yaml"
    script:
        "../../scripts/fit_age_cuts.py"


rule predict_photos:
    input:
        bundle=f"{RESULTS}/ensemble/ensemble.json",
        checkpoints=member_files(f"{RESULTS}/train/{{model}}/fold{{fold}}/checkpoint.pt"),
    output:
        f"{RESULTS}/predictions/{{name}}/predictions.csv",
    log:
        f"{RESULTS}/logs/predict_photos/{{name}}.log",
    params:
        folder=get_predict_set_folder,
        photos=get_predict_set_listing,
        device=config["device"],
        code=code_digest("predict_photos.py"),
    threads: config["threads"]["predict"]
    retries: 1
    resources:
        gpu=1,
    conda:
        "../../envs/gpu.yaml"
    script:
        "../../scripts/predict_photos.py"
