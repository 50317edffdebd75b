"""The lr schedule steps per optimizer update (warm-up in updates, not in epochs); plateau and none
do what they say; the epoch kept is chosen by the submission's rule; compile reaches every head;
a resume never continues a run of other code."""

import numpy as np
import pytest
import torch
from scipy.special import softmax

from facemask.classes.decision import class_shares, decide_classes
from facemask.classes.scores import macro_f1
from facemask.config.blocks import ModelBlock
from facemask.model.heads import head_of
from facemask.train import fold, resume
from facemask.train.fold import TrainOutputs, train_fold
from facemask.train.optim import LearningRateSchedule, updates_per_epoch
from facemask.train.recipe import build_classifier
from facemask.train.validation import ValidationFold, validate

from .conftest import model_settings

LR = 1e-3


def schedule_of(
    scheduler: dict, epochs: int = 10, updates: int = 10
) -> tuple[LearningRateSchedule, torch.optim.Optimizer]:
    """A schedule of `scheduler` settings on SGD at lr 1e-3 over one weight, `updates` per epoch."""
    optimizer = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=LR)
    return LearningRateSchedule(
        optimizer, ModelBlock("x", scheduler=scheduler, epochs=epochs), updates
    ), optimizer


def run_epoch(
    schedule: LearningRateSchedule,
    optimizer: torch.optim.Optimizer,
    updates: int,
    epoch: int,
    f1: float = 0.5,
):
    for _ in range(updates):
        optimizer.step()
    return schedule.end_epoch(epoch, f1)


def test_warm_up_is_counted_in_updates_so_the_first_epoch_is_not_spent_at_one_percent_of_the_lr():
    schedule, optimizer = schedule_of({"name": "cosine", "warmup_epochs": 1, "min_lr": 0.0})
    assert schedule.lr == pytest.approx(1e-5)  # timm's warmup_lr at the first update
    first_epoch_mean = run_epoch(schedule, optimizer, 10, 1)
    assert (
        0.4 * LR < first_epoch_mean < 0.6 * LR
    )  # a linear ramp from 1e-5 to the lr (per epoch: 1e-5 throughout)
    assert schedule.lr == pytest.approx(
        LR, rel=0.03
    )  # warm-up done after one epoch of updates (cosine from t 0)
    second_epoch_mean = run_epoch(schedule, optimizer, 10, 2)
    assert 0.9 * LR < second_epoch_mean < LR
    assert schedule.epochs == 10


def test_a_fraction_of_an_epoch_of_warm_up_ends_mid_epoch():
    schedule, optimizer = schedule_of({"name": "cosine", "warmup_epochs": 0.5})
    for _ in range(5):
        optimizer.step()
    assert schedule.lr == pytest.approx(LR, rel=0.01)


def test_plateau_lowers_the_lr_when_the_validation_f1_stops_improving():
    schedule, optimizer = schedule_of(
        {"name": "plateau", "warmup_epochs": 0, "patience_epochs": 1, "decay_rate": 0.5}
    )
    lrs = [
        run_epoch(schedule, optimizer, 3, epoch, f1)
        for epoch, f1 in enumerate([0.5, 0.6, 0.6, 0.6, 0.6], start=1)
    ]
    assert lrs[0] == pytest.approx(LR) and schedule.lr < LR / 1.9


def test_no_schedule_keeps_the_optimizers_lr():
    schedule, optimizer = schedule_of({"name": "none"})
    assert [run_epoch(schedule, optimizer, 3, epoch) for epoch in (1, 2, 3)] == [LR] * 3
    assert schedule.epochs == 10


def test_an_epoch_ends_with_one_update_per_accumulation_and_one_for_the_rest():
    assert [updates_per_epoch(batches, 4) for batches in (1, 4, 5, 8, 9)] == [1, 1, 2, 2, 3]


class Fixed(torch.nn.Module):
    """Gives stored logits for the photos in loader order."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits, self.seen, self.weight = logits, 0, torch.nn.Parameter(torch.zeros(1))

    def forward(self, images):
        batch = self.logits[self.seen : self.seen + len(images)]
        self.seen += len(images)
        return batch + 0 * self.weight


def test_the_epoch_kept_is_scored_as_the_submission_decides_classes_matched_to_the_training_shares():
    rng = np.random.default_rng(0)
    labels = rng.choice(18, 400, p=np.r_[np.full(6, 0.12), np.full(12, 0.28 / 12)])
    logits = torch.tensor(
        np.eye(18)[labels] * 1.0 + rng.normal(size=(400, 18)) * 1.2 + np.r_[np.full(6, 1.5), np.zeros(12)],
        dtype=torch.float32,
    )
    shares = class_shares(labels)
    loader = [(torch.zeros(len(part), 3, 4, 4), torch.tensor(part)) for part in np.array_split(labels, 4)]
    validation_fold = ValidationFold(loader, torch.nn.Identity(), labels, torch.device("cpu"), shares=shares)
    kept, _ = validate(Fixed(logits), None, validation_fold)
    matched = macro_f1(labels, decide_classes(softmax(logits.double().numpy(), axis=1), shares))
    plain = macro_f1(labels, logits.argmax(1).numpy())
    assert kept.val_f1 == pytest.approx(matched) and abs(matched - plain) > 0.02


@pytest.mark.parametrize("years", [False, True], ids=["18-way head", "years head"])
def test_compile_reaches_the_backbone_that_every_head_goes_through(years):
    settings = model_settings(
        arch="test_efficientnet",
        image_size=[32, 32],
        compile="eager",
        age_years={"sigma": 3.0} if years else {},
    )
    model, _ = build_classifier(settings, head_of(settings, [30, 60]), torch.device("cpu"))
    backbone = getattr(model, "backbone", model)
    assert backbone._compiled_call_impl is not None


@pytest.mark.parametrize("code_changed", [False, True], ids=["same code", "code changed"])
def test_a_resume_state_is_taken_up_only_by_a_run_of_the_same_code(
    demo_tables, demo_cache, tmp_path, monkeypatch, code_changed
):
    index, folds = demo_tables
    settings = model_settings(arch="test_efficientnet", image_size=[32, 32], batch_size=16, epochs=1)
    outputs = TrainOutputs(tmp_path / "checkpoint.pt", tmp_path / "oof.csv", tmp_path / "history.csv")

    def killed_before_the_checkpoint(*args):
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(fold, "save_kept_checkpoint", killed_before_the_checkpoint)
        with pytest.raises(KeyboardInterrupt):
            train_fold(index, folds, 0, settings, demo_cache["train"], outputs)
    assert outputs.resume_state.exists()
    taken = []

    def recording_resume(*args):
        taken.append(resume.resume(*args))
        return taken[-1]

    monkeypatch.setattr(fold, "resume", recording_resume)
    if code_changed:
        monkeypatch.setattr(fold, "code_digest", lambda path: "the code after a fix")
    train_fold(index, folds, 0, settings, demo_cache["train"], outputs)
    assert (taken[0] is None) == code_changed and outputs.checkpoint.exists()


def test_a_resumed_plateau_schedule_keeps_its_patience():
    schedule, optimizer = schedule_of(
        {"name": "plateau", "warmup_epochs": 0, "patience_epochs": 2, "decay_rate": 0.5}
    )
    for epoch, f1 in enumerate([0.5, 0.6, 0.6], start=1):
        run_epoch(schedule, optimizer, 3, epoch, f1)
    saved = schedule.state_dict()
    resumed, resumed_optimizer = schedule_of(
        {"name": "plateau", "warmup_epochs": 0, "patience_epochs": 2, "decay_rate": 0.5}
    )
    resumed.load_state_dict(saved)
    for epoch in (4, 5):
        run_epoch(schedule, optimizer, 3, epoch, 0.6)
        run_epoch(resumed, resumed_optimizer, 3, epoch, 0.6)
    assert (
        resumed.lr == schedule.lr == pytest.approx(LR / 2)
    )  # the third epoch without progress lowers it in both
