"""The MLflow run of one train job (model, fold), named so that its recipe shows (see
TrackingTarget.child_run_name) and nested under its results folder's parent run. A train job records its
run's id beside its outputs, so a job resumed after a kill continues its own run (each epoch
logged once)."""

import json
from pathlib import Path

from facemask.tracking.store import (
    PARENT_TAG,
    Tracker,
    TrackingTarget,
    flat_params,
    live_run,
    log_metrics,
    log_params,
    parent_run_id,
)
from facemask.utils.files import write_json
from facemask.utils.logs import log


def epoch_metrics(row: dict) -> dict[str, float]:
    """A history row's numbers, as the epoch's metrics (the epoch itself is the step)."""
    return {
        key: float(value)
        for key, value in row.items()
        if key != "epoch" and isinstance(value, int | float) and not isinstance(value, bool)
    }


class TrainTracking:
    """The MLflow run of one train job, nested under its results folder's parent run; `record` is
    the file beside the job's outputs that keeps the run's id for a resumed job."""

    def __init__(self, target: TrackingTarget | None, record: Path, name: str, tags: dict[str, str]):
        self.tracker, self.record, self.name, self.tags = Tracker(target), record, name, tags
        self.run_id: str | None = None

    def start(self, fingerprint: str, params: dict, history: list[dict]) -> None:
        """Open the job's run: the run a killed job of the same `fingerprint` left (its epochs so
        far logged once each), else a new one with `params`; log the `history` it lacks."""
        self.run_id = self.tracker(
            "opening the train job's run", lambda client: self._open(client, fingerprint, params)
        )
        if run_id := self.run_id:
            self.tracker("logging the resumed epochs", lambda client: log_missing(client, run_id, history))

    def _open(self, client, fingerprint: str, params: dict) -> str:
        target = self.tracker.target
        assert target is not None  # called by the tracker, which stops calling once it fails
        parent = parent_run_id(client, target)
        known = json.loads(self.record.read_text()) if self.record.exists() else {}
        run = live_run(client, known.get("run_id")) if known.get("uri") == target.uri else None
        if run and known.get("fingerprint") == fingerprint and run.info.status != "FINISHED":
            client.update_run(run.info.run_id, status="RUNNING")
            log.info("tracking: continuing run %s in %s", run.info.run_id, target.uri)
            return run.info.run_id
        experiment = client.get_run(parent).info.experiment_id
        run = client.create_run(experiment, run_name=self.name, tags=self.tags | {PARENT_TAG: parent})
        log_params(client, run.info.run_id, flat_params(params))
        write_json({"uri": target.uri, "run_id": run.info.run_id, "fingerprint": fingerprint}, self.record)
        log.info("tracking: run %s in %s", run.info.run_id, target.uri)
        return run.info.run_id

    def log_epoch(self, row: dict) -> None:
        """Log a history row as the metrics of its epoch."""
        if run_id := self.run_id:
            self.tracker(
                "logging an epoch",
                lambda client: log_metrics(client, run_id, epoch_metrics(row), row["epoch"]),
            )

    def end(self, status: str, tags: dict[str, str] | None = None) -> None:
        """Close the run as `status` (FINISHED, FAILED, KILLED) with `tags`."""
        if run_id := self.run_id:
            self.tracker("closing the run", lambda client: _close(client, run_id, status, tags or {}))


def log_missing(client, run_id: str, history: list[dict]) -> None:
    """Log the epochs of `history` that the run `run_id` lacks (a resumed job's)."""
    logged = {metric.step for metric in client.get_metric_history(run_id, "val_f1")}
    for row in history:
        if row["epoch"] not in logged:
            log_metrics(client, run_id, epoch_metrics(row), row["epoch"])


def _close(client, run_id: str, status: str, tags: dict[str, str]) -> None:
    for key, value in tags.items():
        client.set_tag(run_id, key, value)
    client.set_terminated(run_id, status)
