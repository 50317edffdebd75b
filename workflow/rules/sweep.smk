# Sweeps (config sweeps, docs/sweeps.md): each variant is a model block trained by the usual train
# rule on the sweep's folds (no predict job: the ranking is out of fold); with halving, a
# checkpoint per rung decides which variants train at the next budget. Their input functions are
# in common_sweeps.smk.


checkpoint sweep_rung:
    input:
        oof_logits=sweep_files(train_output("oof_logits.csv", RESULTS)),
        train_index=index_output("train"),
    output:
        f"{RESULTS}/sweeps/{{sweep}}/rung{{rung}}.csv",
    log:
        f"{RESULTS}/logs/sweeps/{{sweep}}/rung{{rung}}.log",
    params:
        members=sweep_members,
        sweep=get_sweep,
        code=code_digest("sweep_rung.py"),
    conda:
        "../../envs/cpu.yaml"
    localrule: True
    script:
        "../../scripts/sweep_rung.py"


rule rank_sweep:
    input:
        oof_logits=sweep_files(train_output("oof_logits.csv", RESULTS)),
        benchmarks=sweep_files(train_benchmark(RESULTS)),
        rung_benchmarks=get_sweep_rung_benchmarks,
        rungs=get_sweep_rungs,
        train_index=index_output("train"),
    output:
        csv=report(
            f"{RESULTS}/sweeps/{{sweep}}/ranking.csv",
            caption="../report/sweep_ranking.rst",
            category="Sweeps",
            subcategory="{sweep}",
        ),
        markdown=f"{RESULTS}/sweeps/{{sweep}}/ranking.md",
        winner=f"{RESULTS}/sweeps/{{sweep}}/winner.yaml",
    log:
        f"{RESULTS}/logs/sweeps/{{sweep}}/rank.log",
    params:
        members=sweep_members,
        rung_members=sweep_rung_members,
        sweep=get_sweep,
        seed=SETTINGS.seed,
        code=code_digest("rank_sweep.py"),
    conda:
        "../../envs/cpu.yaml"
    localrule: True
    script:
        "../../scripts/rank_sweep.py"


rule track_sweep:
    input:
        f"{RESULTS}/sweeps/{{sweep}}/ranking.csv",
    output:
        f"{RESULTS}/sweeps/{{sweep}}/tracking.json",
    log:
        f"{RESULTS}/logs/sweeps/{{sweep}}/track.log",
    params:
        tracking=as_config(SETTINGS.tracking),
        sweep=get_sweep,
        uri_from_environment=os.environ.get("MLFLOW_TRACKING_URI"),
        code=code_digest("track_sweep.py"),
    conda:
        "../../envs/cpu.yaml"
    localrule: True
    script:
        "../../scripts/track_sweep.py"
