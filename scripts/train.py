"""Snakemake job: train one (model, fold)."""

from pathlib import Path

import pandas as pd

from facemask.devices import claim_gpu
from facemask.logs import run_job
from facemask.training import TrainOutputs, train_fold


def main():
    claim_gpu()
    train_fold(
        index=pd.read_csv(snakemake.input.index, dtype={"person": str}),
        folds=pd.read_csv(snakemake.input.folds, dtype={"person": str}),
        fold=int(snakemake.wildcards.fold),
        settings=snakemake.params.settings,
        cache=snakemake.input.cache,
        outputs=TrainOutputs(*(Path(p) for p in (snakemake.output.checkpoint, snakemake.output.oof_logits, snakemake.output.history))),
        seed=snakemake.params.seed,
        threads=snakemake.threads,
        age_bins=snakemake.params.age_bins,
    )


run_job(main, snakemake.log[0])
