"""A sweep in MLflow: one parent run per sweep (made once, its id kept beside the ranking), its
blocks as child runs tagged and parametrised with their varied settings and holding their ranking
row as metrics, so that MLflow's compare view shows the sweep as a table."""

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from facemask.tracking.store import PARENT_TAG, Tracker, TrackingTarget, experiment_id, flat_params, live_run
from facemask.utils.files import write_json

#: the ranking's numbers that a block's run logs
SWEEP_METRICS = ("macro_f1", "mask_f1", "gender_f1", "age_f1", "gain", "low", "high", "train_minutes", "rank")


def log_sweep(
    target: TrackingTarget | None,
    sweep: str,
    ranking: pd.DataFrame,
    settings: Mapping[str, Mapping[str, Any]],
    record: Path,
) -> str | None:
    """Log the `ranking` of `sweep` (`settings`: each block's varied settings) to its parent run,
    whose id `record` keeps; the parent run's id, None when tracking is off or failed."""
    if target is None:
        return None
    store = target

    def log_ranking(client) -> str:
        known = json.loads(record.read_text()) if record.exists() else {}
        parent = live_run(client, known.get("run_id")) if known.get("uri") == store.uri else None
        if parent is None:
            experiment = experiment_id(client, store.experiment, store.artifact_location)
            parent = client.create_run(experiment, run_name=f"sweep {sweep}", tags={"facemask.sweep": sweep})
        parent_id = parent.info.run_id
        children = client.search_runs([parent.info.experiment_id], f"tags.`{PARENT_TAG}` = '{parent_id}'")
        runs = {run.data.tags.get("facemask.block"): run.info.run_id for run in children}
        for row in ranking.to_dict("records"):
            block = row["block"]
            if block not in runs:
                tags = {PARENT_TAG: parent_id, "facemask.sweep": sweep, "facemask.block": block}
                tags |= {"facemask.verdict": row["verdict"]}
                run = client.create_run(parent.info.experiment_id, run_name=block, tags=tags)
                runs[block] = run.info.run_id
                for key, value in flat_params(dict(settings.get(block, {}))).items():
                    client.log_param(run.info.run_id, key, value)
            for metric in SWEEP_METRICS:
                if pd.notna(row.get(metric)):
                    client.log_metric(runs[block], metric, float(row[metric]))
            client.set_tag(runs[block], "facemask.verdict", row["verdict"])
        write_json({"uri": store.uri, "run_id": parent_id, "runs": runs}, record)
        return parent_id

    return Tracker(store)(f"logging the sweep {sweep}", log_ranking)
