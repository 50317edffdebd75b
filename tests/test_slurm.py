"""The demo on a real one-node SLURM cluster through profiles/slurm: every job an sbatch job,
logging where local jobs do, a failed job reported with its logs, and the same submission as the
local run (demo_run) with the same seed."""

import os
import re
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT, demo_work_folder, snakemake

pytestmark = pytest.mark.slurm

SLURM_TESTS = ROOT / "tests" / "slurm"
PROFILES = ("--profile", str(ROOT / "profiles" / "slurm"), "--profile", str(SLURM_TESTS / "profile"))
DEMO_JOBS = {"demo_data": 1, "index_photos": 1, "make_folds": 1, "prepare_images": 1, "train": 9, "predict": 9, "soft_vote": 1,
             "cv_summary": 1, "score_submission": 1, "plot_training_curves": 3, "plot_oof": 1,
             "plot_class_distribution": 1}


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    """The environment in which sinfo and sbatch reach a one-node cluster started on this machine
    (tests/slurm/start_cluster.sh), and the cluster's folder; its daemons stop afterwards."""
    missing = [name for name in ("munged", "slurmctld", "slurmd", "sbatch") if shutil.which(name) is None]
    if (missing or os.geteuid() != 0) and os.environ.get("CI") != "true":
        pytest.skip(f"a SLURM cluster needs root and {' '.join(missing) or 'its daemons'} "
                    "(apt-get install slurmctld slurmd slurm-client munge); CI installs them")
    folder = tmp_path_factory.mktemp("slurm_cluster")
    try:
        start = subprocess.run(["timeout", "-s", "KILL", "120", SLURM_TESTS / "start_cluster.sh", folder],
                               capture_output=True, text=True)
        assert start.returncode == 0, start.stdout + start.stderr
        print(start.stdout.strip())
        yield {**os.environ, "SLURM_CONF": str(folder / "slurm.conf")}, folder
    finally:
        subprocess.run([SLURM_TESTS / "stop_cluster.sh", folder])


def slurm_jobs(env) -> list[tuple[str, str]]:
    """(rule, state) of every job SLURM knows (finished ones stay for MinJobAge), from squeue."""
    listing = subprocess.run(["squeue", "--states=all", "--noheader", "--format=%k|%T"], env=env,
                             capture_output=True, text=True, check=True).stdout
    return [(re.fullmatch(r"rule_(\w+?)(_wildcards_.*)?", comment)[1], state)
            for comment, state in (line.split("|") for line in listing.splitlines())]


@pytest.fixture(scope="module")
def slurm_run(slurm_cluster, tmp_path_factory):
    """A work folder in which the demo's `submission` was built through the SLURM profile, and the
    (rule, state) of the SLURM jobs of that run."""
    env, _ = slurm_cluster
    workdir = demo_work_folder(tmp_path_factory.mktemp("slurm_run"))
    started = time.monotonic()
    run = snakemake(workdir, *PROFILES, "submission", env=env, timeout=1500)  # as the local run
    assert run.returncode == 0, run.stderr[-5000:]
    print(f"SLURM: the demo through profiles/slurm in {time.monotonic() - started:.0f} s")
    return workdir, slurm_jobs(env)


def test_every_demo_job_ran_as_a_slurm_job(slurm_run):
    _, jobs = slurm_run
    assert {state for _, state in jobs} == {"COMPLETED"}, jobs
    assert Counter(rule for rule, _ in jobs) == DEMO_JOBS


def test_the_submission_equals_the_local_runs(slurm_run, demo_run):
    workdir, _ = slurm_run
    submission = "results/demo/submission.csv"
    assert (workdir / submission).read_bytes() == (demo_run / submission).read_bytes()


def test_cluster_jobs_write_the_same_logs_as_local_jobs_and_their_slurm_output_to_logs_slurm(slurm_run, demo_run):
    workdir, _ = slurm_run

    def job_logs(folder: Path) -> list[str]:
        return sorted(str(log.relative_to(folder)) for log in [*folder.glob("results/demo/logs/**/*.log"),
                                                                 folder / "data/demo/demo_data.log"])

    assert job_logs(workdir) == job_logs(demo_run)
    slurm_logs = workdir.glob("logs/slurm/**/*.log")  # logs/slurm/rule_<rule>/[<wildcards>/]<jobid>.log
    assert Counter(log.relative_to(workdir / "logs/slurm").parts[0].removeprefix("rule_") for log in slurm_logs) == DEMO_JOBS


def test_a_failed_cluster_job_is_reported_with_its_logs(slurm_cluster, slurm_run):
    env, _ = slurm_cluster
    workdir, _ = slurm_run
    # more folds than the demo's 60 people: the make_folds job stops, after the index of the photos
    (workdir / "too_many_folds.yaml").write_text(yaml.safe_dump({"results_dir": "results/failed", "folds": {"k": 61}}))
    run = snakemake(workdir, *PROFILES, "results/failed/folds.csv", configs=("demo.yaml", "too_many_folds.yaml"),
                    env=env, timeout=300)
    assert run.returncode == 1, run.stderr[-5000:]
    assert "Error in rule make_folds" in run.stderr
    assert "results/failed/logs/make_folds.log" in run.stderr
    slurm_log = re.search(r"\S*/logs/slurm/rule_make_folds/\d+\.log", run.stderr)
    assert slurm_log and Path(slurm_log[0]).is_file(), run.stderr[-5000:]
    assert (workdir / "results/failed/logs/make_folds.log").read_text().strip()
