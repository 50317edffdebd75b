"""Snakemake job: train one (model, fold)."""

import json
from pathlib import Path

import pandas as pd

from facemask.cpus import job_threads
from facemask.devices import claim_gpu
from facemask.ensemble import read_class_shares
from facemask.logs import log, run_job
from facemask.training import TrainOutputs, train_fold


def main():
    claim_gpu()
    log.info("model %s, fold %s, settings after the schema's defaults: %s", snakemake.wildcards.model,
             snakemake.wildcards.fold, json.dumps(snakemake.params.settings, sort_keys=True))
    train_fold(
        index=pd.read_csv(snakemake.input.index, dtype={"person": str}),
        folds=pd.read_csv(snakemake.input.folds, dtype={"person": str}),
        fold=int(snakemake.wildcards.fold),
        settings=snakemake.params.settings,
        cache=snakemake.input.cache,
        outputs=TrainOutputs(*(Path(p) for p in (snakemake.output.checkpoint, snakemake.output.oof_logits, snakemake.output.history))),
        seed=snakemake.params.seed,
        threads=job_threads(snakemake.threads),
        age_bins=snakemake.params.age_bins,
        device=snakemake.params.device,
        class_shares=read_class_shares(snakemake.input.index) if snakemake.params.match_class_shares else None,
    )


run_job(main, snakemake.log[0])
