"""The tiny run on a real one-node SLURM cluster through profiles/slurm: every job an sbatch job,
logging where local jobs do, a failed job reported with its logs, and the same results as the
local run (tiny_run) with the same seed. To keep CI short the cluster runs one of the three
models (the ResNet block): its logits must equal the local run's byte for byte, and the submission
the vote of those logits."""

import os
import re
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from facemask.classes.decision import class_counts_to_match
from facemask.ensemble.vote import Vote, vote_eval_predictions
from facemask.tracking.store import PARENT_TAG
from facemask.utils.files import Member, read_member_tables

from .conftest import ROOT, TINY, demo_work_folder, snakemake

pytestmark = pytest.mark.slurm

SLURM_TESTS = ROOT / "tests" / "slurm"
PROFILES = ("--profile", str(ROOT / "profiles" / "slurm"), "--profile", str(SLURM_TESTS / "profile"))
MODEL = "resnet34"
# the jobs of one model's tiny run that go to SLURM; the small CPU rules are `localrule: True`
# (each in its rule file)
CLUSTER_JOBS = {"prepare_images": 2, "train": 2, "predict_eval": 2}
FOLDS = range(2)


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    """The environment in which sinfo and sbatch reach a one-node cluster started on this machine
    (tests/slurm/start_cluster.sh), and the cluster's folder; its daemons stop afterwards."""
    missing = [name for name in ("munged", "slurmctld", "slurmd", "sbatch") if shutil.which(name) is None]
    if (missing or os.geteuid() != 0) and os.environ.get("CI") != "true":
        pytest.skip(
            f"a SLURM cluster needs root and {' '.join(missing) or 'its daemons'} "
            "(apt-get install slurmctld slurmd slurm-client munge); CI installs them"
        )
    folder = tmp_path_factory.mktemp("slurm_cluster")
    try:
        start = subprocess.run(
            ["timeout", "-s", "KILL", "120", SLURM_TESTS / "start_cluster.sh", folder],
            capture_output=True,
            text=True,
        )
        assert start.returncode == 0, start.stdout + start.stderr
        print(start.stdout.strip())
        yield {**os.environ, "SLURM_CONF": str(folder / "slurm.conf")}, folder
    finally:
        subprocess.run([SLURM_TESTS / "stop_cluster.sh", folder])


def slurm_jobs(env) -> list[tuple[str, str]]:
    """(rule, state) of every job SLURM knows (finished ones stay for MinJobAge), from squeue."""
    listing = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--format=%k|%T"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [
        (re.fullmatch(r"rule_(\w+?)(_wildcards_.*)?", comment)[1], state)
        for comment, state in (line.split("|") for line in listing.splitlines())
    ]


@pytest.fixture(scope="module")
def slurm_run(slurm_cluster, tmp_path_factory):
    """A work folder in which the tiny run's `submission` was built through the SLURM profile, and
    the (rule, state) of the SLURM jobs of that run."""
    env, _ = slurm_cluster
    workdir = demo_work_folder(tmp_path_factory.mktemp("slurm_run"), tracking=True)
    (workdir / "one_model.yaml").write_text(yaml.safe_dump({"run_models": [MODEL]}))
    started = time.monotonic()
    run = snakemake(workdir, *PROFILES, "submission", configs=(*TINY, "one_model.yaml"), env=env, timeout=900)
    assert run.returncode == 0, run.stderr[-5000:]
    print(f"SLURM: the tiny run through profiles/slurm in {time.monotonic() - started:.0f} s")
    return workdir, slurm_jobs(env)


def test_every_cluster_job_ran_as_a_slurm_job(slurm_run):
    _, jobs = slurm_run
    assert {state for _, state in jobs} == {"COMPLETED"}, jobs
    assert Counter(rule for rule, _ in jobs) == CLUSTER_JOBS


def test_the_results_equal_the_local_runs(slurm_run, tiny_run):
    workdir, _ = slurm_run
    logits = sorted(
        path.relative_to(workdir) for path in workdir.glob(f"results/tiny/*/{MODEL}/fold*/*_logits.csv")
    )
    assert len(logits) == 4  # out-of-fold and eval logits of 2 folds
    for path in logits:
        assert (workdir / path).read_bytes() == (tiny_run / path).read_bytes(), path
    members = [Member(MODEL, fold) for fold in FOLDS]
    eval_logits = read_member_tables(
        members, [tiny_run / f"results/tiny/predict/{MODEL}/fold{fold}/eval_logits.csv" for fold in FOLDS]
    )
    image_ids = pd.read_csv(tiny_run / "results/tiny/index/eval_photos.csv", dtype=str)["ImageID"]
    counts = class_counts_to_match(tiny_run / "results/tiny/index/train_photos.csv", True)
    local_vote = vote_eval_predictions(eval_logits, Vote({MODEL: 1.0}), image_ids, counts)
    pd.testing.assert_frame_equal(
        pd.read_csv(workdir / "results/tiny/submission.csv", dtype={"ImageID": str}), local_vote
    )


def test_the_cluster_jobs_track_their_runs_in_the_results_folders_store(slurm_run):
    workdir, _ = slurm_run
    client = MlflowClient(f"sqlite:///{workdir / 'results/tiny/mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("facemask").experiment_id])
    [parent] = [run for run in runs if PARENT_TAG not in run.data.tags]
    children = [run for run in runs if run.data.tags.get(PARENT_TAG) == parent.info.run_id]
    names = sorted(run.info.run_name for run in children)
    assert [name.split()[0] for name in names] == [f"{MODEL}/fold{fold}" for fold in FOLDS]
    assert {run.info.status for run in runs} == {"FINISHED"}


def test_cluster_jobs_write_the_same_logs_as_local_jobs_and_their_slurm_output_to_logs_slurm(
    slurm_run, tiny_run
):
    workdir, _ = slurm_run

    def job_logs(folder: Path) -> list[str]:
        return sorted(
            str(log.relative_to(folder))
            for log in [*folder.glob("results/tiny/logs/**/*.log"), folder / "data/demo/demo_data.log"]
        )

    other_models = set(yaml.safe_load((ROOT / "config.yaml").read_text())["models"]) - {MODEL}
    # the local run's folder may also hold the log of a `predict` target run there
    # (tests/test_predict_many.py)
    local = [
        log
        for log in job_logs(tiny_run)
        if not any(part in log for part in (*other_models, "predict_photos"))
    ]
    assert job_logs(workdir) == local
    slurm_logs = workdir.glob("logs/slurm/**/*.log")  # logs/slurm/rule_<rule>/[<wildcards>/]<jobid>.log
    assert (
        Counter(log.relative_to(workdir / "logs/slurm").parts[0].removeprefix("rule_") for log in slurm_logs)
        == CLUSTER_JOBS
    )


def test_a_failed_cluster_job_is_reported_with_its_logs(slurm_cluster, slurm_run):
    env, _ = slurm_cluster
    workdir, _ = slurm_run
    # weights that no load-time check reads, in a model block added to the run: its train job stops
    # (the index, folds and image cache it needs are the run's, already built)
    (workdir / "broken_weights.pth").write_bytes(b"not a weights file")
    block = {"pretrained": "broken_weights.pth"}
    for name in reversed(("config.yaml", *TINY)):
        block = yaml.safe_load((workdir / name).read_text())["models"][MODEL] | block
    broken = {"run_models": ["broken"], "models": {"broken": block}}
    (workdir / "broken_model.yaml").write_text(yaml.safe_dump(broken))
    run = snakemake(
        workdir,
        *PROFILES,
        "results/tiny/train/broken/fold0/checkpoint.pt",
        configs=(*TINY, "broken_model.yaml"),
        env=env,
        timeout=600,
    )
    assert run.returncode == 1, run.stderr[-5000:]
    assert "Error in rule train" in run.stderr
    assert "results/tiny/logs/train/broken/fold0.log" in run.stderr
    slurm_log = re.search(r"\S*/logs/slurm/rule_train/\S+/\d+\.log", run.stderr)
    assert slurm_log and Path(slurm_log[0]).is_file(), run.stderr[-5000:]
    assert (
        "broken_weights.pth: not loadable as weights"
        in (workdir / "results/tiny/logs/train/broken/fold0.log").read_text()
    )
