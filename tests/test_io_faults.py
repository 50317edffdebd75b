"""A full disk, a bad checkpoint, a killed Snakemake: a clear error naming the file, no partial file
under a final name, and a rerun that ends as an uninterrupted run."""

import errno
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

from facemask.classes.labels import LOGIT_COLUMNS
from facemask.config.sections import WHOLE_PHOTO, ImageCache, TestTimeAugmentation
from facemask.data import cache
from facemask.data.cache import prepare_photos
from facemask.data.photo_index import index_eval_photos, index_train_photos
from facemask.ensemble.bundle import Bundle, BundleMember
from facemask.ensemble.vote import Vote
from facemask.model.classifier import create_classifier, save_checkpoint
from facemask.model.inference import PredictOptions, predict_eval_photos
from facemask.utils.errors import PipelineError
from facemask.utils.files import Member, partial_path, write_csv

from .conftest import ROOT, demo_work_folder

META = {
    "arch": "resnet18",
    "head": "single",
    "model_kwargs": {},
    "epoch": 1,
    "fold": 0,
    "data_config": {
        "input_size": (3, 32, 32),
        "interpolation": "bicubic",
        "mean": (0.5,) * 3,
        "std": (0.25,) * 3,
    },
}
TTA = TestTimeAugmentation((), "mean", 8)


def fill_the_disk_under(path):
    """Make the writes to `path` (through its partial file) fail as on a full disk: /dev/full
    answers every write with ENOSPC."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial_path(path).symlink_to("/dev/full")


WRITERS = {
    "checkpoint": lambda demo_dir, path: save_checkpoint(path, create_classifier("resnet18"), META),
    "image cache": lambda demo_dir, path: prepare_photos(
        demo_dir, list(index_eval_photos(demo_dir)["path"]), (36, 36), path, WHOLE_PHOTO
    ),
    "submission": lambda demo_dir, path: write_csv(
        pd.DataFrame({"ImageID": ["a.jpg"] * 5000, "ans": 3}), path
    ),
}


@pytest.mark.parametrize(
    ("output", "name"),
    [("checkpoint", "checkpoint.pt"), ("image cache", "eval.npy"), ("submission", "submission.csv")],
)
def test_a_full_disk_while_writing_is_a_clear_error_and_leaves_the_previous_file(
    demo_dir, tmp_path, output, name
):
    target = tmp_path / "out" / name
    fill_the_disk_under(target)
    with pytest.raises(PipelineError, match=f"{target}: the disk is full"):
        WRITERS[output](demo_dir, target)
    assert list(target.parent.iterdir()) == []
    target.write_bytes(b"an earlier, complete output")
    fill_the_disk_under(target)
    with pytest.raises(PipelineError, match="the disk is full"):
        WRITERS[output](demo_dir, target)
    assert list(target.parent.iterdir()) == [target] and target.read_bytes() == b"an earlier, complete output"


def no_space_for(*allocation):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_an_image_cache_too_big_for_the_disk_fails_before_decoding_any_photo(demo_dir, tmp_path, monkeypatch):
    decoded = []
    monkeypatch.setattr(cache, "load_prepared", lambda *args: decoded.append(args))
    monkeypatch.setattr(os, "posix_fallocate", no_space_for)
    with pytest.raises(PipelineError, match="eval.npy: the disk is full"):
        photos = list(index_eval_photos(demo_dir)["path"])
        prepare_photos(demo_dir, photos, (36, 36), tmp_path / "eval.npy", WHOLE_PHOTO)
    assert decoded == [] and list(tmp_path.iterdir()) == []


def write_checkpoint(path, kind):
    """A file at `path` that predict must refuse: a cut-off checkpoint, another program's file, ..."""
    if kind == "truncated":
        save_checkpoint(path, create_classifier("resnet18"), META)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("model: resnet18\nepochs: 10\n")
    elif kind == "weights alone":
        torch.save(create_classifier("resnet18").state_dict(), path)
    elif kind == "weights of another model":
        save_checkpoint(path, create_classifier("resnet34"), META)


@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        ("truncated", "not a readable checkpoint"),
        ("empty", "not a readable checkpoint"),
        ("text", "not a readable checkpoint"),
        ("weights alone", "not a checkpoint written by a train job"),
        ("weights of another model", "its weights do not fit its model resnet18"),
    ],
)
def test_a_truncated_or_foreign_checkpoint_at_predict_time_is_an_error_naming_it(
    demo_dir, demo_cache, tmp_path, kind, problem
):
    checkpoint = tmp_path / "checkpoint.pt"
    write_checkpoint(checkpoint, kind)
    with pytest.raises(PipelineError, match=f"{checkpoint}: {problem}"):
        predict_eval_photos(checkpoint, index_eval_photos(demo_dir), demo_cache["eval"], PredictOptions(TTA))


# Snakemake killed during the vote ----------------------------------------------------------------

VOTE_CONFIG = "results_dir: results\nfolds: {k: 2}\nrun_models: [resnet34, efficientnetv2_rw_t]\n"


def vote_folder(workdir, demo_dir):
    """A work folder holding everything the soft vote reads: the index, every member's logits, and
    the ensemble bundle (its checkpoints stand-ins: the vote reads only its weights and offsets)."""
    demo_work_folder(workdir)
    (workdir / "vote.yaml").write_text(VOTE_CONFIG)
    train, evaluation = index_train_photos(demo_dir, (30, 60)), index_eval_photos(demo_dir)
    write_csv(train, workdir / "results/index/train_photos.csv")
    write_csv(evaluation, workdir / "results/index/eval_photos.csv")
    rng = np.random.default_rng(0)
    for model in ("resnet34", "efficientnetv2_rw_t"):
        for fold in (0, 1):
            for table, name in (
                (evaluation[["ImageID"]], "predict/{}/fold{}/eval_logits.csv"),
                (train[["path", "person", "label"]].assign(fold=fold), "train/{}/fold{}/oof_logits.csv"),
            ):
                logits = pd.DataFrame(rng.normal(size=(len(table), 18)), columns=list(LOGIT_COLUMNS))
                write_csv(table.join(logits), workdir / "results" / name.format(model, fold))
    members = [Member(model, fold) for model in ("resnet34", "efficientnetv2_rw_t") for fold in (0, 1)]
    checkpoints = [workdir / f"results/train/{model}/fold{fold}/checkpoint.pt" for model, fold in members]
    for checkpoint in checkpoints:
        checkpoint.write_bytes(b"a stand-in")
    meta = {"arch": "resnet34", "head": "single", "epoch": 1, "data_config": {"input_size": [3, 64, 48]}}
    cache = ImageCache(1.125, WHOLE_PHOTO)
    trained = tuple(
        BundleMember.of(member, checkpoint, meta, 0.25, cache)
        for member, checkpoint in zip(members, checkpoints, strict=True)
    )
    vote = Vote({"resnet34": 1.0, "efficientnetv2_rw_t": 1.0})
    offsets = tuple(rng.normal(size=18).tolist())
    bundle = Bundle(trained, vote, False, TTA, (30, 60), class_offsets=offsets, offsets_fitted_on="a test")
    bundle.write(workdir / "results/ensemble/ensemble.json")
    return workdir


def vote_command(*options):
    """Snakemake building only the submission from the prepared folder (no other rule may run)."""
    return [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(ROOT / "Snakefile"),
        "results/submission.csv",
        "--cores",
        "1",
        "--allowed-rules",
        "soft_vote",
        *options,
        "--configfile",
        "demo.yaml",
        "vote.yaml",
    ]


@pytest.fixture(scope="module")
def uninterrupted_vote(demo_dir, tmp_path_factory):
    workdir = vote_folder(tmp_path_factory.mktemp("uninterrupted"), demo_dir)
    run = subprocess.run(vote_command(), cwd=workdir, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return (workdir / "results/submission.csv").read_bytes()


def kill_when_the_vote_starts(workdir, whole_group: bool) -> None:
    """Start Snakemake, and SIGKILL it once the vote job has begun (its log exists): Snakemake alone,
    leaving its job to finish as an orphan, or with its job, as a lost node or `kill -9 -- -PGID`."""
    snakemake = subprocess.Popen(
        vote_command(),
        cwd=workdir,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while (
        not (workdir / "results/logs/soft_vote.log").exists()
        and snakemake.poll() is None
        and time.monotonic() < deadline
    ):
        time.sleep(0.01)
    if whole_group:
        os.killpg(snakemake.pid, signal.SIGKILL)
    else:
        snakemake.kill()
    assert snakemake.wait() == -signal.SIGKILL, "Snakemake ended before it was killed"
    while time.monotonic() < deadline:  # an orphaned job runs on: wait for it as the user would
        try:
            os.killpg(snakemake.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


@pytest.mark.parametrize("whole_group", [False, True], ids=["snakemake alone", "snakemake and its job"])
def test_snakemake_killed_during_the_vote_reruns_to_the_uninterrupted_submission(
    demo_dir, tmp_path, uninterrupted_vote, whole_group
):
    workdir = vote_folder(tmp_path, demo_dir)
    kill_when_the_vote_starts(workdir, whole_group)
    submission = workdir / "results/submission.csv"
    assert (
        not submission.exists() or submission.read_bytes() == uninterrupted_vote
    )  # never a partial file under its name
    # what Snakemake's messages ask for after a kill: remove its lock, rerun the incomplete job
    assert (
        subprocess.run(vote_command("--unlock"), cwd=workdir, capture_output=True, timeout=300).returncode
        == 0
    )
    rerun = subprocess.run(
        vote_command("--rerun-incomplete"), cwd=workdir, capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert submission.read_bytes() == uninterrupted_vote
    assert not partial_path(submission).exists()
