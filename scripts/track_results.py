"""Snakemake job: the results folder's recipe (its model blocks), CV and eval scores, ensemble
weights and plots to its MLflow parent run."""

from pathlib import Path

import pandas as pd

from facemask.config.sections import Tracking
from facemask.config.typed import typed
from facemask.ensemble.bundle import Bundle
from facemask.tracking.results import FolderResults, log_results, score_metrics
from facemask.tracking.store import TrackingTarget
from facemask.utils.files import write_json
from facemask.utils.logs import log, run_job


def main():
    results_dir = Path(snakemake.output[0]).parents[1]  # <results_dir>/tracking/results.json
    target = TrackingTarget.of(typed(Tracking, snakemake.params.tracking), results_dir)
    metrics = score_metrics(pd.read_csv(snakemake.input.cv_scores), "cv")
    for eval_scores in snakemake.input.eval_scores:  # none without the eval answers
        metrics |= score_metrics(pd.read_csv(eval_scores), "eval")
    bundle = Bundle.read(snakemake.input.bundle, verify=False)  # its checkpoints are not used here
    metrics |= {f"ensemble_weight/{model}": weight for model, weight in bundle.vote.weights.items()}
    artifacts = [
        Path(path) for path in snakemake.input if Path(path).suffix in {".csv", ".md", ".json", ".png"}
    ]
    members = frozenset(member.sha256 for member in bundle.members)
    run_id = log_results(target, FolderResults(metrics, snakemake.params.recipe, artifacts, members))
    if run_id:
        log.info(
            "tracking: %d metrics and %d files in run %s of %s",
            len(metrics),
            len(artifacts),
            run_id,
            target.uri,
        )
    write_json(
        {"uri": target.uri if target else None, "run_id": run_id, "metrics": metrics}, snakemake.output[0]
    )


run_job(main, snakemake.log[0])
