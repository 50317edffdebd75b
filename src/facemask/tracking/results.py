"""A results folder's parent run, one per recipe: the recipe's model blocks as params, the CV and
eval scores, the ensemble weights and the plots."""

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from facemask.tracking.store import (
    PARENT_TAG,
    Tracker,
    TrackingTarget,
    flat_params,
    log_metrics,
    log_params,
    parent_run_id,
)
from facemask.utils.logs import log


def score_metrics(table: pd.DataFrame, prefix: str) -> dict[str, float]:
    """A score table's numbers as metrics `prefix/<model>/<score>` (its rows: one a model, the
    rows of a `fold` column other than 'all' left out)."""
    if "fold" in table:
        table = table[table["fold"].astype(str) == "all"]
    scores = (
        table.set_index("model")
        .select_dtypes("number")
        .drop(columns=["n_photos", "n_images"], errors="ignore")
    )
    return {
        f"{prefix}/{model}/{score}": float(value)
        for model, row in scores.iterrows()
        for score, value in row.items()
        if pd.notna(value)
    }


@dataclass(frozen=True)
class FolderResults:
    """What a results folder's parent run gets: the scores as `metrics`, the `recipe` (each model
    block run, by name, as its train jobs got it), the files `artifacts`, and the SHA-256 of the
    ensemble's `member_checkpoints` (whose runs are the recipe's children)."""

    metrics: dict[str, float]
    recipe: dict[str, dict]
    artifacts: list[Path]
    member_checkpoints: frozenset[str]


def recipe_parent(client, target: TrackingTarget, params: dict[str, str], members: frozenset[str]) -> str:
    """The parent run for the recipe `params`: the folder's, unless it holds another recipe (changed
    in the same folder: MLflow never changes a param); then a new one, under which the runs of the
    checkpoints `members` move."""
    run_id = parent_run_id(client, target)
    logged = client.get_run(run_id).data.params
    if not logged or logged == params:
        return run_id
    fresh = parent_run_id(client, target, fresh=True)
    experiment = client.get_run(run_id).info.experiment_id
    for child in client.search_runs([experiment], f"tags.`{PARENT_TAG}` = '{run_id}'"):
        if child.data.tags.get("checkpoint_sha256") in members:
            client.set_tag(child.info.run_id, PARENT_TAG, fresh)
    log.info("tracking: the recipe differs from run %s's, so its results go to a new run %s", run_id, fresh)
    return fresh


def log_results(target: TrackingTarget | None, results: FolderResults) -> str | None:
    """Log `results` to the results folder's parent run (see recipe_parent), and close it; the
    run's id (None when tracking is off or failed)."""

    def log_to_parent(client) -> str:
        assert target is not None  # called by the tracker only with a target
        params = flat_params(results.recipe)
        run_id = recipe_parent(client, target, params, results.member_checkpoints)
        log_params(client, run_id, params)
        log_metrics(client, run_id, results.metrics)
        for path in results.artifacts:
            client.log_artifact(run_id, str(path), artifact_path="results")
        client.set_terminated(run_id, "FINISHED")
        return run_id

    return Tracker(target)("logging the results to the parent run", log_to_parent)
