# The second round (config pseudo_labels): the first round's fold votes label eval photos, the
# chosen blocks train again on them beside the training photos, and vote as the first round does,
# by the same rules with PSEUDO as their {results} folder, so that a change of its settings reruns
# nothing of the first round. Here: its labels, and the two rounds side by side.


rule pseudo_labels:
    input:
        bundle=bundle_output(RESULTS),
        eval_logits=member_files(predict_output("eval_logits.csv", RESULTS)),
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
    localrule: True
    script:
        "../../scripts/pseudo_labels.py"


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
    localrule: True
    script:
        "../../scripts/compare_rounds.py"
