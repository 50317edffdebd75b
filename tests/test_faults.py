"""Faults: a killed train job resumes, a diverging loss or full GPU stops clearly, outputs are
atomic, a bad submission is never written, checkpoints load without pickle, runs are repeatable."""

from dataclasses import replace

import pandas as pd
import pytest
import torch

from facemask.config.sections import Crop, TestTimeAugmentation
from facemask.data.cache import prepare_cache
from facemask.data.faces import find_faces
from facemask.data.folds import make_folds
from facemask.data.photo_index import index_eval_photos, index_train_photos
from facemask.ensemble.vote import check_submission
from facemask.model.classifier import load_checkpoint
from facemask.model.inference import PredictOptions, predict_eval_photos
from facemask.train.epoch import TrainStep, train_one_epoch
from facemask.train.fold import train_fold
from facemask.utils.errors import PipelineError
from facemask.utils.files import atomic_output, write_csv

from .conftest import kill_a_train_job_mid_run, model_settings, outputs_in

BLOCK = {
    "arch": "test_resnet",  # tiny: these tests check states and files, not learning
    "image_size": [32, 32],
    "batch_size": 8,
    "epochs": 4,
    "optimizer": {"lr": 1e-3},
    "mix": {"mixup_alpha": 1.0, "cutmix_alpha": 1.0, "prob": 0.5},
}
SETTINGS = model_settings(**BLOCK)


AVERAGED_YEARS = {"ema": {"decay": 0.9, "warmup": True}, "age_years": {"sigma": 2.0, "weight": 0.5}}


# fp16: autocast and the loss scaler, on the CPU too; ema_and_years: the weight average and the years head
@pytest.mark.parametrize(
    "changes", [{}, {"precision": "fp16"}, AVERAGED_YEARS], ids=["plain", "fp16", "ema_and_years"]
)
def test_a_train_job_killed_mid_run_resumes_and_ends_as_an_uninterrupted_run(
    demo_tables, demo_cache, tmp_path, changes
):
    index, folds = demo_tables
    settings = model_settings(**BLOCK | changes)
    killed = kill_a_train_job_mid_run(tmp_path, (index, folds), demo_cache["train"], settings)
    saved = torch.load(killed.resume_state, weights_only=True)
    assert 1 <= saved["progress"]["epoch"] < settings.epochs
    # the loss scaler's state joins the resume state
    assert ("scale" in saved["scaler"]) == (settings.precision == "fp16")

    resumed = train_fold(index, folds, 0, settings, demo_cache["train"], killed)
    uninterrupted = train_fold(index, folds, 0, settings, demo_cache["train"], outputs_in(tmp_path / "whole"))
    assert list(resumed["epoch"]) == [1, 2, 3, 4]
    assert list(resumed["lr"]) == list(uninterrupted["lr"])
    pd.testing.assert_frame_equal(
        resumed.drop(columns="train_images_per_s"), uninterrupted.drop(columns="train_images_per_s")
    )
    assert not killed.resume_state.exists()
    kept, whole = (
        torch.load(path, weights_only=True)["state_dict"]
        for path in (killed.checkpoint, tmp_path / "whole" / "checkpoint.pt")
    )
    assert all(torch.equal(kept[key], whole[key]) for key in whole)
    if settings.ema.decay:  # keep: last keeps the averaged weights, fixed in advance
        assert (resumed["val_f1"] == resumed["val_f1_ema"]).all() and (resumed["kept"] == 1).all()


def test_resume_state_of_other_settings_is_ignored(demo_tables, demo_cache, tmp_path):
    index, folds = demo_tables
    outputs = outputs_in(tmp_path)
    torch.save({"fingerprint": "another run"}, outputs.resume_state)
    history = train_fold(index, folds, 1, replace(SETTINGS, epochs=1), demo_cache["train"], outputs)
    assert list(history["epoch"]) == [1]


class Constant(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.bias = torch.nn.Parameter(torch.zeros(18))

    def forward(self, images):
        return self.bias.expand(len(images), 18)


def test_a_loss_that_becomes_nan_stops_training_naming_epoch_and_step():
    model = Constant()
    loader = [(torch.zeros(2, 3, 8, 8), torch.tensor([0, 1]))] * 3
    calls = iter([1.0, 1.0, float("nan")])

    def loss_fn(logits, labels):
        return logits.sum() * 0 + next(calls)

    with pytest.raises(PipelineError, match="loss became nan at epoch 3, step 3"):
        step = TrainStep(
            model,
            torch.nn.Identity(),
            loss_fn,
            torch.optim.SGD(model.parameters(), lr=0.1),
            torch.device("cpu"),
        )
        train_one_epoch(step, loader, epoch=3)


def test_running_out_of_gpu_memory_suggests_a_smaller_batch():
    class Hungry(Constant):
        def forward(self, images):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    model = Hungry()
    loader = [(torch.zeros(4, 3, 8, 8), torch.tensor([0, 1, 2, 3]))]
    with pytest.raises(
        PipelineError,
        match=r"out of GPU memory in training \(epoch 1, step 1\) at batch size 4: set batch_size: 2",
    ):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        step = TrainStep(
            model, torch.nn.Identity(), torch.nn.CrossEntropyLoss(), optimizer, torch.device("cpu")
        )
        train_one_epoch(step, loader, 1)


def test_a_crash_while_writing_leaves_the_previous_file_and_no_partial_one(tmp_path):
    target = tmp_path / "submission.csv"
    target.write_text("ImageID,ans\na.jpg,3\n")
    with pytest.raises(RuntimeError), atomic_output(target) as partial:
        partial.write_text("ImageID,ans\na.jp")
        raise RuntimeError("killed")
    assert target.read_text() == "ImageID,ans\na.jpg,3\n"
    assert list(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize(
    ("submission", "problem"),
    [
        (pd.DataFrame({"ImageID": ["a", "b"], "ans": [1, 2]}), None),
        (pd.DataFrame({"ImageID": ["b", "a"], "ans": [1, 2]}), "order or content"),
        (pd.DataFrame({"ImageID": ["a"], "ans": [1]}), "order or content"),
        (pd.DataFrame({"ImageID": ["a", "b"], "ans": [1, 18]}), "not an integer 0..17"),
        (pd.DataFrame({"ImageID": ["a", "b"], "ans": [1.5, 2]}), "not an integer 0..17"),
        (pd.DataFrame({"ImageID": ["a", "b"], "ans": [None, 2]}), "not an integer 0..17"),
        (pd.DataFrame({"ImageID": ["a", "b"], "class": [1, 2]}), "columns"),
    ],
)
def test_a_submission_is_checked_before_it_is_written(submission, problem):
    if problem is None:
        check_submission(submission, ["a", "b"])
    else:
        with pytest.raises(PipelineError, match=problem):
            check_submission(submission, ["a", "b"])


class Payload:
    """Anything a pickle could smuggle in."""


def test_checkpoints_load_without_unpickling_code(tmp_path):
    torch.save({"state_dict": {}, "arch": "resnet18", "payload": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(Exception, match="[Ww]eights only"):
        load_checkpoint(tmp_path / "evil.pt")


def test_the_same_seed_gives_byte_identical_index_folds_cache_checkpoint_and_predictions(
    demo_tables, demo_dir, tmp_path
):
    index, _ = demo_tables
    runs = []
    for run in ("a", "b"):
        folder = tmp_path / run
        write_csv(index_train_photos(demo_dir, (30, 60)), folder / "index.csv")
        write_csv(make_folds(index, k=3, seed=5), folder / "folds.csv")
        cache = {"train": folder / "train.npy", "eval": folder / "eval.npy"}
        eval_photos = index_eval_photos(demo_dir)
        photos = {"train": index, "eval": eval_photos}
        faces = {split: find_faces(demo_dir, list(table["path"]), "mtcnn") for split, table in photos.items()}
        prepare_cache(demo_dir, photos, (36, 36), cache, Crop("face", 1.3, "mtcnn"), faces=faces)
        outputs = outputs_in(folder)
        train_fold(
            index,
            pd.read_csv(folder / "folds.csv", dtype={"person": str}),
            2,
            replace(SETTINGS, epochs=2),
            cache["train"],
            outputs,
        )
        tta = TestTimeAugmentation(("HorizontalFlip",), "mean", 16)
        write_csv(
            predict_eval_photos(outputs.checkpoint, eval_photos, cache["eval"], PredictOptions(tta)),
            folder / "eval_logits.csv",
        )
        runs.append(folder)
    for name in ("index.csv", "folds.csv", "train.npy", "eval.npy", "oof_logits.csv", "eval_logits.csv"):
        assert (runs[0] / name).read_bytes() == (runs[1] / name).read_bytes(), name
    weights = [load_checkpoint(run / "checkpoint.pt")[0].state_dict() for run in runs]
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])
