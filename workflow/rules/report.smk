rule cv_summary:
    input:
        oof_logits=round_files(train_output, "oof_logits.csv"),
        histories=round_files(train_output, "history.csv"),
        train_index=index_output("train"),
    output:
        csv=report("{results}/cv_scores.csv", caption="../report/cv_scores.rst", category="Cross-validation"),
        markdown="{results}/cv_scores.md",
    log:
        "{results}/logs/cv_summary.log",
    params:
        members=get_round_members,
        vote=get_vote,
        code=code_digest("cv_summary.py"),
    conda:
        "../../envs/cpu.yaml"
    localrule: True
    script:
        "../../scripts/cv_summary.py"


rule plot_crops:
    input:
        cache=get_first_cache("train.npy"),
        crops=get_first_cache("train_crops.csv"),
    output:
        report(f"{RESULTS}/plots/crops.png", caption="../report/crops.rst", category="Data"),
    log:
        f"{RESULTS}/logs/plot_crops.log",
    params:
        seed=SETTINGS.seed,
        code=code_digest("plot_crops.py"),
    conda:
        "../../envs/cpu.yaml"
    localrule: True
    script:
        "../../scripts/plot_crops.py"


rule plot_training_curves:
    input:
        expand(train_output("history.csv", RESULTS), fold=FOLDS, allow_missing=True),
    output:
        report(
            f"{RESULTS}/plots/training_curves_{{model}}.png",
            caption="../report/training_curves.rst",
            category="Training curves",
            subcategory="{model}",
        ),
    log:
        f"{RESULTS}/logs/plot_training_curves/{{model}}.log",
    params:
        folds=FOLDS,
        code=code_digest("plot_training_curves.py"),
    conda:
        "../../envs/cpu.yaml"
    localrule: True
    script:
        "../../scripts/plot_training_curves.py"


rule plot_oof:
    input:
        oof_logits=member_files(train_output("oof_logits.csv", RESULTS)),
        train_index=index_output("train"),
    output:
        confusion=report(
            f"{RESULTS}/plots/oof_confusion_matrix.png",
            caption="../report/oof_confusion_matrix.rst",
            category="Cross-validation",
        ),
        class_f1=report(
            f"{RESULTS}/plots/oof_class_f1.png",
            caption="../report/oof_class_f1.rst",
            category="Cross-validation",
        ),
    log:
        f"{RESULTS}/logs/plot_oof.log",
    params:
        members=get_members(),
        vote=get_vote,
        code=code_digest("plot_oof.py"),
    conda:
        "../../envs/cpu.yaml"
    localrule: True
    script:
        "../../scripts/plot_oof.py"


rule plot_class_distribution:
    input:
        index=index_output("train"),
        submission=f"{RESULTS}/submission.csv",
    output:
        report(
            f"{RESULTS}/plots/class_distribution.png",
            caption="../report/class_distribution.rst",
            category="Submission",
        ),
    log:
        f"{RESULTS}/logs/plot_class_distribution.log",
    params:
        code=code_digest("plot_class_distribution.py"),
    conda:
        "../../envs/cpu.yaml"
    localrule: True
    script:
        "../../scripts/plot_class_distribution.py"


rule score_submission:
    input:
        submission="{results}/submission.csv",
        eval_logits=round_files(predict_output, "eval_logits.csv"),
        index=index_output("eval"),
        answers=SETTINGS.eval_labels or [],
        train_index=index_output("train"),
    output:
        json=report("{results}/eval_scores.json", caption="../report/eval_scores.rst", category="Submission"),
        csv=report(
            "{results}/eval_scores.csv", caption="../report/eval_scores_by_model.rst", category="Submission"
        ),
        markdown="{results}/eval_scores.md",
    log:
        "{results}/logs/score_submission.log",
    params:
        members=get_round_members,
        vote=get_vote,
        code=code_digest("score_submission.py"),
    conda:
        "../../envs/cpu.yaml"
    localrule: True
    script:
        "../../scripts/score_submission.py"
