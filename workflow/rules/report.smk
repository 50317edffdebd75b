rule cv_summary:
    input:
        member_files(f"{RESULTS}/train/{{model}}/fold{{fold}}/oof_logits.csv"),
    output:
        csv=f"{RESULTS}/cv_scores.csv",
        markdown=f"{RESULTS}/cv_scores.md",
    log:
        f"{RESULTS}/logs/cv_summary.log",
    params:
        members=member_files("{model}/{fold}"),
        weights=get_ensemble_weights(),
        code=code_digest("facemask.report"),
    conda:
        "../../envs/facemask.yaml"
    script:
        "../../scripts/cv_summary.py"


rule score_submission:
    input:
        submission=f"{RESULTS}/submission.csv",
        answers=config["eval_labels"] or [],
    output:
        f"{RESULTS}/eval_scores.json",
    log:
        f"{RESULTS}/logs/score_submission.log",
    params:
        code=code_digest("facemask.report"),
    conda:
        "../../envs/facemask.yaml"
    script:
        "../../scripts/score_submission.py"
