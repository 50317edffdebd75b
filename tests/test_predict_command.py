"""`facemask predict`, quiet and clear: one device check before any photo, one warning a run, every
file of a folder predicted or named, a hand-edited bundle refused, --quiet, --verbose and a summary.
A tiny ensemble of untrained members stands in for a trained one: the command's behaviour, not its
answers, is tested here (test_predict_many compares the answers with the submission)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from facemask.config.sections import WHOLE_PHOTO, Crop, ImageCache, TestTimeAugmentation
from facemask.ensemble.bundle import Bundle, BundleError, BundleMember
from facemask.ensemble.vote import Vote
from facemask.model.classifier import create_classifier, model_data_config, save_checkpoint
from facemask.predict.photos import read_checked_bundle
from facemask.utils.files import Member

from .conftest import PORTRAIT

ARCH = "test_efficientnet"
MEMBERS = 3
CACHE = ImageCache(1.125, WHOLE_PHOTO)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """An ensemble bundle of three folds of timm's smallest test network at 32 x 32, untrained."""
    folder = tmp_path_factory.mktemp("tiny_ensemble")
    trained = []
    for fold in range(MEMBERS):
        model = create_classifier(ARCH)
        meta = {"arch": ARCH, "head": "single", "model_kwargs": {}, "epoch": 1, "fold": fold}
        meta |= {"data_config": model_data_config(model, (32, 32)), "val_f1": 0.5, "precision": "fp32"}
        checkpoint = folder / f"train/tiny/fold{fold}/checkpoint.pt"
        save_checkpoint(checkpoint, model, meta | {"age_cuts": None})
        trained.append(BundleMember.of(Member("tiny", fold), checkpoint, meta, 1 / MEMBERS, CACHE))
    # no class offsets, the TTA of the demo
    tta = TestTimeAugmentation(("HorizontalFlip",), "mean", 8)
    Bundle(tuple(trained), Vote({"tiny": 1.0}), False, tta, (30, 60)).write(folder / "ensemble/ensemble.json")
    return folder / "ensemble/ensemble.json"


def predict(bundle: Path, workdir: Path, *args) -> subprocess.CompletedProcess:
    """`facemask predict ARGS` with the tiny bundle, in `workdir`, on one thread, GPUs hidden."""
    command = [sys.executable, "-m", "facemask.predict.cli", "predict", *map(str, args)]
    command += ["--ensemble", str(bundle), "--threads", "1"]
    env = os.environ | {"CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=600, env=env)


def levels(stderr: str) -> list[str]:
    """The level of each log line (the console's format: date, time, level, message)."""
    return [line.split()[2] for line in stderr.splitlines() if re.match(r"\d{4}-\d\d-\d\d ", line)]


@pytest.fixture(scope="module")
def portrait_run(bundle, tmp_path_factory):
    """The command on one photo, as it is run by default: its run and the CSV it wrote."""
    workdir = tmp_path_factory.mktemp("portrait")
    run = predict(bundle, workdir, PORTRAIT, "--out", "out.csv")
    assert run.returncode == 0, run.stderr[-3000:]
    return run, pd.read_csv(workdir / "out.csv")


def test_a_run_without_a_gpu_warns_once_not_once_per_member(portrait_run):
    run, predicted = portrait_run
    assert run.stderr.count("torch sees no GPU") == 1, run.stderr
    assert list(predicted["path"]) == [str(PORTRAIT)]


def test_a_run_ends_with_a_summary_line(portrait_run):
    run, _ = portrait_run
    last = run.stderr.strip().splitlines()[-1]
    assert re.search(rf"INFO wrote out\.csv: 1 photos, {MEMBERS} members, [\d.]+ s, [\d.]+ photos/s$", last)


def test_device_cuda_without_a_gpu_stops_before_any_photo_is_read(bundle, tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"not a JPEG at all")
    run = predict(bundle, tmp_path, PORTRAIT, "broken.jpg", "--device", "cuda", "--out", "out.csv")
    assert run.returncode == 1
    # one line: the device's error, not the photo's (the photos were not looked at)
    assert levels(run.stderr) == ["ERROR"], run.stderr
    assert "device is cuda, but torch sees no GPU" in run.stderr and "broken.jpg" not in run.stderr
    assert not (tmp_path / "out.csv").exists()


def test_a_webp_in_a_folder_is_predicted_and_other_files_are_named(bundle, tmp_path):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    with Image.open(PORTRAIT) as portrait:
        portrait.save(folder / "a.jpg")
        portrait.save(folder / "sub" / "b.webp")
        portrait.save(folder / "sub" / "c.BMP")
    (folder / "notes.txt").write_text("not a photo")
    (folder / "sub" / "features.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    run = predict(bundle, tmp_path, folder, "--out", "out.csv")
    assert run.returncode == 0, run.stderr[-3000:]
    predicted = pd.read_csv(tmp_path / "out.csv")
    assert list(predicted["path"]) == [str(folder / name) for name in ("a.jpg", "sub/b.webp", "sub/c.BMP")]
    assert f"ignored 2 files that are not images: {folder / 'notes.txt'}, {folder / 'sub/features.h5'}" in (
        run.stderr
    )


@pytest.mark.parametrize("given", ["by name", "in a folder"])
def test_a_broken_symbolic_link_is_named(bundle, tmp_path, given):
    folder = tmp_path / "photos"
    folder.mkdir()
    with Image.open(PORTRAIT) as portrait:
        portrait.save(folder / "a.jpg")
    (folder / "b.jpg").symlink_to(tmp_path / "gone.jpg")
    photos = [folder / "a.jpg", folder / "b.jpg"] if given == "by name" else [folder]
    run = predict(bundle, tmp_path, *photos, "--out", "out.csv")
    assert run.returncode == 1
    assert f"{folder / 'b.jpg'}: a broken symbolic link (to {tmp_path / 'gone.jpg'})" in run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("arch", "resnet18"),
        ("image_size", [64, 64]),
        ("head", "multi"),
        ("data_config", {"mean": [0.0, 0.0, 0.0]}),
        ("precision", "bf16"),
    ],
)
def test_a_bundle_edited_by_hand_that_disagrees_with_a_checkpoint_is_refused(bundle, field, value):
    edited = bundle.with_name(f"edited_{field}.json")
    content = json.loads(bundle.read_text())
    member = content["members"][1]
    member[field] = member[field] | value if isinstance(value, dict) else value
    edited.write_text(json.dumps(content))
    with pytest.raises(BundleError, match=rf"^{re.escape(str(edited))}: member tiny fold 1: {field} "):
        read_checked_bundle(edited)
    assert len(read_checked_bundle(bundle).members) == MEMBERS  # the bundle as written reads


def test_a_bundle_written_elsewhere_reads_back_the_same(bundle, tmp_path):
    written = Bundle.read(bundle)
    assert [member.key for member in written.members] == [Member("tiny", fold) for fold in range(MEMBERS)]
    assert {(member.cache, member.cache_size) for member in written.members} == {(CACHE, (36, 36))}
    written.write(tmp_path / "results/ensemble/ensemble.json")
    assert Bundle.read(tmp_path / "results") == written  # checkpoints relative to the new folder


def test_a_bundle_from_before_the_vote_margin_crop_and_face_detector_were_stored_reads(bundle, tmp_path):
    content = json.loads(bundle.read_text())
    del content["vote"]
    for member in content["members"]:
        member["checkpoint"] = str(bundle.parent / member["checkpoint"])  # absolute: read from tmp_path
        member["cache"] = {"size": member["cache"]["size"], "face_crop": True, "face_scale": 2.0}
    (tmp_path / "old.json").write_text(json.dumps(content))
    old = Bundle.read(tmp_path / "old.json")
    assert old.vote == Vote({"tiny": 1.0}) and old.members[0].cache_size == (36, 36)
    assert old.members[0].cache == ImageCache(1.125, Crop("face", 2.0, "haar"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not an ensemble bundle"),
        ('{"format": 2, "members": [{}]}', "bundle format 2 with 1 members; this version reads format 1"),
        ('{"format": 1, "members": [{"model": "tiny"}]}', "not an ensemble bundle"),
    ],
)
def test_a_file_that_is_no_bundle_of_this_format_is_refused_by_name(tmp_path, content, message):
    (tmp_path / "ensemble.json").write_text(content)
    with pytest.raises(BundleError, match=rf"^{re.escape(str(tmp_path / 'ensemble.json'))}: {message}"):
        Bundle.read(tmp_path / "ensemble.json")


@pytest.mark.parametrize("flag", ["--quiet", "--verbose"])
def test_quiet_shows_warnings_and_errors_only_and_verbose_adds_debug_lines(bundle, tmp_path, flag):
    run = predict(bundle, tmp_path, PORTRAIT, "--out", "out.csv", flag)
    assert run.returncode == 0, run.stderr[-3000:]
    if flag == "--quiet":
        assert levels(run.stderr) == ["WARNING"], run.stderr  # torch sees no GPU
    else:
        assert {"DEBUG", "INFO", "WARNING"} <= set(levels(run.stderr)), run.stderr
        assert f"DEBUG member tiny fold {MEMBERS - 1}: " in run.stderr
