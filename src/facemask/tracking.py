"""Experiment tracking with MLflow: one run per train job (model, fold), nested under one parent run
per results folder, which gets the CV and eval scores, the ensemble weights and the plots.

The store is the `tracking: {uri}` of the config, else MLFLOW_TRACKING_URI, else a SQLite file in
the results folder (`mlflow ui --backend-store-uri sqlite:///results/mlflow.db` opens it);
`tracking: false` turns it off. Tracking never stops a job: the first MLflow call that fails logs
one warning, and the job goes on untracked. A train job records its run's id beside its outputs,
so a job resumed after a kill continues its own run (each epoch logged once)."""

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from facemask.files import write_json
from facemask.logs import log

DEFAULT_EXPERIMENT = "facemask"
#: the local store's file in the results folder
LOCAL_STORE = "mlflow.db"
#: a server that cannot be reached costs seconds, not the minutes of MLflow's default retries
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}
PARENT_TAG = "mlflow.parentRunId"


@dataclass(frozen=True)
class TrackingTarget:
    """Where a results folder's runs go: the store's URI, the experiment, the results folder."""

    uri: str
    experiment: str
    results_dir: Path

    @classmethod
    def from_config(cls, config: dict) -> "TrackingTarget | None":
        """The config's target (see the module's docstring); None when `tracking` is false."""
        setting = config.get("tracking", True)
        if setting is False:
            return None
        setting = {} if setting is True else setting
        results_dir = Path(config["results_dir"]).resolve()
        uri = (
            setting.get("uri")
            or os.environ.get("MLFLOW_TRACKING_URI")
            or f"sqlite:///{results_dir / LOCAL_STORE}"
        )
        return cls(uri, setting.get("experiment") or DEFAULT_EXPERIMENT, results_dir)

    @property
    def parent_record(self) -> Path:
        """The file that holds the parent run's id."""
        return self.results_dir / "tracking" / "parent_run.json"

    @property
    def artifact_location(self) -> str | None:
        """Where a new experiment keeps its files: beside a SQLite store's database (MLflow's own
        default is ./mlruns in whatever folder the job runs from); a server decides for itself."""
        if not self.uri.startswith("sqlite:///"):
            return None
        return (Path(self.uri.removeprefix("sqlite:///")).resolve().parent / "mlartifacts").as_uri()

    @property
    def lock(self) -> Path:
        """The lock that the jobs of the results folder take to make the store and the parent run."""
        return self.results_dir / "tracking" / "tracking.lock"


class Tracker:
    """Calls into an MLflow client of `target` that never raise: the first failure is one warning,
    after which every call is skipped (returns None). A None target tracks nothing."""

    def __init__(self, target: TrackingTarget | None):
        self.target = target
        self.client: Any = None

    def __call__(self, what: str, action: Callable[[Any], Any]) -> Any:
        """`action(client)`'s result; None when tracking is off or has failed."""
        if self.target is None:
            return None
        try:
            if self.client is None:
                for name, value in HTTP_DEFAULTS.items():
                    os.environ.setdefault(name, value)
                from mlflow import MlflowClient

                with locked(self.target.lock):  # the first client makes a SQLite store's tables
                    self.client = MlflowClient(self.target.uri)
            return action(self.client)
        except Exception as error:
            log.warning(
                "tracking: %s in %s failed (%s: %s); the job goes on without tracking",
                what,
                self.target.uri,
                type(error).__name__,
                str(error).splitlines()[0] if str(error) else "",
            )
            self.target = None
            return None


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file `path` (made if missing) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def experiment_id(client, name: str, artifact_location: str | None = None) -> str:
    """The id of the experiment `name`, made if missing (by whichever job comes first), its files
    at `artifact_location` (None: the store's default)."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location)
    except Exception:  # another job made it meanwhile
        return client.get_experiment_by_name(name).experiment_id


def live_run(client, run_id: str | None):
    """The run `run_id` when the store holds it and it is not deleted, else None."""
    if not run_id:
        return None
    try:
        run = client.get_run(run_id)
    except Exception:  # MlflowException: no such run
        return None
    return None if run.info.lifecycle_stage == "deleted" else run


def parent_run_id(client, target: TrackingTarget) -> str:
    """The results folder's parent run, made by the first job that asks (under a file lock, so the
    jobs of one folder share one)."""
    record = target.parent_record
    with locked(target.lock):
        known = json.loads(record.read_text()) if record.exists() else {}
        same_store = known.get("uri") == target.uri and known.get("experiment") == target.experiment
        if same_store and live_run(client, known.get("run_id")):
            return known["run_id"]
        run = client.create_run(
            experiment_id(client, target.experiment, target.artifact_location),
            run_name=target.results_dir.name,
            tags={"facemask.results_dir": str(target.results_dir)},
        )
        write_json({"uri": target.uri, "experiment": target.experiment, "run_id": run.info.run_id}, record)
        return run.info.run_id


def flat_params(settings: dict) -> dict[str, str]:
    """`settings` flattened to MLflow params: nested keys joined by dots, values as text."""
    flat = pd.json_normalize(settings, sep=".").iloc[0].to_dict() if settings else {}
    return {
        key: json.dumps(value) if isinstance(value, list | dict) else str(value)
        for key, value in flat.items()
    }


def epoch_metrics(row: dict) -> dict[str, float]:
    """A history row's numbers, as the epoch's metrics (the epoch itself is the step)."""
    return {
        key: float(value)
        for key, value in row.items()
        if key != "epoch" and isinstance(value, int | float) and not isinstance(value, bool)
    }


def log_metrics(client, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
    """Log `metrics` at `step` in one call."""
    from mlflow.entities import Metric

    now = int(pd.Timestamp.now().timestamp() * 1000)
    client.log_batch(run_id, metrics=[Metric(key, value, now, step) for key, value in metrics.items()])


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
        params = flat_params(params)
        client.log_batch(run.info.run_id, params=[_param(key, value) for key, value in params.items()])
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


def _param(key: str, value: str):
    from mlflow.entities import Param

    return Param(key, value)


def _close(client, run_id: str, status: str, tags: dict[str, str]) -> None:
    for key, value in tags.items():
        client.set_tag(run_id, key, value)
    client.set_terminated(run_id, status)


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


def log_results(
    target: TrackingTarget | None, metrics: dict[str, float], artifacts: list[Path]
) -> str | None:
    """Log `metrics` and the files `artifacts` to the results folder's parent run, and close it;
    the run's id (None when tracking is off or failed)."""

    def log_to_parent(client) -> str:
        assert target is not None  # called by the tracker only with a target
        run_id = parent_run_id(client, target)
        log_metrics(client, run_id, metrics)
        for path in artifacts:
            client.log_artifact(run_id, str(path), artifact_path="results")
        client.set_terminated(run_id, "FINISHED")
        return run_id

    return Tracker(target)("logging the results to the parent run", log_to_parent)
