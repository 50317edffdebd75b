"""Experiment tracking with MLflow: the store (the `tracking: {uri}` of the config, else
MLFLOW_TRACKING_URI, else a SQLite file in the results folder: `mlflow ui --backend-store-uri
sqlite:///results/mlflow.db` opens it; `tracking: false` turns it off), its experiment and parent
runs, and the calls that never stop a job: the first MLflow call that fails logs one warning, and
the job goes on untracked."""

import fcntl
import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from facemask.config.defaults import schema_default
from facemask.config.sections import Tracking
from facemask.utils.digests import settings_digest
from facemask.utils.files import write_json
from facemask.utils.logs import log

DEFAULT_EXPERIMENT = schema_default("tracking.experiment")
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

    @classmethod
    def of_workflow(cls, config: Mapping[str, Any]) -> "TrackingTarget | None":
        """The target of the validated workflow `config` (its `tracking` in its `results_dir`): for
        a job that reads it from the config, not from params, since tracking retrains nothing."""
        return cls.of(Tracking.from_config(config["tracking"]), config["results_dir"])

    def child_run_name(self, model: str, fold: int | str, settings: dict) -> str:
        """A train job's run name: `<model>/fold<k> <results folder> <digest of the block>`, e.g.
        `resnet34/fold0 demo 3fa2c1`, so that two recipes' runs tell apart in MLflow's views."""
        return f"{model}/fold{fold} {self.results_dir.name} {recipe_digest(settings)}"

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
    return settings_digest(settings, 6)


def log_params(client, run_id: str, params: dict[str, str]) -> None:
    """Log `params` in as few calls as MLflow takes them."""
    from mlflow.entities import Param

    items = [Param(key, value) for key, value in params.items()]
    for start in range(0, len(items), PARAMS_PER_BATCH):
        client.log_batch(run_id, params=items[start : start + PARAMS_PER_BATCH])


def log_metrics(client, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
    """Log `metrics` at `step` in one call."""
    from mlflow.entities import Metric

    now = int(pd.Timestamp.now().timestamp() * 1000)
    client.log_batch(run_id, metrics=[Metric(key, value, now, step) for key, value in metrics.items()])
