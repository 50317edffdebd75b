rule ensemble_bundle:
    input:
        checkpoints=member_files(f"{RESULTS}/train/{{model}}/fold{{fold}}/checkpoint.pt"),
        eval_logits=member_files(f"{RESULTS}/predict/{{model}}/fold{{fold}}/eval_logits.csv"),
        oof_logits=member_files(f"{RESULTS}/train/{{model}}/fold{{fold}}/oof_logits.csv"),
        age_cuts=get_all_age_cuts(),
        index=f"{RESULTS}/index/eval_photos.csv",
        train_index=f"{RESULTS}/index/train_photos.csv",
    output:
        f"{RESULTS}/ensemble/ensemble.json",
    log:
        f"{RESULTS}/logs/ensemble_bundle.log",
    params:
        members=member_files("{model}/{fold}"),
        weights=get_ensemble_weights(),
        fit_weights=config["ensemble"]["fit_weights"],
        age_cut_models=get_age_cut_models(),
        match_class_shares=config["ensemble"]["match_class_shares"],
        tta=config["tta"],
        cache=config["cache"],
        age_bins=config["age_bins"],
        code=code_digest("ensemble_bundle.py"),
    conda:
        "../../envs/gpu.yaml"
    script:
        "../../scripts/ensemble_bundle.py"


rule soft_vote:
    input:
        bundle=f"{RESULTS}/ensemble/ensemble.json",
        eval_logits=member_files(f"{RESULTS}/predict/{{model}}/fold{{fold}}/eval_logits.csv"),
        index=f"{RESULTS}/index/eval_photos.csv",
    output:
        report(f"{RESULTS}/submission.csv", caption="../report/submission.rst", category="Submission"),
    log:
        f"{RESULTS}/logs/soft_vote.log",
    params:
        members=member_files("{model}/{fold}"),
        code=code_digest("soft_vote.py"),
    conda:
        "../../envs/cpu.yaml"
    script:
        "../../scripts/soft_vote.py"
