"""Experiment tracking with MLflow: a run per train job, named for its recipe, under a parent run
per results folder that holds the recipe, a new parent when the recipe changes in the folder, a
resumed job continuing its own run, a failed job's run marked failed, a server reached by URI, and
a store that cannot be reached costing one warning and nothing else."""

import logging
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

import facemask.train.fold
from facemask.config.sections import Tracking
from facemask.tracking.results import FolderResults, log_results
from facemask.tracking.store import PARENT_TAG, Tracker, TrackingTarget, parent_run_id
from facemask.tracking.train_runs import TrainTracking
from facemask.train.fold import TrainOutputs, train_fold

from .conftest import kill_a_train_job_mid_run, model_settings, outputs_in

BLOCK = {
    "arch": "test_resnet",
    "image_size": [32, 32],
    "batch_size": 8,
    "epochs": 3,
    "optimizer": {"lr": 1e-3},
}
SETTINGS = model_settings(**BLOCK)


def target_in(results: Path, uri: str | None = None) -> TrackingTarget:
    target = TrackingTarget.of(Tracking(True, uri), results)
    assert target is not None
    return target


def tracked(target: TrackingTarget, outputs: TrainOutputs) -> TrainTracking:
    return TrainTracking(
        target, outputs.tracking_record, "test_resnet/fold0", {"facemask.model": "test_resnet"}
    )


def child_runs(client: MlflowClient, target: TrackingTarget) -> list:
    experiment = client.get_experiment_by_name(target.experiment)
    runs = client.search_runs([experiment.experiment_id])
    return [run for run in runs if PARENT_TAG in run.data.tags]


def epochs_logged(client: MlflowClient, run_id: str, metric: str = "val_f1") -> list[int]:
    return sorted(metric.step for metric in client.get_metric_history(run_id, metric))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.workflow
def test_a_run_tracks_one_run_per_train_job_under_one_parent(tiny_run):
    results = tiny_run / "results" / "tiny"
    client = MlflowClient(f"sqlite:///{results / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("facemask")
    runs = client.search_runs([experiment.experiment_id])
    parents = [run for run in runs if PARENT_TAG not in run.data.tags]
    assert [run.info.run_name for run in parents] == ["tiny"]
    parent = parents[0]
    children = [run for run in runs if run.data.tags.get(PARENT_TAG) == parent.info.run_id]
    histories = sorted(results.glob("train/*/fold*/history.csv"))
    assert len(children) == len(histories) == len(runs) - 1 >= 6
    digests = {}
    for child in children:
        model, fold = child.data.tags["facemask.model"], child.data.tags["facemask.fold"]
        assert re.fullmatch(rf"{model}/fold{fold} tiny [0-9a-f]{{6}}", child.info.run_name)
        digests.setdefault(model, set()).add(child.info.run_name.split()[-1])
        assert parent.data.params[f"{model}.optimizer.lr"] == child.data.params["optimizer.lr"]
        history = pd.read_csv(results / "train" / model / f"fold{fold}" / "history.csv")
        assert child.info.status == "FINISHED"
        assert child.data.params["fold"] == fold and "optimizer.lr" in child.data.params
        for metric in ("val_f1", "val_mask_f1", "val_gender_f1", "val_age_f1", "train_loss", "lr"):
            assert epochs_logged(client, child.info.run_id, metric) == list(history["epoch"]), metric
        logged = {m.step: m.value for m in client.get_metric_history(child.info.run_id, "val_f1")}
        assert logged == dict(zip(history["epoch"], history["val_f1"], strict=True))
        assert int(child.data.tags["kept_epoch"]) == history.loc[history["kept"] == 1, "epoch"].iloc[-1]
        assert len(child.data.tags["checkpoint_sha256"]) == 64
    assert all(len(digest) == 1 for digest in digests.values())  # the same block, the same digest
    assert len(set.union(*digests.values())) == len(digests)
    cv = pd.read_csv(results / "cv_scores.csv").set_index(["model", "fold"])
    assert parent.data.metrics["cv/ensemble/macro_f1"] == pytest.approx(
        cv.loc[("ensemble", "all"), "macro_f1"]
    )
    assert "eval/ensemble/macro_f1" in parent.data.metrics
    artifacts = {Path(item.path).name for item in client.list_artifacts(parent.info.run_id, "results")}
    assert {"cv_scores.csv", "eval_scores.csv", "ensemble.json", "oof_confusion_matrix.png"} <= artifacts


def test_a_child_runs_name_shows_its_results_folder_and_a_digest_of_its_block():
    target = TrackingTarget.of(Tracking(True), "results/demo_a")
    name = target.child_run_name("resnet34", 0, BLOCK)
    assert re.fullmatch(r"resnet34/fold0 demo_a [0-9a-f]{6}", name)
    assert target.child_run_name("resnet34", 0, BLOCK) == name
    other_lr = BLOCK | {"optimizer": {"lr": 2e-3}}
    assert target.child_run_name("resnet34", 0, other_lr).split()[-1] != name.split()[-1]


def test_the_parent_run_holds_the_recipe_and_a_changed_recipe_gets_a_parent_of_its_own(tmp_path):
    target = target_in(tmp_path / "results")
    first = Tracker(target)("parent run", lambda client: parent_run_id(client, target))
    client = MlflowClient(target.uri)
    experiment = client.get_run(first).info.experiment_id
    kept, replaced = (
        client.create_run(experiment, tags={PARENT_TAG: first, "checkpoint_sha256": digest}).info.run_id
        for digest in ("kept", "replaced")
    )
    recipe = {"resnet34": {"optimizer": {"lr": 1e-3}, "loss": [{"name": "cross_entropy"}]}}

    def results(recipe: dict) -> FolderResults:
        return FolderResults({"cv/ensemble/macro_f1": 0.5}, recipe, [], frozenset({"kept"}))

    assert log_results(target, results(recipe)) == log_results(target, results(recipe)) == first
    assert client.get_run(first).data.params == {
        "resnet34.optimizer.lr": "0.001",
        "resnet34.loss": '[{"name": "cross_entropy"}]',
    }
    second = log_results(target, results(recipe | {"resnet34": {"optimizer": {"lr": 2e-3}}}))
    assert second not in (None, first)
    assert client.get_run(second).data.params == {"resnet34.optimizer.lr": "0.002"}
    assert client.get_run(first).data.params["resnet34.optimizer.lr"] == "0.001"
    assert client.get_run(kept).data.tags[PARENT_TAG] == second
    assert client.get_run(replaced).data.tags[PARENT_TAG] == first
    assert parent_run_id(client, target) == second  # the next train jobs join the new parent


def test_a_killed_train_job_resumes_in_its_own_run_with_every_epoch_once(demo_tables, demo_cache, tmp_path):
    index, folds = demo_tables
    target = target_in(tmp_path / "results")
    outputs = kill_a_train_job_mid_run(
        tmp_path, demo_tables, demo_cache["train"], SETTINGS, tmp_path / "results"
    )

    history = train_fold(index, folds, 0, SETTINGS, demo_cache["train"], outputs, tracked(target, outputs))
    client = MlflowClient(target.uri)
    [run] = child_runs(client, target)
    assert run.info.status == "FINISHED"
    assert epochs_logged(client, run.info.run_id) == list(history["epoch"]) == [1, 2, 3]


def test_a_failed_train_job_marks_its_run_failed(demo_tables, demo_cache, tmp_path, monkeypatch):
    index, folds = demo_tables
    outputs, target = outputs_in(tmp_path / "train"), target_in(tmp_path / "results")

    def diverge(step, loader, epoch, *memory):
        raise FloatingPointError("the loss diverged")

    monkeypatch.setattr(facemask.train.fold, "train_one_epoch", diverge)
    with pytest.raises(FloatingPointError):
        train_fold(index, folds, 0, SETTINGS, demo_cache["train"], outputs, tracked(target, outputs))
    [run] = child_runs(MlflowClient(target.uri), target)
    assert run.info.status == "FAILED"


@pytest.fixture
def mlflow_server(tmp_path):
    """`mlflow server` on a free local port, its store in tmp_path: its URI."""
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ]
        + ["--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}"]
        + ["--default-artifact-root", str(tmp_path / "artifacts")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and server.poll() is None:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.2)
    uri = f"http://127.0.0.1:{port}"
    yield uri
    server.terminate()
    server.wait(timeout=30)


def test_a_server_named_by_uri_receives_the_run(demo_tables, demo_cache, tmp_path, mlflow_server):
    index, folds = demo_tables
    outputs, target = outputs_in(tmp_path / "train"), target_in(tmp_path / "results", mlflow_server)
    history = train_fold(index, folds, 0, SETTINGS, demo_cache["train"], outputs, tracked(target, outputs))
    client = MlflowClient(mlflow_server)
    [run] = child_runs(client, target)
    assert run.info.status == "FINISHED" and run.data.params["arch"] == "test_resnet"
    assert epochs_logged(client, run.info.run_id) == list(history["epoch"])
    assert not (tmp_path / "results" / "mlflow.db").exists()


def test_a_store_that_cannot_be_reached_is_one_warning_and_a_complete_run(
    demo_tables, demo_cache, tmp_path, caplog
):
    index, folds = demo_tables
    outputs = outputs_in(tmp_path / "train")
    target = target_in(tmp_path / "results", f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="facemask"):
        history = train_fold(
            index, folds, 0, SETTINGS, demo_cache["train"], outputs, tracked(target, outputs), device="cpu"
        )
    warnings = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "tracking" in warnings[0].getMessage(), [w.getMessage() for w in warnings]
    assert list(history["epoch"]) == [1, 2, 3] and outputs.checkpoint.exists()
    assert time.monotonic() - started < 120


def test_a_local_stores_files_go_beside_its_database_not_into_the_working_folder(tmp_path, monkeypatch):
    """MLflow's default puts a SQLite store's artifacts in ./mlruns of whatever folder a job runs from."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    target = TrackingTarget.of(Tracking(True), "results/run")
    (tmp_path / "scores.csv").write_text("macro_f1\n0.5\n")
    tracker = Tracker(target)
    run_id = tracker("parent run", lambda client: parent_run_id(client, target))
    tracker("artifact", lambda client: client.log_artifact(run_id, str(tmp_path / "scores.csv"), "results"))
    assert (tmp_path / "results/run/mlartifacts").is_dir()
    assert list((tmp_path / "results/run/mlartifacts").rglob("scores.csv"))
    assert not (tmp_path / "mlruns").exists()
