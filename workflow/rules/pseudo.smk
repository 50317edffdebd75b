# The second round (config pseudo_labels): the first round's fold votes label eval photos, the
# chosen blocks train again on them beside the training photos, and vote as the first round does.
# Its outputs live under PSEUDO, so that a change of its settings reruns nothing of the first round.


rule pseudo_labels:
    input:
        bundle=f"{RESULTS}/ensemble/ensemble.json",
        eval_logits=member_files(predict_output("eval_logits.csv")),
        index=index_output("eval"),
        train_index=index_output("train"),
    output:
        f"{PSEUDO}/labels.csv",
    log:
        f"{PSEUDO}/logs/pseudo_labels.log",
    params:
        members=get_members(),
        threshold=SETTINGS.pseudo_labels.threshold if SETTINGS.pseudo_labels else None,
        age_bins=list(SETTINGS.age_bins),
        seed=SETTINGS.seed,
        code=code_digest("pseudo_labels.py"),
    conda:
        "../../envs/cpu.yaml"
    script:
        "../../scripts/pseudo_labels.py"


use rule train as train_pseudo with:
    input:
        index=index_output("train"),
        folds=f"{RESULTS}/folds.csv",
        cache=get_image_cache("train"),
        pseudo_labels=f"{PSEUDO}/labels.csv",
        eval_index=index_output("eval"),
        eval_cache=get_image_cache("eval"),
    output:
        checkpoint=train_output("checkpoint.pt", PSEUDO),
        oof_logits=train_output("oof_logits.csv", PSEUDO),
        history=train_output("history.csv", PSEUDO),
    log:
        f"{PSEUDO}/logs/train/{{model}}/fold{{fold}}.log",
    benchmark:
        f"{PSEUDO}/benchmarks/train/{{model}}/fold{{fold}}.tsv"


use rule fit_age_cuts as fit_age_cuts_pseudo with:
    input:
        oof_logits=expand(train_output("oof_logits.csv", PSEUDO), fold=FOLDS, allow_missing=True),
        train_index=index_output("train"),
    output:
        age_cuts_output(results=PSEUDO),
    log:
        f"{PSEUDO}/logs/fit_age_cuts/{{model}}.log",


use rule predict_eval as predict_eval_pseudo with:
    input:
        checkpoint=train_output("checkpoint.pt", PSEUDO),
        index=index_output("eval"),
        cache=get_image_cache("eval"),
        age_cuts=get_age_cuts_of(PSEUDO),
    output:
        predict_output("eval_logits.csv", PSEUDO),
    log:
        f"{PSEUDO}/logs/predict/{{model}}/fold{{fold}}.log",
    benchmark:
        f"{PSEUDO}/benchmarks/predict/{{model}}/fold{{fold}}.tsv"


use rule ensemble_bundle as ensemble_bundle_pseudo with:
    input:
        checkpoints=member_files(train_output("checkpoint.pt", PSEUDO), PSEUDO_MODELS),
        eval_logits=member_files(predict_output("eval_logits.csv", PSEUDO), PSEUDO_MODELS),
        oof_logits=member_files(train_output("oof_logits.csv", PSEUDO), PSEUDO_MODELS),
        age_cuts=get_all_age_cuts(PSEUDO_MODELS, PSEUDO),
        index=index_output("eval"),
        train_index=index_output("train"),
    output:
        f"{PSEUDO}/ensemble/ensemble.json",
    log:
        f"{PSEUDO}/logs/ensemble_bundle.log",
    params:
        members=get_members(PSEUDO_MODELS),
        weights=get_ensemble_weights(PSEUDO_MODELS),
        age_cut_models=get_age_cut_models(PSEUDO_MODELS),


use rule soft_vote as soft_vote_pseudo with:
    input:
        bundle=f"{PSEUDO}/ensemble/ensemble.json",
        eval_logits=member_files(predict_output("eval_logits.csv", PSEUDO), PSEUDO_MODELS),
        index=index_output("eval"),
    output:
        f"{PSEUDO}/submission.csv",
    log:
        f"{PSEUDO}/logs/soft_vote.log",
    params:
        members=get_members(PSEUDO_MODELS),


use rule cv_summary as cv_summary_pseudo with:
    input:
        oof_logits=member_files(train_output("oof_logits.csv", PSEUDO), PSEUDO_MODELS),
        histories=member_files(train_output("history.csv", PSEUDO), PSEUDO_MODELS),
        train_index=index_output("train"),
    output:
        csv=f"{PSEUDO}/cv_scores.csv",
        markdown=f"{PSEUDO}/cv_scores.md",
    log:
        f"{PSEUDO}/logs/cv_summary.log",
    params:
        members=get_members(PSEUDO_MODELS),
        weights=get_ensemble_weights(PSEUDO_MODELS),
        age_cut_models=get_age_cut_models(PSEUDO_MODELS),


use rule score_submission as score_submission_pseudo with:
    input:
        submission=f"{PSEUDO}/submission.csv",
        eval_logits=member_files(predict_output("eval_logits.csv", PSEUDO), PSEUDO_MODELS),
        index=index_output("eval"),
        answers=SETTINGS.eval_labels or [],
        train_index=index_output("train"),
    output:
        json=f"{PSEUDO}/eval_scores.json",
        csv=f"{PSEUDO}/eval_scores.csv",
        markdown=f"{PSEUDO}/eval_scores.md",
    log:
        f"{PSEUDO}/logs/score_submission.log",
    params:
        members=get_members(PSEUDO_MODELS),


rule compare_rounds:
    input:
        cv_scores=[f"{RESULTS}/cv_scores.csv", f"{PSEUDO}/cv_scores.csv"],
        eval_scores=(
            [f"{RESULTS}/eval_scores.csv", f"{PSEUDO}/eval_scores.csv"] if SETTINGS.eval_labels else []
        ),
        labels=f"{PSEUDO}/labels.csv",
    output:
        csv=report(f"{PSEUDO}/rounds.csv", caption="../report/rounds.rst", category="Pseudo-labels"),
        markdown=f"{PSEUDO}/rounds.md",
    log:
        f"{PSEUDO}/logs/compare_rounds.log",
    params:
        code=code_digest("compare_rounds.py"),
    conda:
        "../../envs/cpu.yaml"
    script:
        "../../scripts/compare_rounds.py"
