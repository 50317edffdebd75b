"""Snakemake job: train one (model, fold); in the second round (rule train_pseudo) on the fold's
pseudo-labelled eval photos too."""

import json
from pathlib import Path

import pandas as pd

from facemask.cpus import job_threads
from facemask.gpu_slots import claim_gpu
from facemask.logs import log, run_job
from facemask.pseudo import PseudoPhotos
from facemask.settings import ModelBlock, Settings
from facemask.tracking import TrackingTarget, TrainTracking, child_run_name
from facemask.training import TrainOutputs, train_fold


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
    block, run = ModelBlock.from_config(snakemake.params.settings), Settings.from_config(snakemake.config)
    pseudo = None
    if hasattr(snakemake.input, "pseudo_labels"):  # the second round (rule train_pseudo)
        pseudo = PseudoPhotos.of_fold(
            pd.read_csv(snakemake.input.pseudo_labels, dtype={"ImageID": str}),
            pd.read_csv(snakemake.input.eval_index, dtype=str),
            int(fold),
            snakemake.input.eval_cache,
        )
    name = child_run_name(model, fold, run.results_dir, snakemake.params.settings)
    tags = {"facemask.model": model, "facemask.fold": fold, "facemask.arch": block.arch}
    tracking = TrainTracking(
        TrackingTarget.of(run.tracking, run.results_dir),  # not params: tracking retrains nothing
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
        match_class_shares=snakemake.params.match_class_shares,
        pseudo=pseudo,
    )


run_job(main, snakemake.log[0])
