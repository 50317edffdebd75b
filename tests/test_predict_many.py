"""Train once, predict many: eval-side changes never retrain, and the ensemble bundle predicts any
photos (Snakemake's `predict` target and the `facemask predict` command) as the submission does."""

import dataclasses
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from facemask.classes.labels import GENDER_NAMES, MASK_NAMES
from facemask.ensemble.bundle import Bundle

from .conftest import TINY, snakemake
from .test_workflow import planned_jobs

pytestmark = pytest.mark.workflow

#: what an eval-side data change reruns: the eval index and cache, every member's TTA logits, the vote
EVAL_SIDE = {
    "index_photos": 1,
    "prepare_images": 1,
    "predict_eval": 6,
    "ensemble_bundle": 1,
    "soft_vote": 1,
    "score_submission": 1,
    "plot_class_distribution": 1,
    "track_results": 1,
    "submission": 1,
}


@contextmanager
def restored(*paths: Path):
    """Let a test change files; put back their bytes and dates afterwards."""
    saved = {path: (path.read_bytes(), path.stat()) for path in paths}
    try:
        yield
    finally:
        for path, (data, status) in saved.items():
            path.write_bytes(data)
            os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns))


def dry_run(workdir: Path, *configs: str) -> dict[str, int]:
    """The jobs a dry run of `submission` plans, by rule."""
    return planned_jobs(snakemake(workdir, "submission", "--dry-run", configs=(*TINY, *configs)))


def replace_photo(path: Path) -> None:
    """Overwrite a photo with its mirror image (same format, new bytes, a new date)."""
    with Image.open(path) as image:
        mirrored = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    mirrored.save(path, format=image.format)


def facemask_predict(workdir: Path, *args) -> subprocess.CompletedProcess:
    """The `facemask` command, run in `workdir`."""
    command = [sys.executable, "-m", "facemask.predict.cli", "predict", *map(str, args)]
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=600)


def test_removing_a_row_of_info_csv_reruns_only_the_eval_side(tiny_run):
    info = tiny_run / "data/demo/eval/info.csv"
    with restored(info):
        info.write_text("".join(info.read_text().splitlines(keepends=True)[:-5]))
        assert dry_run(tiny_run) == EVAL_SIDE


def test_replacing_one_eval_photo_reruns_only_the_eval_side(tiny_run):
    photo = next((tiny_run / "data/demo/eval/images").iterdir())
    with restored(photo):
        replace_photo(photo)
        assert dry_run(tiny_run) == EVAL_SIDE


def test_changing_the_tta_reruns_the_predictions_and_the_vote_only(tiny_run):
    (tiny_run / "tta.yaml").write_text(
        yaml.safe_dump({"tta": {"transforms": ["HorizontalFlip", "VerticalFlip"]}})
    )
    # the eval side without the eval index and cache
    assert dry_run(tiny_run, "tta.yaml") == {
        rule: jobs for rule, jobs in EVAL_SIDE.items() if rule not in ("index_photos", "prepare_images")
    }


def test_replacing_one_training_photo_retrains_every_member(tiny_run):
    photo = next(next((tiny_run / "data/demo/train/images").iterdir()).glob("normal.*"))
    with restored(photo):
        replace_photo(photo)
        planned = dry_run(tiny_run)
    assert planned["train"] == 6 and planned["index_photos"] == 1 and planned["prepare_images"] == 1, planned


def test_the_bundle_lists_every_member_with_what_a_prediction_needs(tiny_run):
    bundle = Bundle.read(tiny_run / "results/tiny")  # every checkpoint found, its digest unchanged
    assert [member.key for member in bundle.members] == [
        (model, fold) for model in ("vit_small_r26", "efficientnetv2_rw_t", "resnet34") for fold in range(2)
    ]
    for member in bundle.members:
        assert member.image_size == (32, 32) and member.cache_size == (36, 36)
        assert len(member.data_config["mean"]) == 3 and len(member.sha256) == 64
        assert member.checkpoint.is_relative_to((tiny_run / "results/tiny/train").resolve())
    assert len(bundle.class_offsets or ()) == 18 and bundle.tta.transforms == ("HorizontalFlip",)
    assert bundle.age_bins == (30, 60)


def test_the_bundle_predicts_the_submission_from_the_eval_photos(tiny_run, tmp_path):
    image_ids = pd.read_csv(tiny_run / "data/demo/eval/info.csv", dtype=str)["ImageID"]
    photos = [f"data/demo/eval/images/{image_id}" for image_id in image_ids]
    run = facemask_predict(
        tiny_run, *photos, "--ensemble", "results/tiny", "--out", tmp_path / "eval.csv", "--threads", "1"
    )
    assert run.returncode == 0, run.stderr[-3000:]
    predicted = pd.read_csv(tmp_path / "eval.csv")
    submission = pd.read_csv(tiny_run / "results/tiny/submission.csv", dtype={"ImageID": str})
    assert list(predicted["path"]) == photos
    assert list(predicted["ans"]) == list(submission["ans"])
    assert list(predicted["mask"]) == [MASK_NAMES[a // 6] for a in predicted["ans"]]
    assert list(predicted["gender"]) == [GENDER_NAMES[(a // 3) % 2] for a in predicted["ans"]]
    probabilities = predicted[[f"prob_{c:02d}" for c in range(18)]].to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-6)


@pytest.fixture
def nested_photos(tiny_run, tmp_path) -> Path:
    """Six demo eval photos in nested folders with mixed extensions (.jpg, .JPEG, .png), and a text file."""
    folder = tmp_path / "new_photos"
    sources = sorted((tiny_run / "data/demo/eval/images").iterdir())[:6]
    targets = ["a.jpg", "b.JPEG", "sub/c.png", "sub/d.jpg", "sub/deeper/e.PNG", "sub/deeper/f.jpeg"]
    for source, target in zip(sources, targets, strict=True):
        (folder / target).parent.mkdir(parents=True, exist_ok=True)
        with Image.open(source) as image:
            image.save(
                folder / target, format="PNG" if target.lower().endswith(".png") else "JPEG", quality=95
            )
    (folder / "sub" / "notes.txt").write_text("not a photo")
    return folder


def test_facemask_predict_writes_one_row_per_photo_of_a_nested_folder(tiny_run, nested_photos, tmp_path):
    run = facemask_predict(
        tiny_run,
        nested_photos,
        "--ensemble",
        "results/tiny/ensemble/ensemble.json",
        "--out",
        tmp_path / "out.csv",
    )
    assert run.returncode == 0, run.stderr[-3000:]
    predicted = pd.read_csv(tmp_path / "out.csv")
    assert sorted(Path(p).relative_to(nested_photos).as_posix() for p in predicted["path"]) == [
        "a.jpg",
        "b.JPEG",
        "sub/c.png",
        "sub/d.jpg",
        "sub/deeper/e.PNG",
        "sub/deeper/f.jpeg",
    ]
    assert predicted["ans"].between(0, 17).all()


def test_the_predict_target_predicts_a_folder_without_retraining(tiny_run, nested_photos, tmp_path):
    folder = f"predict_dir={nested_photos}"
    plan = planned_jobs(snakemake(tiny_run, "predict", "--dry-run", "--config", folder, configs=TINY))
    assert plan == {"predict_photos": 1, "predict": 1}
    run = snakemake(tiny_run, "predict", "--config", folder, configs=TINY)
    assert run.returncode == 0, run.stderr[-3000:]
    predicted = pd.read_csv(tiny_run / "results/tiny/predictions/new_photos/predictions.csv")
    assert len(predicted) == 6
    cli = facemask_predict(
        tiny_run, nested_photos, "--ensemble", "results/tiny", "--out", tmp_path / "cli.csv"
    )
    assert cli.returncode == 0, cli.stderr[-3000:]
    # the same answers; the probabilities to float rounding (the job ran on 1 thread, the command on
    # all cores)
    pd.testing.assert_frame_equal(predicted, pd.read_csv(tmp_path / "cli.csv"), rtol=1e-4)


def test_the_predict_target_without_photos_says_how_to_give_them(tiny_run):
    run = snakemake(tiny_run, "predict", "--dry-run", configs=TINY)
    assert run.returncode != 0
    assert "predict_dir=DIR" in run.stdout + run.stderr


def test_an_unreadable_photo_is_named(tiny_run, nested_photos, tmp_path):
    (nested_photos / "sub" / "broken.jpg").write_bytes(b"not a JPEG at all")
    run = facemask_predict(
        tiny_run, nested_photos, "--ensemble", "results/tiny", "--out", tmp_path / "out.csv"
    )
    assert run.returncode == 1
    assert f"{nested_photos / 'sub' / 'broken.jpg'}: not a readable image" in run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "out.csv").exists()


def test_an_empty_folder_is_a_clear_error(tiny_run, tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    run = facemask_predict(
        tiny_run, tmp_path / "empty", "--ensemble", "results/tiny", "--out", tmp_path / "out.csv"
    )
    assert run.returncode == 1
    assert (
        f"no photos (.jpg, .jpeg, .png) in {tmp_path / 'empty'}" in run.stderr
        and "Traceback" not in run.stderr
    )


def test_a_checkpoint_changed_since_the_bundle_was_written_is_refused(tiny_run, tmp_path):
    bundle = Bundle.read(tiny_run / "results/tiny")
    checkpoint = tmp_path / "checkpoint.pt"
    shutil.copy(bundle.members[0].checkpoint, checkpoint)
    with open(checkpoint, "ab") as handle:
        handle.write(b"\0")
    changed = dataclasses.replace(bundle.members[0], checkpoint=checkpoint.resolve())
    dataclasses.replace(bundle, members=(changed,)).write(tmp_path / "ensemble.json")
    run = facemask_predict(
        tiny_run,
        "data/demo/eval/images",
        "--ensemble",
        tmp_path / "ensemble.json",
        "--out",
        tmp_path / "out.csv",
    )
    assert run.returncode == 1
    assert f"{checkpoint}: changed since the bundle" in run.stderr and "Traceback" not in run.stderr
