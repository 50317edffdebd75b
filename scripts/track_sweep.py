"""Snakemake job: a sweep's ranking to MLflow: its parent run, and a child run per block tagged
with its varied settings (see facemask.tracking.sweeps)."""

from pathlib import Path

import pandas as pd

from facemask.config.sections import Tracking
from facemask.config.sweeps import Sweep
from facemask.config.typed import typed
from facemask.tracking.store import TrackingTarget
from facemask.tracking.sweeps import log_sweep
from facemask.utils.files import write_json
from facemask.utils.logs import log, run_job


def main():
    results_dir = Path(snakemake.output[0]).parents[2]  # <results_dir>/sweeps/<sweep>/tracking.json
    target = TrackingTarget.of(typed(Tracking, snakemake.params.tracking), results_dir)
    sweep = typed(Sweep, snakemake.params.sweep["sweep"])
    ranking = pd.read_csv(snakemake.input[0])
    record = Path(snakemake.output[0]).with_name("mlflow_run.json")
    run_id = log_sweep(target, sweep.name, ranking, sweep.variants, record)
    if run_id:
        log.info("tracking: the sweep %s in run %s of %s", sweep.name, run_id, target.uri)
    write_json({"uri": target.uri if target else None, "run_id": run_id}, snakemake.output[0])


run_job(main, snakemake.log[0])
