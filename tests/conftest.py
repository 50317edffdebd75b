"""Shared fixtures: a small generated data set in the competition layout; the tiny run and the demo
built by Snakemake; a real face photo."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from matplotlib import cbook

from facemask.config.blocks import ModelBlock
from facemask.config.schema import validated
from facemask.data.cache import prepare_cache
from facemask.data.dataset import index_eval_photos, index_train_photos
from facemask.data.demo import make_demo_data
from facemask.data.folds import make_folds
from facemask.train.block_verdicts import VERDICTS
from facemask.train.fold import TrainOutputs
from facemask.utils.files import write_csv

ROOT = Path(__file__).parents[1]
#: a real face photo that an installed package ships: Grace Hopper's portrait in matplotlib's sample
#: data, 512 x 600
PORTRAIT = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
#: the torch threads of a test's training: one under pytest-xdist (`-n 2`), whose two workers share
#: the two cores (two threads each would fight over them), else two
TORCH_THREADS = 1 if os.environ.get("PYTEST_XDIST_WORKER") else 2
if TORCH_THREADS == 1:
    torch.set_num_threads(TORCH_THREADS)
#: the config files of the tiny run: the demo's, updated by config/tiny.yaml (timm's test networks)
TINY = ("demo.yaml", "tiny.yaml")
#: where every work folder of a test session keeps the load-time check's verdicts (see demo_work_folder)
SHARED_VERDICTS: list[Path] = []


def snakemake(
    workdir: Path, *args: str, configs=("demo.yaml",), env=None, timeout=1500
) -> subprocess.CompletedProcess:
    """Run Snakemake on the repository's Snakefile in `workdir` with the demo config; killed (exit
    status 137) after `timeout` seconds, so that a hang fails the test instead of stalling it."""
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(ROOT / "Snakefile"),
        "--cores",
        "2",
        *args,
        "--configfile",
        *configs,
    ]
    return subprocess.run(
        ["timeout", "-s", "KILL", str(timeout), *command],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
    )


#: the shared runs, and the fixtures that read one (the SLURM run is compared with the tiny run)
SHARED_RUNS = {"demo_run": ("demo_run",), "tiny_run": ("tiny_run", "slurm_run")}
#: the tests that take minutes, in the order they start: the demo's, the full-size load test, the
#: tiny run's and the SLURM run's, the option matrix; the many short tests fill the cores after them
LONG_FIRST = ("demo_run", "scale", "tiny_run", "test_option_matrix")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the marks
def pytest_collection_modifyitems(items):
    """Under pytest-xdist (`-n 2`, with --dist loadgroup from pyproject.toml), every test that reads
    a shared run goes to one worker, which builds the run once; and the long tests start first
    (LONG_FIRST), so that the two workers end together."""
    for item in items:
        for run, readers in SHARED_RUNS.items():
            if set(readers) & set(item.fixturenames):
                item.add_marker(pytest.mark.xdist_group(run))
    items.sort(key=start_rank)


def start_rank(item: pytest.Item) -> int:
    """Where `item` starts: the index of its kind in LONG_FIRST, or after them all."""
    kinds = {mark.args[0] for mark in item.iter_markers("xdist_group")} | {
        m.name for m in item.iter_markers()
    }
    kinds.add(item.module.__name__.rpartition(".")[2])
    return next((rank for rank, kind in enumerate(LONG_FIRST) if kind in kinds), len(LONG_FIRST))


def demo_work_folder(workdir: Path, tracking: bool = False) -> Path:
    """`workdir` with the workflow's config.yaml, the demo's config as demo.yaml and config/tiny.yaml
    as tiny.yaml, tracking off unless asked (the runs that test it turn it on; the others would only
    pay for it). The folder shares the session's verdicts of the load-time check
    (facemask.train.block_verdicts), so that each block is built once a session, not once a folder."""
    shutil.copy(ROOT / "config.yaml", workdir / "config.yaml")
    shutil.copy(ROOT / "config" / "tiny.yaml", workdir / "tiny.yaml")
    demo = (ROOT / "config" / "demo.yaml").read_text()
    (workdir / "demo.yaml").write_text(demo if tracking else f"{demo}\ntracking: false\n")
    verdicts = workdir / VERDICTS
    if SHARED_VERDICTS and not verdicts.is_symlink():
        verdicts.parent.mkdir(parents=True, exist_ok=True)
        verdicts.symlink_to(SHARED_VERDICTS[0], target_is_directory=True)
    return workdir


@pytest.fixture(scope="session", autouse=True)
def shared_verdicts(tmp_path_factory):
    """One folder of load-time check verdicts for every work folder of the session."""
    SHARED_VERDICTS.append(tmp_path_factory.mktemp("checked_blocks"))
    yield
    SHARED_VERDICTS.clear()


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A work folder in which the tiny run's `submission` target was built (config/tiny.yaml over the
    demo's config: every rule, timm's test networks, tracking on), shared by the tests that check
    wiring, reruns, the bundle, tracking and the SLURM run, which compares its own run with it."""
    workdir = demo_work_folder(tmp_path_factory.mktemp("tiny"), tracking=True)
    run = snakemake(workdir, "submission", configs=TINY)
    assert run.returncode == 0, run.stderr[-5000:]
    return workdir


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """A work folder in which the README's demo built its `submission` target: the tests that check
    that the demo learns read it."""
    workdir = demo_work_folder(tmp_path_factory.mktemp("workflow"))
    run = snakemake(workdir, "submission")
    assert run.returncode == 0, run.stderr[-5000:]
    return workdir


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory):
    """12 training and 4 eval people of the demo generator, 48 x 64 pixels."""
    root = tmp_path_factory.mktemp("demo")
    make_demo_data(root, train_people=12, eval_people=4, width=48, height=64, seed=3)
    return root


@pytest.fixture(scope="session")
def demo_cache(demo_dir):
    """The demo_dir photos in the image cache at 36 x 36 (for 32 x 32 models): train and eval paths."""
    return prepare_test_cache(demo_dir, (36, 36))


@pytest.fixture(scope="session")
def demo_tables(demo_dir):
    """The demo_dir's training index and its people in 3 folds."""
    index = index_train_photos(demo_dir, (30, 60))
    return index, make_folds(index, k=3, seed=0)


def outputs_in(folder: Path) -> TrainOutputs:
    """A train job's outputs in `folder` (made if missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    return TrainOutputs(folder / "checkpoint.pt", folder / "oof_logits.csv", folder / "history.csv")


#: fold 0 of a block trained in a process of its own; with a results folder, tracked in its store
TRAIN_IN_SUBPROCESS = """
import json, sys
from pathlib import Path
import pandas as pd
from facemask.config.blocks import ModelBlock
from facemask.config.sections import Tracking
from facemask.tracking.store import TrackingTarget
from facemask.tracking.train_runs import TrainTracking
from facemask.train.fold import TrainOutputs, train_fold
index, folds = (pd.read_csv(path, dtype={"person": str}) for path in sys.argv[1:3])
out = Path(sys.argv[4])
outputs = TrainOutputs(out / "checkpoint.pt", out / "oof_logits.csv", out / "history.csv")
target = TrackingTarget.of(Tracking(True), sys.argv[6]) if len(sys.argv) > 6 else None
tracking = TrainTracking(target, outputs.tracking_record, "fold0", {})
train_fold(index, folds, 0, ModelBlock.from_config(json.loads(sys.argv[5])), sys.argv[3], outputs, tracking)
"""


def kill_a_train_job_mid_run(tmp_path, tables, cache, settings: ModelBlock, *results: Path) -> TrainOutputs:
    """Train fold 0 of `settings` in a process of its own (tracked in the store of the results
    folder, when given), killed (SIGKILL) once its first epoch is saved: its outputs' paths."""
    for table, name in zip(tables, ("index.csv", "folds.csv"), strict=True):
        write_csv(table, tmp_path / name)
    killed = outputs_in(tmp_path / "killed")
    arguments = [tmp_path / "index.csv", tmp_path / "folds.csv", cache, tmp_path / "killed"]
    arguments += [json.dumps(settings.as_config()), *results]
    job = subprocess.Popen([sys.executable, "-c", TRAIN_IN_SUBPROCESS, *map(str, arguments)])
    deadline = time.monotonic() + 300
    while not killed.resume_state.exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(job.pid, signal.SIGKILL)
    job.wait()
    assert killed.resume_state.exists() and not killed.checkpoint.exists(), "the job was not killed mid-run"
    return killed


@pytest.fixture(scope="session")
def learnable(tmp_path_factory):
    """45 training people of the demo generator at 48 x 64, cached at 54 x 40 (for 48 x 36
    models), in 3 folds: enough for short runs to learn: cache path, index and folds."""
    root = tmp_path_factory.mktemp("learnable")
    make_demo_data(root, train_people=45, eval_people=1, width=48, height=64, seed=11)
    index = index_train_photos(root, (30, 60))
    return prepare_test_cache(root, (54, 40))["train"], index, make_folds(index, k=3, seed=0)


def prepare_test_cache(root, size) -> dict:
    """The image cache of the data set at `root`, rows in index order, at `size`: train and eval paths."""
    outputs = {
        "train": root / "cache" / f"{size[0]}x{size[1]}" / "train.npy",
        "eval": root / "cache" / f"{size[0]}x{size[1]}" / "eval.npy",
    }
    prepare_cache(
        root, {"train": index_train_photos(root, (30, 60)), "eval": index_eval_photos(root)}, size, outputs
    )
    return outputs


def model_settings(**block) -> ModelBlock:
    """A model block as a train job gets it: the schema's defaults filled in, the global precision
    where it sets none."""
    config = validated({"models": {"model": block}})
    return ModelBlock.from_config(config["models"]["model"], config["precision"])
