"""Memory that fits itself: `batch_size: auto` finds the largest batch that fits, and running out
of GPU memory in any stage (holding the cache, a training step, validation, TTA prediction) is one
clear line naming the job, the stage and a size that fits. No GPU here: CUDA's out-of-memory error
is raised by stand-ins above a size, and the search is told it runs on a GPU."""

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import facemask.model.inference as inference
import facemask.train.auto_batch as auto_batch
from facemask.config.schema import SCHEMA, check_config
from facemask.config.sections import WHOLE_PHOTO, ImageCache, TestTimeAugmentation
from facemask.ensemble.bundle import Bundle, BundleMember
from facemask.ensemble.vote import Vote
from facemask.model.classifier import checkpoint_meta, create_classifier, model_data_config, save_checkpoint
from facemask.model.heads import head_of
from facemask.model.inference import PredictOptions, predict_cached_photos
from facemask.predict.cli import parse_arguments
from facemask.predict.photos import predict_photos
from facemask.train.epoch import TrainStep
from facemask.train.fold import train_fold
from facemask.train.job import TrainJob
from facemask.utils.errors import ConfigError, OutOfMemory
from facemask.utils.files import Member
from facemask.utils.logs import run_job
from facemask.utils.memory import (
    CPU_BATCH_SIZE,
    FIRST_BATCH_SIZE,
    MOST_BATCH_SIZE,
    BatchSetting,
    auto_batch_size,
)

from .conftest import ROOT, model_settings, outputs_in

GPU = torch.device("cuda")  # a device object only: nothing is computed on it
BLOCK = {"arch": "test_resnet", "image_size": [32, 32], "batch_size": 8, "epochs": 1}
ARCH = "test_efficientnet"


def out_of_memory(*args, **kwargs):
    raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def fits_up_to(limit: int, tried: list[int] | None = None):
    """A try of a batch that runs out of GPU memory above `limit` photos (the sizes kept in `tried`)."""

    def try_batch(size: int) -> None:
        if tried is not None:
            tried.append(size)
        if size > limit:
            out_of_memory()

    return try_batch


@pytest.mark.parametrize(
    ("limit", "most", "multiple", "found"),
    [
        (100, 5000, 1, 100),
        (100, 5000, 2, 100),
        (101, 5000, 2, 100),  # even, for Mixup / CutMix
        (5, 5000, 2, 4),  # below the first try
        (1, 5000, 1, 1),
        (3000, 5000, 1, MOST_BATCH_SIZE),  # capped
        (3000, 300, 1, 300),  # at most the photos
        (3000, 301, 2, 300),
        (513, 5000, 1, 513),
    ],
)
def test_auto_finds_the_largest_batch_that_fits(limit, most, multiple, found):
    tried: list[int] = []
    setting = BatchSetting("model m, fold 0", "models.m.batch_size", multiple)
    assert auto_batch_size(GPU, setting, most, lambda: fits_up_to(limit, tried)) == found
    assert all(size % multiple == 0 for size in tried) and tried[0] == min(FIRST_BATCH_SIZE, most)
    assert len(tried) <= 2 * np.log2(MOST_BATCH_SIZE) + 1  # doubling, then a binary search


def test_another_backends_out_of_memory_counts_and_other_errors_pass():
    def mps(size):
        if size > 20:
            raise RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)")

    def bug(size):
        raise ValueError("a bug")

    setting = BatchSetting("model m, fold 0", "models.m.batch_size")
    assert auto_batch_size(GPU, setting, 1000, lambda: mps) == 20
    with pytest.raises(ValueError, match="a bug"):
        auto_batch_size(GPU, setting, 1000, lambda: bug)


def test_auto_on_the_cpu_is_the_documented_size_without_a_try():
    setting = BatchSetting("model m, fold 0", "models.m.batch_size", 2)
    assert auto_batch_size(torch.device("cpu"), setting, 10, lambda: pytest.fail("tried")) == CPU_BATCH_SIZE
    schema = yaml.safe_load(SCHEMA.read_text())
    keys = schema["$defs"]["model"]["properties"]["batch_size"], schema["properties"]["tta"]["properties"]
    texts = keys[0]["description"], keys[1]["batch_size"]["description"], (ROOT / "docs/gpus.md").read_text()
    for said in texts:
        said = " ".join(said.split())
        assert f"{CPU_BATCH_SIZE} on the CPU" in said and f"at most {MOST_BATCH_SIZE}" in said
        assert f"doubling from {FIRST_BATCH_SIZE}" in said


def test_when_not_even_the_smallest_batch_fits_the_search_says_so():
    setting = BatchSetting("model m, fold 0", "models.m.batch_size", 2)
    with pytest.raises(OutOfMemory) as raised:
        auto_batch_size(GPU, setting, 1000, lambda: fits_up_to(1))
    assert str(raised.value) == (
        "model m, fold 0: out of GPU memory in the batch_size auto search: not even a batch of 2 fits: "
        "lower image_size or precision, or free the GPU"
    )


@pytest.mark.parametrize("written", ["auto", 32, "32", 32.0])
def test_the_schema_takes_auto_or_a_whole_number(written):
    config = {"models": {"m": {"arch": "resnet18", "batch_size": written}}, "tta": {"batch_size": written}}
    check_config(config)
    assert (
        config["models"]["m"]["batch_size"]
        == config["tta"]["batch_size"]
        == ("auto" if written == "auto" else 32)
    )


@pytest.mark.parametrize(
    ("written", "said"), [("big", "'big'"), (0, "0 is below the minimum 1"), (2.5, "2.5")]
)
def test_the_schema_refuses_other_batch_sizes_by_their_key(written, said):
    config = {"models": {"m": {"arch": "resnet18", "batch_size": written}}, "tta": {"batch_size": written}}
    with pytest.raises(ConfigError) as raised:
        check_config(config)
    lines = str(raised.value).splitlines()
    assert [line.split(": ")[1] for line in lines] == ["models.m.batch_size", "tta.batch_size"]
    assert all(said in line for line in lines)
    if written != 0:
        assert all(line.endswith("is not an integer or auto") for line in lines)


def train(demo_tables, demo_cache, tmp_path, **block):
    """Fold 0 of the tiny block with `block`'s changes, as the job of models.resnet34."""
    index, folds = demo_tables
    settings = model_settings(**BLOCK | block)
    return train_fold(index, folds, 0, settings, demo_cache["train"], outputs_in(tmp_path), name="resnet34")


def test_auto_on_the_cpu_trains_with_the_documented_size_and_records_it(demo_tables, demo_cache, tmp_path):
    history = train(demo_tables, demo_cache, tmp_path, batch_size="auto")
    assert list(history["batch_size"]) == [CPU_BATCH_SIZE]
    assert checkpoint_meta(tmp_path / "checkpoint.pt")["train_batch_size"] == CPU_BATCH_SIZE


@pytest.fixture
def one_thread():
    """torch on one thread (two on two busy cores crawl), as a train job sets it; then as it was."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_auto_finds_the_largest_even_batch_that_a_training_step_fits(
    demo_tables, demo_cache, monkeypatch, one_thread
):
    index, _ = demo_tables
    block = model_settings(**BLOCK | {"batch_size": "auto", "mix": {"mixup_alpha": 1.0, "prob": 1.0}})
    shapes, real_loss = set(), TrainStep.loss

    def hungry_loss(step, images, labels):
        shapes.add(tuple(images.shape[1:]))
        return out_of_memory() if len(images) > 21 else real_loss(step, images, labels)

    monkeypatch.setattr(TrainStep, "loss", hungry_loss)
    monkeypatch.setattr(auto_batch, "auto_batch_size", lambda device, *rest: auto_batch_size(GPU, *rest))
    job = TrainJob(block, 0, demo_cache["train"], outputs_in(Path("unused")), name="resnet34")
    labels, cpu = torch.tensor(index["label"].to_numpy()), torch.device("cpu")
    torch.manual_seed(0), np.random.seed(0)
    assert auto_batch.training_batch_size(job, head_of(block, (30, 60)), cpu, "fp32", labels) == 20
    drawn = float(torch.rand(1)), np.random.rand()
    torch.manual_seed(0), np.random.seed(0)
    assert drawn == (float(torch.rand(1)), np.random.rand())  # the random states as they were
    assert shapes == {(3, 32, 32)}  # the cache's photos, cropped as in training


def test_holding_the_cache_out_of_memory_says_cache_on_gpu_false(
    demo_tables, demo_cache, tmp_path, monkeypatch
):
    monkeypatch.setattr("facemask.train.job.load_cache", out_of_memory)
    with pytest.raises(OutOfMemory) as raised:
        train(demo_tables, demo_cache, tmp_path)
    assert str(raised.value) == (
        "model resnet34, fold 0: out of GPU memory in holding the image cache on the GPU: set "
        "models.resnet34.cache_on_gpu: false (batches are then read from the file by loader workers)"
    )


def test_a_training_step_out_of_memory_says_half_the_batch(demo_tables, demo_cache, tmp_path, monkeypatch):
    monkeypatch.setattr(TrainStep, "loss", out_of_memory)
    with pytest.raises(OutOfMemory) as raised:
        train(demo_tables, demo_cache, tmp_path)
    assert str(raised.value) == (
        "model resnet34, fold 0: out of GPU memory in training (epoch 1, step 1) at batch size 8: set "
        "models.resnet34.batch_size: 4, or models.resnet34.batch_size: auto for the largest that fits "
        "(raise accumulation_steps to keep the effective batch)"
    )


def test_validation_out_of_memory_says_half_the_batch(demo_tables, demo_cache, tmp_path, monkeypatch):
    monkeypatch.setattr("facemask.train.fold.train_one_epoch", lambda *args: (1.0, 1))
    monkeypatch.setattr("facemask.train.validation.predict_logits", out_of_memory)
    with pytest.raises(OutOfMemory) as raised:
        train(demo_tables, demo_cache, tmp_path, batch_size=6)
    assert str(raised.value).startswith(
        "model resnet34, fold 0: out of GPU memory in validation (epoch 1) at batch size 6: set "
        "models.resnet34.batch_size: 2, or models.resnet34.batch_size: auto"
    )


def test_a_size_found_by_auto_that_runs_out_later_says_half_of_it(
    demo_tables, demo_cache, tmp_path, monkeypatch
):
    monkeypatch.setattr("facemask.train.fold.train_one_epoch", lambda *args: (1.0, 1))
    monkeypatch.setattr("facemask.train.validation.predict_logits", out_of_memory)
    with pytest.raises(OutOfMemory) as raised:
        train(demo_tables, demo_cache, tmp_path, batch_size="auto")
    assert str(raised.value) == (
        f"model resnet34, fold 0: out of GPU memory in validation (epoch 1) at batch size {CPU_BATCH_SIZE}: "
        "the size batch_size auto found ran out of memory later in the job: set "
        f"models.resnet34.batch_size: {CPU_BATCH_SIZE // 2} "
        "(raise accumulation_steps to keep the effective batch)"
    )


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """An untrained classifier of timm's smallest test network at 32 x 32, as a checkpoint."""
    model = create_classifier(ARCH)
    meta = {"arch": ARCH, "head": "single", "model_kwargs": {}, "epoch": 1, "fold": 0, "age_cuts": None}
    meta |= {"data_config": model_data_config(model, (32, 32)), "val_f1": 0.5, "precision": "fp32"}
    path = tmp_path_factory.mktemp("member") / "checkpoint.pt"
    save_checkpoint(path, model, meta)
    return path


def hungry_prediction(monkeypatch, limit: int) -> list[int]:
    """Predicting a batch of more than `limit` photos runs out of GPU memory; the sizes predicted."""
    sizes, real = [], inference.predict_batch

    def predict_batch(model, images, *args):
        sizes.append(len(images))
        return out_of_memory() if len(images) > limit else real(model, images, *args)

    monkeypatch.setattr(inference, "predict_batch", predict_batch)
    return sizes


def options(batch_size, job="model resnet34, fold 0 (eval photos)") -> PredictOptions:
    tta = TestTimeAugmentation(("HorizontalFlip",), "mean", batch_size)
    return PredictOptions(tta, memory=BatchSetting(job, "tta.batch_size"))


def test_tta_prediction_out_of_memory_says_half_the_batch(checkpoint, demo_cache, monkeypatch):
    hungry_prediction(monkeypatch, 4)
    with pytest.raises(OutOfMemory) as raised:
        predict_cached_photos(checkpoint, demo_cache["eval"], 12, options(16))
    assert str(raised.value) == (
        "model resnet34, fold 0 (eval photos): out of GPU memory in TTA prediction of 12 photos at batch "
        "size 16: set tta.batch_size: 8, or tta.batch_size: auto for the largest that fits"
    )


def test_auto_finds_the_largest_batch_that_tta_prediction_fits(checkpoint, demo_cache, monkeypatch, caplog):
    fixed = predict_cached_photos(checkpoint, demo_cache["eval"], 12, options(4))
    sizes = hungry_prediction(monkeypatch, 5)
    monkeypatch.setattr(inference, "auto_batch_size", lambda device, *rest: auto_batch_size(GPU, *rest))
    with caplog.at_level("INFO", logger="facemask"):
        found = predict_cached_photos(checkpoint, demo_cache["eval"], 12, options("auto"))
    assert sizes[-3:] == [5, 5, 2]  # the photos in batches of the size found
    np.testing.assert_allclose(found, fixed, atol=1e-5)
    assert "model resnet34, fold 0 (eval photos): batch_size auto found 5 on cuda" in caplog.text


def test_facemask_predict_out_of_memory_names_the_member_and_batch_size(checkpoint, demo_dir, monkeypatch):
    cache = ImageCache(1.125, WHOLE_PHOTO)
    member = BundleMember.of(Member("resnet34", 0), checkpoint, checkpoint_meta(checkpoint), 1.0, cache)
    bundle = Bundle((member,), Vote({"resnet34": 1.0}), False, options(16).tta, (30, 60))
    photos = sorted((demo_dir / "eval" / "images").glob("*"))[:3]
    hungry_prediction(monkeypatch, 1)
    with pytest.raises(OutOfMemory) as raised:
        predict_photos(bundle, photos, batch_size=2, device="cpu")
    assert str(raised.value) == (
        "facemask predict: member resnet34 fold 0: out of GPU memory in TTA prediction of 3 photos at batch "
        "size 2: set --batch-size 1, or --batch-size auto for the largest that fits"
    )


def test_facemask_predict_takes_batch_size_auto_or_a_number(capsys):
    assert parse_arguments(["predict", "a.jpg", "--batch-size", "auto"]).batch_size == "auto"
    assert parse_arguments(["predict", "a.jpg", "--batch-size", "32"]).batch_size == 32
    with pytest.raises(SystemExit):
        parse_arguments(["predict", "a.jpg", "--batch-size", "big"])
    assert "'big' is not a whole number of photos (at least 1) or auto" in capsys.readouterr().err


def test_a_job_out_of_memory_ends_with_one_line_in_its_log(tmp_path):
    def main():
        with BatchSetting("model m, fold 1", "models.m.batch_size").says("training", 32):
            out_of_memory()

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        with pytest.raises(SystemExit) as stopped:
            run_job(main, tmp_path / "job.log")
    finally:  # the session's logging as it was
        for handler in root.handlers:
            handler.close()
        root.handlers[:], root.level = handlers, level
    logged = (tmp_path / "job.log").read_text().splitlines()
    assert stopped.value.code == 1 and len(logged) == 1
    assert logged[0].endswith(
        "ERROR model m, fold 1: out of GPU memory in training at batch size 32: set models.m.batch_size: 16, "
        "or models.m.batch_size: auto for the largest that fits"
    )
