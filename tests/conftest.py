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
from filelock import FileLock
from matplotlib import cbook

from facemask.config.blocks import ModelBlock
from facemask.config.schema import validated
from facemask.config.sections import WHOLE_PHOTO
from facemask.data.cache import prepare_cache
from facemask.data.demo import make_demo_data
from facemask.data.folds import make_folds
from facemask.data.photo_index import index_eval_photos, index_train_photos
from facemask.train.fold import TrainOutputs
from facemask.train.passed_checks import PASSED_CHECKS
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


#: the runs whose readers share one worker's fixture: the demo's, the SLURM run's (the tiny run is
#: built once for both workers, each reading a copy: see tiny_run)
SHARED_RUNS = {"demo_run": ("demo_run",), "slurm_run": ("slurm_run",)}
#: the tests that take minutes, in the order they start: the demo's (on one worker) beside the tiny
#: run's (the other worker builds the run meanwhile), the SLURM run's, the option matrix, the load
#: test; the many short tests fill the cores after them
LONG_FIRST = ("demo_run", "tiny_run", "slurm_run", "test_option_matrix", "scale")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the marks
def pytest_collection_modifyitems(items):
    """Under pytest-xdist (`-n 2`, with --dist loadgroup from pyproject.toml), every test that reads
    the demo's or the SLURM run goes to one worker, which builds the run once; and the long tests
    start first (LONG_FIRST), so that the two workers end together."""
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
    kinds |= {item.module.__name__.rpartition(".")[2], *item.fixturenames}
    return next((rank for rank, kind in enumerate(LONG_FIRST) if kind in kinds), len(LONG_FIRST))


def demo_work_folder(workdir: Path, tracking: bool = False) -> Path:
    """`workdir` with the workflow's config.yaml, the demo's config as demo.yaml and config/tiny.yaml
    as tiny.yaml, tracking off unless asked (the runs that test it turn it on; the others would only
    pay for it). The folder shares the session's verdicts of the load-time check
    (facemask.train.passed_checks), so that each block is built once a session, not once a folder."""
    shutil.copy(ROOT / "config.yaml", workdir / "config.yaml")
    shutil.copy(ROOT / "config" / "tiny.yaml", workdir / "tiny.yaml")
    demo = (ROOT / "config" / "demo.yaml").read_text()
    (workdir / "demo.yaml").write_text(demo if tracking else f"{demo}\ntracking: false\n")
    verdicts = workdir / PASSED_CHECKS
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


def built_once(tmp_path_factory, name: str, build) -> Path:
    """The folder `build(folder)` fills, built once a test session: under pytest-xdist by the first
    worker that asks, in the folder the workers share, the others waiting for it."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        folder = tmp_path_factory.mktemp(name)
        build(folder)
        return folder
    shared = tmp_path_factory.getbasetemp().parent
    folder, done = shared / name, shared / f"{name}.done"
    with FileLock(shared / f"{name}.lock"):
        if not done.exists():
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


def build_tiny_run(workdir: Path) -> None:
    demo_work_folder(workdir, tracking=True)
    run = snakemake(workdir, "submission", configs=TINY)
    assert run.returncode == 0, run.stderr[-5000:]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A work folder in which the tiny run's `submission` target was built (config/tiny.yaml over the
    demo's config: every rule, timm's test networks, tracking on), read by the tests that check
    wiring, reruns, the bundle, tracking and the SLURM run, which compares its own run with it. The
    run is built once a session; each worker reads a copy of its own (a finished run: the copy keeps
    the files' times and Snakemake's records), so that its readers spread over both workers."""
    built = built_once(tmp_path_factory, "tiny_built", build_tiny_run)
    workdir = tmp_path_factory.mktemp("tiny")
    shutil.copytree(built, workdir, ignore=shutil.ignore_patterns(PASSED_CHECKS.name), dirs_exist_ok=True)
    return demo_work_folder(workdir, tracking=True)


#: the demo's config with one of its two folds run: the README's recipe, data and vote through
#: Snakemake at half the demo's cost (its two folds are timed in docs/benchmarks.md)
DEMO_ONE_FOLD = "folds: {k: 2, run: [0]}\n"


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """A work folder in which the README's demo, fold 0 of its 2, built its `submission` target: the
    tests that check that the demo learns read it."""
    workdir = demo_work_folder(tmp_path_factory.mktemp("workflow"))
    (workdir / "one_fold.yaml").write_text(DEMO_ONE_FOLD)
    run = snakemake(workdir, "submission", configs=("demo.yaml", "one_fold.yaml"))
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
        root,
        {"train": index_train_photos(root, (30, 60)), "eval": index_eval_photos(root)},
        size,
        outputs,
        WHOLE_PHOTO,
    )
    return outputs


def model_settings(**block) -> ModelBlock:
    """A model block as a train job gets it: the schema's defaults filled in, the global precision
    where it sets none."""
    config = validated({"models": {"model": block}})
    return ModelBlock.from_config(config["models"]["model"], config["precision"])
