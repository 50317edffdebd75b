rule soft_vote:
    input:
        eval_logits=member_files(f"{RESULTS}/predict/{{model}}/fold{{fold}}/eval_logits.csv"),
        oof_logits=member_files(f"{RESULTS}/train/{{model}}/fold{{fold}}/oof_logits.csv"),
        index=f"{RESULTS}/index/eval_photos.csv",
        train_index=f"{RESULTS}/index/train_photos.csv",
    output:
        report(f"{RESULTS}/submission.csv", caption="../report/submission.rst", category="Submission"),
    log:
        f"{RESULTS}/logs/soft_vote.log",
    params:
        members=member_files("{model}/{fold}"),
        weights=get_ensemble_weights(),
        fit_weights=config["ensemble"]["fit_weights"],
        age_cut_models=get_age_cut_models(),
        match_class_shares=config["ensemble"]["match_class_shares"],
        code=code_digest("facemask.report"),
    conda:
        "../../envs/cpu.yaml"
    script:
        "../../scripts/soft_vote.py"
