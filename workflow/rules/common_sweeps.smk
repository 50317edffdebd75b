# The input functions and params of the sweeps' rules (sweep.smk) and targets (Snakefile).
import csv


def sweep_of(wildcards):
    """The sweep of a job, or a clear error when the config has none of that name."""
    if wildcards.sweep not in SETTINGS.sweeps:
        raise WorkflowError(f"config: sweeps: no sweep {wildcards.sweep!r} (see docs/sweeps.md)")
    return SETTINGS.sweeps[wildcards.sweep]


def sweep_folds(sweep, early_rung=False):
    """The folds a sweep trains and ranks on: at its last rung, or at the rungs before
    (`early_rung`: its halving folds, else the same)."""
    return list((early_rung and sweep.rung_folds) or sweep.folds or range(SETTINGS.folds.k))


def rung_variants(sweep, rung):
    """The variants that train at `rung`: all at the first, then those that the rung before let
    go on (its checkpoint's table)."""
    if rung == 0:
        return list(sweep.variants)
    table = checkpoints.sweep_rung.get(sweep=sweep.name, rung=rung - 1).output[0]
    with open(table, newline="") as ranked:
        return [row["variant"] for row in csv.DictReader(ranked) if row["goes_on"] == "True"]


def sweep_blocks(wildcards):
    """The blocks a sweep job ranks: a rung's blocks, or the base and the variants of the last rung."""
    sweep = sweep_of(wildcards)
    if hasattr(wildcards, "rung"):
        rung = int(wildcards.rung)
        return [sweep.rung_block(variant, rung) for variant in rung_variants(sweep, rung)]
    return [sweep.base, *rung_variants(sweep, len(sweep.budgets))]


def sweep_members(wildcards):
    """Every (block, fold) member a sweep job reads, in the order of sweep_files."""
    folds = sweep_folds(sweep_of(wildcards), early_rung=hasattr(wildcards, "rung"))
    return [[block, fold] for block in sweep_blocks(wildcards) for fold in folds]


def sweep_files(pattern):
    """An input function: `pattern` (with {model} and {fold}) of every member of sweep_members."""
    return lambda wildcards: files_of(pattern, sweep_members(wildcards))


def get_sweep(wildcards):
    """A sweep as its jobs' param: its plain settings, its blocks' and its base's (as their train
    jobs get them), and how classes are decided."""
    sweep = sweep_of(wildcards)
    blocks = [sweep.base, *sweep.blocks]
    return {
        "sweep": as_config(sweep),
        "blocks": {block: SETTINGS.models[block].as_config() for block in blocks},
        "match_class_shares": SETTINGS.ensemble.match_class_shares,
        "cut_models": [block for block in blocks if block in SETTINGS.age_cut_models],
    }


def sweep_rung_members(wildcards):
    """Every (block, fold) train job of a sweep's rungs before the last, rung by rung."""
    sweep = sweep_of(wildcards)
    folds = sweep_folds(sweep, early_rung=True)
    return [
        [sweep.rung_block(variant, rung), fold]
        for rung in range(len(sweep.budgets))
        for variant in rung_variants(sweep, rung)
        for fold in folds
    ]


def get_sweep_rung_benchmarks(wildcards):
    """The benchmark files of sweep_rung_members, in their order."""
    return files_of(train_benchmark(RESULTS), sweep_rung_members(wildcards))


def get_sweep_rungs(wildcards):
    """The rung tables of a sweep with halving (none without)."""
    sweep = sweep_of(wildcards)
    return [f"{RESULTS}/sweeps/{sweep.name}/rung{rung}.csv" for rung in range(len(sweep.budgets))]


def get_sweep_targets(names):
    """The rankings of the sweeps `names`, with tracking on their MLflow runs too; a clear error
    when the config has no sweep."""
    if not names:
        raise WorkflowError("config: sweeps: no sweep to run: add one (see docs/sweeps.md)")
    outputs = expand(f"{RESULTS}/sweeps/{{sweep}}/ranking.md", sweep=names)
    if SETTINGS.tracking.on:
        outputs += expand(f"{RESULTS}/sweeps/{{sweep}}/tracking.json", sweep=names)
    return outputs
