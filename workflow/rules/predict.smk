rule predict_eval:
    input:
        checkpoint=train_output("checkpoint.pt"),
        index=index_output("eval"),
        cache=get_image_cache("eval"),
        age_cuts=get_age_cuts,
    output:
        predict_output("eval_logits.csv"),
    log:
        "{results}/logs/predict/{model}/fold{fold}.log",
    benchmark:
        "{results}/benchmarks/predict/{model}/fold{fold}.tsv"
    params:
        tta=as_config(SETTINGS.tta),
        device=SETTINGS.device,
        code=code_digest("predict_eval.py"),
    threads: SETTINGS.threads.predict
    retries: 1
    resources:
        gpu=1,
    conda:
        "../../envs/gpu.yaml"
    script:
        "../../scripts/predict_eval.py"


rule predict_photos:
    input:
        bundle=bundle_output(RESULTS),
        checkpoints=member_files(train_output("checkpoint.pt", RESULTS)),
    output:
        f"{RESULTS}/predictions/{{name}}/predictions.csv",
    log:
        f"{RESULTS}/logs/predict_photos/{{name}}.log",
    params:
        folder=get_predict_set_folder,
        photos=get_predict_set_listing,
        device=SETTINGS.device,
        code=code_digest("predict_photos.py"),
    threads: SETTINGS.threads.predict
    retries: 1
    resources:
        gpu=1,
    conda:
        "../../envs/gpu.yaml"
    script:
        "../../scripts/predict_photos.py"
