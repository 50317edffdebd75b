rule fit_age_cuts:
    input:
        oof_logits=expand(train_output("oof_logits.csv"), fold=FOLDS, allow_missing=True),
        train_index=index_output("train"),
    output:
        age_cuts_output(),
    log:
        "{results}/logs/fit_age_cuts/{model}.log",
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
        checkpoints=round_files(train_output, "checkpoint.pt"),
        eval_logits=round_files(predict_output, "eval_logits.csv"),
        oof_logits=round_files(train_output, "oof_logits.csv"),
        age_cuts=get_round_age_cuts,
        index=index_output("eval"),
        train_index=index_output("train"),
        faces=get_faces("eval"),
    output:
        bundle_output(),
    log:
        "{results}/logs/ensemble_bundle.log",
    params:
        members=get_round_members,
        vote=get_vote,
        tta=as_config(SETTINGS.tta),
        cache=as_config(SETTINGS.cache.pixel_form),
        age_bins=list(SETTINGS.age_bins),
        code=code_digest("ensemble_bundle.py"),
    conda:
        "../../envs/gpu.yaml"
    localrule: True
    script:
        "../../scripts/ensemble_bundle.py"


rule soft_vote:
    input:
        bundle=bundle_output(),
        eval_logits=round_files(predict_output, "eval_logits.csv"),
        index=index_output("eval"),
    output:
        report("{results}/submission.csv", caption="../report/submission.rst", category="Submission"),
    log:
        "{results}/logs/soft_vote.log",
    params:
        members=get_round_members,
        code=code_digest("soft_vote.py"),
    conda:
        "../../envs/cpu.yaml"
    localrule: True
    script:
        "../../scripts/soft_vote.py"
