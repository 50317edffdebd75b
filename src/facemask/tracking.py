"""Experiment tracking with MLflow: one run per train job (model, fold), named so that its recipe
shows (see child_run_name), nested under one parent run per results folder and recipe, which gets
the recipe's model blocks as params, the CV and eval scores, the ensemble weights and the plots.

The store is the `tracking: {uri}` of the config, else MLFLOW_TRACKING_URI, else a SQLite file in
the results folder (`mlflow ui --backend-store-uri sqlite:///results/mlflow.db` opens it);
`tracking: false` turns it off. Tracking never stops a job: the first MLflow call that fails logs
one warning, and the job goes on untracked. A train job records its run's id beside its outputs,
so a job resumed after a kill continues its own run (each epoch logged once)."""

import fcntl
import hashlib
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
from facemask.settings import Tracking

DEFAULT_EXPERIMENT = "facemask"
#: the local store's file in the results folder
LOCAL_STORE = "mlflow.db"
#: a server that cannot be reached costs seconds, not the minutes of MLflow's default retries
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}
PARENT_TAG = "mlflow.parentRunId"
#: the most params MLflow takes in one log_batch
PARAMS_PER_BATCH = 100


@dataclass(frozen=True)
class TrackingTarget:
    """Where a results folder's runs go: the store's URI, the experiment, the results folder."""

    uri: str
    experiment: str
    results_dir: Path

    @classmethod
    def of(cls, tracking: Tracking, results_dir: str | Path) -> "TrackingTarget | None":
        """The target of the config's `tracking` for `results_dir` (see the module's docstring);
        None when tracking is off."""
        if not tracking.on:
            return None
        results_dir = Path(results_dir).resolve()
        uri = (
            tracking.uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{results_dir / LOCAL_STORE}"
        )
        return cls(uri, tracking.experiment or DEFAULT_EXPERIMENT, results_dir)

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


def parent_run_id(client, target: TrackingTarget, fresh: bool = False) -> str:
    """The results folder's parent run, made by the first job that asks (under a file lock, so the
    jobs of one folder share one); with `fresh`, a new one that the later jobs share."""
    record = target.parent_record
    with locked(target.lock):
        known = json.loads(record.read_text()) if record.exists() else {}
        same_store = known.get("uri") == target.uri and known.get("experiment") == target.experiment
        if same_store and not fresh and live_run(client, known.get("run_id")):
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


def recipe_digest(settings: dict) -> str:
    """A short digest of a model block's settings: the same block, the same digest."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:6]


def child_run_name(model: str, fold: int | str, results_dir: str | Path, settings: dict) -> str:
    """A train job's run name: `<model>/fold<k> <results folder> <digest of the block>`, e.g.
    `resnet34/fold0 demo 3fa2c1`, so that two recipes' runs tell apart in MLflow's views."""
    return f"{model}/fold{fold} {Path(results_dir).resolve().name} {recipe_digest(settings)}"


def log_params(client, run_id: str, params: dict[str, str]) -> None:
    """Log `params` in as few calls as MLflow takes them."""
    from mlflow.entities import Param

    items = [Param(key, value) for key, value in params.items()]
    for start in range(0, len(items), PARAMS_PER_BATCH):
        client.log_batch(run_id, params=items[start : start + PARAMS_PER_BATCH])


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
