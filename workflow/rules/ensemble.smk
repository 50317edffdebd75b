rule fit_age_cuts:
    input:
        oof_logits=expand(train_output("oof_logits.csv"), fold=FOLDS, allow_missing=True),
        train_index=index_output("train"),
    output:
        age_cuts_output(),
    log:
        f"{RESULTS}/logs/fit_age_cuts/{{model}}.log",
    params:
        folds=FOLDS,
        match_class_shares=SETTINGS.ensemble.match_class_shares,
        code=code_digest("fit_age_cuts.py"),
    conda:
        "../../envs/cpu.yaml"
    script:
        "../../scripts/fit_age_cuts.py"


rule ensemble_bundle:
    input:
        checkpoints=member_files(train_output("checkpoint.pt")),
        eval_logits=member_files(predict_output("eval_logits.csv")),
        oof_logits=member_files(train_output("oof_logits.csv")),
        age_cuts=get_all_age_cuts(),
        index=index_output("eval"),
        train_index=index_output("train"),
    output:
        f"{RESULTS}/ensemble/ensemble.json",
    log:
        f"{RESULTS}/logs/ensemble_bundle.log",
    params:
        members=get_members(),
        weights=get_ensemble_weights(),
        fit_weights=SETTINGS.ensemble.fit_weights,
        vote=SETTINGS.ensemble.fitted,
        age_cut_models=get_age_cut_models(),
        match_class_shares=SETTINGS.ensemble.match_class_shares,
        tta=as_config(SETTINGS.tta),
        cache=as_config(SETTINGS.cache),
        age_bins=list(SETTINGS.age_bins),
        code=code_digest("ensemble_bundle.py"),
    conda:
        "../../envs/gpu.yaml"
    script:
        "../../scripts/ensemble_bundle.py"


rule soft_vote:
    input:
        bundle=f"{RESULTS}/ensemble/ensemble.json",
        eval_logits=member_files(predict_output("eval_logits.csv")),
        index=index_output("eval"),
    output:
        report(f"{RESULTS}/submission.csv", caption="../report/submission.rst", category="Submission"),
    log:
        f"{RESULTS}/logs/soft_vote.log",
    params:
        members=get_members(),
        code=code_digest("soft_vote.py"),
    conda:
        "../../envs/cpu.yaml"
    script:
        "../../scripts/soft_vote.py"
