rule make_folds:
    input:
        index_output("train"),
    output:
        f"{RESULTS}/folds.csv",
    log:
        f"{RESULTS}/logs/make_folds.log",
    params:
        k=SETTINGS.folds.k,
        seed=SETTINGS.folds.seed,
        age_bins=list(SETTINGS.age_bins),
        code=code_digest("make_folds.py"),
    conda:
        "../../envs/cpu.yaml"
    localrule: True
    script:
        "../../scripts/make_folds.py"
