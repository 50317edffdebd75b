"""Snakemake job: train one (model, fold); in the second round (params.round 'pseudo') on the
fold's pseudo-labelled eval photos too."""

import json
from pathlib import Path

import pandas as pd

from facemask.config.blocks import ModelBlock
from facemask.data.pseudo_photos import PseudoPhotos
from facemask.tracking.store import TrackingTarget
from facemask.tracking.train_runs import TrainTracking
from facemask.train.fold import TrainOutputs, train_fold
from facemask.utils.cpus import job_threads
from facemask.utils.gpu_slots import claim_gpu
from facemask.utils.logs import log, run_job


def main():
    claim_gpu()
    log.info(
        "model %s, fold %s, settings after the schema's defaults: %s",
        snakemake.wildcards.model,
        snakemake.wildcards.fold,
        json.dumps(snakemake.params.settings, sort_keys=True),
    )
    outputs = TrainOutputs(
        Path(snakemake.output.checkpoint), Path(snakemake.output.oof_logits), Path(snakemake.output.history)
    )
    model, fold = snakemake.wildcards.model, snakemake.wildcards.fold
    block = ModelBlock.from_config(snakemake.params.settings)
    target = TrackingTarget.of_workflow(snakemake.config)  # not params: tracking retrains nothing
    pseudo = None
    if snakemake.params.round == "pseudo":
        pseudo = PseudoPhotos.of_fold(
            pd.read_csv(snakemake.input.pseudo_labels, dtype={"ImageID": str}),
            pd.read_csv(snakemake.input.eval_index, dtype=str),
            int(fold),
            snakemake.input.eval_cache,
        )
    name = target.child_run_name(model, fold, snakemake.params.settings) if target else model
    tags = {"facemask.model": model, "facemask.fold": fold, "facemask.arch": block.arch}
    tracking = TrainTracking(
        target,
        outputs.tracking_record,
        f"{name} pseudo" if pseudo else name,
        tags | ({"facemask.round": "pseudo"} if pseudo else {}),
    )
    train_fold(
        pd.read_csv(snakemake.input.index, dtype={"person": str}),
        pd.read_csv(snakemake.input.folds, dtype={"person": str}),
        int(fold),
        block,
        snakemake.input.cache,
        outputs,
        tracking,
        seed=snakemake.params.seed,
        threads=job_threads(snakemake.threads),
        age_bins=snakemake.params.age_bins,
        device=snakemake.params.device,
        pseudo=pseudo,
        name=model,
    )


run_job(main, snakemake.log[0])
