# One rule per stage for both rounds: {results} is the round's folder, RESULTS for the first round,
# PSEUDO for the second (config pseudo_labels), whose train jobs also read the pseudo labels.


rule train:
    input:
        unpack(get_pseudo_inputs),
        index=index_output("train"),
        folds=f"{RESULTS}/folds.csv",
        cache=get_image_cache("train"),
    output:
        checkpoint=train_output("checkpoint.pt"),
        oof_logits=train_output("oof_logits.csv"),
        history=train_output("history.csv"),
    log:
        "{results}/logs/train/{model}/fold{fold}.log",
    benchmark:
        train_benchmark()
    params:
        settings=get_model_settings,
        round=round_of,
        seed=SETTINGS.seed,
        age_bins=list(SETTINGS.age_bins),
        device=SETTINGS.device,
        code=code_digest("train.py"),
    threads: SETTINGS.threads.train
    retries: 1
    resources:
        gpu=1,
    conda:
        "../../envs/gpu.yaml"
    script:
        "../../scripts/train.py"
