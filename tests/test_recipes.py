"""The seeds' recipes as config choices: losses, Mixup / CutMix, three heads, sampling, age cuts,
optimizers and lr schedules, gradient accumulation, early stopping, fitted ensemble weights; and
short runs of both head types that learn."""

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from timm.optim import create_optimizer_v2

from facemask.classes.labels import decode_class, encode_class
from facemask.classes.scores import macro_f1, task_scores
from facemask.config.blocks import Mixing, ModelBlock
from facemask.data.loader import CachedPhotos, photo_loader
from facemask.ensemble.vote import soft_vote
from facemask.ensemble.weights import select_weights
from facemask.model.classifier import create_classifier, load_checkpoint
from facemask.model.heads import head_of
from facemask.model.losses import CompositeLoss, cross_entropy, focal, soft_f1, task_marginals
from facemask.train import optim, validation
from facemask.train.epoch import TrainStep, create_mixup, train_one_epoch
from facemask.train.fold import TrainOutputs, train_fold
from facemask.train.job import sample_weights, training_labels

from .conftest import TORCH_THREADS, model_settings


@pytest.fixture
def batch():
    torch.manual_seed(0)
    logits = torch.randn(16, 18) * 2
    labels = torch.randint(0, 18, (16,))
    return logits.log_softmax(1), labels, F.one_hot(labels, 18).float()


def test_cross_entropy_matches_torch_with_label_smoothing_and_class_weights(batch):
    log_probs, labels, targets = batch
    weights = torch.rand(18) + 0.5
    torch.testing.assert_close(
        cross_entropy(log_probs, targets, 0.1),
        F.nll_loss(log_probs, labels) * 0.9 + 0.1 * -log_probs.mean(1).mean(),
    )
    torch.testing.assert_close(
        cross_entropy(log_probs, targets, class_weights=weights),
        F.nll_loss(log_probs, labels, weight=weights),
    )


def test_focal_loss_is_cross_entropy_at_gamma_0_and_smaller_above(batch):
    log_probs, _, targets = batch
    torch.testing.assert_close(focal(log_probs, targets, gamma=0.0), cross_entropy(log_probs, targets))
    assert focal(log_probs, targets, gamma=2.0) < cross_entropy(log_probs, targets)


def test_f1_loss_is_lower_for_better_predictions(batch):
    _, labels, targets = batch
    good = (targets * 6).log_softmax(1)
    poor = (targets * 1).log_softmax(1)
    wrong = (targets.roll(1, dims=1) * 6).log_softmax(1)
    assert soft_f1(good, targets) < soft_f1(poor, targets) < soft_f1(wrong, targets)
    assert 0 <= soft_f1(good, targets) < 0.1


def test_a_weighted_sum_of_terms_adds_the_weighted_losses(batch):
    log_probs, labels, targets = batch
    loss = CompositeLoss(
        {None: [{"name": "focal", "weight": 0.5, "gamma": 2.0}, {"name": "f1", "weight": 0.5}]}, {}
    )
    torch.testing.assert_close(
        loss(log_probs, targets), 0.5 * focal(log_probs, targets, 2.0) + 0.5 * soft_f1(log_probs, targets)
    )


def test_class_weights_come_from_the_training_folds_counts():
    labels = torch.tensor([0] * 30 + [1] * 10)
    block = model_settings(arch="resnet18", loss=[{"name": "cross_entropy", "class_weights": True}])
    loss = head_of(block, (30, 60)).loss(labels)
    weights = loss.terms[None][0][2]["class_weights"]
    assert weights[1] == pytest.approx(3 * weights[0])


def test_mixup_and_cutmix_targets_sum_to_1_and_keep_the_per_task_structure():
    np.random.seed(0)
    mixup = create_mixup(Mixing(mixup_alpha=1.0, cutmix_alpha=1.0, prob=1.0, switch_prob=0.5))
    labels = torch.tensor([encode_class(0, 1, 2), encode_class(2, 0, 0)] * 4)
    for _ in range(4):
        images, targets = mixup(torch.rand(8, 3, 16, 16), labels)
        torch.testing.assert_close(targets.sum(1), torch.ones(8))
        lam = targets[0, labels[0]]
        assert 0 <= lam <= 1 and torch.isclose(
            targets[0, labels[0]] + targets[0, labels[-1]], torch.tensor(1.0)
        )
        for task, (a, b) in zip(("mask", "gender", "age"), ((0, 2), (1, 0), (2, 0)), strict=True):
            _, task_targets = task_marginals(torch.zeros(8, 18), targets, task)
            torch.testing.assert_close(task_targets.sum(1), torch.ones(8))
            assert torch.isclose(task_targets[0, a], lam) and torch.isclose(task_targets[0, b], 1 - lam)
    assert create_mixup(Mixing(mixup_alpha=1.0, prob=0.0)) is None


def test_three_heads_give_a_valid_18_way_distribution_that_is_the_product_of_the_tasks():
    model = create_classifier("resnet18", head="multi").eval()
    images = torch.rand(3, 3, 32, 32)
    log_probs = model(images)
    torch.testing.assert_close(log_probs.exp().sum(1), torch.ones(3))
    task_logits = model.backbone(images)
    mask, gender, age = (int(x) for x in decode_class(13))
    expected = (
        task_logits[:, :3].softmax(1)[:, mask]
        * task_logits[:, 3:5].softmax(1)[:, gender]
        * task_logits[:, 5:].softmax(1)[:, age]
    )
    torch.testing.assert_close(log_probs[:, 13].exp(), expected)
    marginal, _ = task_marginals(log_probs, torch.zeros(3, 18), "gender")
    torch.testing.assert_close(marginal.exp(), task_logits[:, 3:5].softmax(1))


def test_the_weighted_sampler_balances_classes_or_age_bands():
    labels = pd.Series([0] * 80 + [1] * 15 + [2] * 5)
    by_class = sample_weights(labels, "class")
    shares = [by_class[labels.to_numpy() == c].sum() / by_class.sum() for c in (0, 1, 2)]
    assert shares == pytest.approx([1 / 3] * 3)
    assert sample_weights(labels, "none") is None


def test_the_age_sampler_draws_each_age_band_equally_often_and_leaves_the_rest_as_the_data_has_it(tmp_path):
    bands = np.repeat([0, 1, 2], [200, 80, 20])
    masks = np.where(np.arange(300) % 5 == 0, 2, 0)  # 80 % of the photos with a mask worn, in every band
    labels = pd.Series(encode_class(masks, np.arange(300) % 2, bands))
    np.save(tmp_path / "cache.npy", np.zeros((300, 2, 2, 3), dtype=np.uint8))
    loader = photo_loader(
        CachedPhotos(tmp_path / "cache.npy", np.arange(300), labels),
        50,
        0,
        shuffle=True,
        sample_weights=sample_weights(labels, "age"),
    )
    drawn = torch.cat([batch_labels for _ in range(10) for _, batch_labels in loader]).numpy()
    assert len(drawn) == 3000
    assert np.bincount(drawn % 3, minlength=3) / len(drawn) == pytest.approx([1 / 3] * 3, abs=0.03)
    assert (drawn // 6 == 0).mean() == pytest.approx(0.8, abs=0.03)  # the class sampler would make it 1 / 2


def test_a_training_age_cut_of_58_relabels_58_and_59_for_training_only():
    photos = pd.DataFrame(
        {"age": [57, 58, 59, 60], "mask_label": 0, "gender_label": 1, "age_label": [1, 1, 1, 2]}
    )
    photos["label"] = encode_class(photos["mask_label"], photos["gender_label"], photos["age_label"])
    assert list(training_labels(photos, None)) == [4, 4, 4, 5]
    assert list(training_labels(photos, [30, 58])) == [4, 5, 5, 5]


def test_fitted_ensemble_weights_favour_the_better_model_and_never_score_below_equal_weights():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 18, 300)
    good = np.eye(18)[labels] * 3 + rng.normal(size=(300, 18)) * 1.5
    noise = rng.normal(size=(300, 18)) * 3
    weights = select_weights({"good": good, "noise": noise}, labels)
    assert weights["good"] > weights["noise"] and sum(weights.values()) == pytest.approx(1)
    equal = macro_f1(labels, soft_vote([good, noise]).argmax(1))
    fitted = macro_f1(labels, soft_vote([good, noise], [weights["good"], weights["noise"]]).argmax(1))
    assert fitted >= equal


@pytest.mark.parametrize("head", ["single", "multi"])
def test_a_short_run_of_each_head_type_learns_the_demo_well_above_chance(learnable, tmp_path, head):
    cache, index, folds = learnable
    settings = model_settings(
        arch="resnet18",
        head=head,
        image_size=[48, 36],
        batch_size=16,
        epochs=12,
        optimizer={"lr": 2e-3},
        scheduler={"warmup_epochs": 0},
        early_stopping_patience=3,
        keep="best",
        loss=[{"name": "cross_entropy", "weight": 0.7}, {"name": "f1", "weight": 0.3}],
    )
    outputs = TrainOutputs(tmp_path / "checkpoint.pt", tmp_path / "oof.csv", tmp_path / "history.csv")
    train_fold(index, folds, 0, settings, cache, outputs, threads=TORCH_THREADS)
    oof = pd.read_csv(outputs.oof_logits)
    scores = task_scores(oof["label"], oof.filter(like="logit_").to_numpy().argmax(1))
    # chance: macro F1 about 0.05; constant answers: mask F1 0.28, gender F1 0.37
    assert scores["macro_f1"] > 0.2 and scores["gender_f1"] > 0.7, scores


def quick_settings(**block) -> ModelBlock:
    """A model block of timm's smallest test network (100k weights, batch norm) at 32 x 32."""
    return model_settings(arch="test_efficientnet", image_size=[32, 32], batch_size=16, **block)


@pytest.mark.parametrize(
    ("optimizer", "scheduler", "epochs", "lrs"),
    [
        (
            {"name": "sgd", "lr": 0.1, "momentum": 0.8},
            {"name": "step", "decay_epochs": 2, "decay_rate": 0.5, "warmup_epochs": 0},
            5,
            [0.1, 0.1, 0.05, 0.05, 0.025],
        ),
        (
            {"name": "adam", "lr": 1e-3, "weight_decay": 0.0},
            {"name": "cosine", "warmup_epochs": 0, "min_lr": 0.0, "cycle_limit": 3, "cycle_decay": 0.5},
            3,
            [1e-3, 7.5e-4, 2.5e-4, 5e-4, 3.75e-4, 1.25e-4, 2.5e-4, 1.875e-4, 6.25e-5],
        ),  # 3 cycles of 3 epochs, each at half the lr
    ],
    ids=["SGD with step decay", "Adam with cosine warm restarts"],
)
def test_the_configured_optimizer_trains_with_the_configured_lr_schedule(
    demo_tables, demo_cache, tmp_path, monkeypatch, optimizer, scheduler, epochs, lrs
):
    created = []

    def record_optimizer(*args, **options):
        created.append(create_optimizer_v2(*args, **options))
        return created[-1]

    monkeypatch.setattr(optim, "create_optimizer_v2", record_optimizer)
    outputs = TrainOutputs(tmp_path / "checkpoint.pt", tmp_path / "oof.csv", tmp_path / "history.csv")
    history = train_fold(
        *demo_tables,
        0,
        quick_settings(epochs=epochs, optimizer=optimizer, scheduler=scheduler),
        demo_cache["train"],
        outputs,
    )
    assert history["lr"].tolist() == pytest.approx(lrs)
    [used] = created
    assert type(used).__name__ == {"sgd": "SGD", "adam": "Adam"}[optimizer["name"]]
    assert used.defaults.get("momentum", 0.8) == 0.8
    assert all(
        used.state[p] for p in used.param_groups[0]["params"]
    )  # every weight stepped (momentum buffers kept)


def test_two_batches_of_8_with_accumulation_2_make_the_same_step_as_one_batch_of_16():
    torch.manual_seed(0)
    images, labels = torch.rand(16, 3, 4, 4), torch.randint(0, 18, (16,))
    halves = [(images[:8], labels[:8]), (images[8:], labels[8:])]

    def weights_after(batches, accumulation_steps):
        torch.manual_seed(1)
        model = torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(48, 32), torch.nn.ReLU(), torch.nn.Linear(32, 18)
        )  # no batch norm
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        step = TrainStep(model, torch.nn.Identity(), cross_entropy, optimizer, torch.device("cpu"))
        step.accumulation_steps = accumulation_steps
        train_one_epoch(step, batches, 1)
        return torch.cat([parameter.detach().flatten() for parameter in model.parameters()])

    whole = weights_after([(images, labels)], 1)
    torch.testing.assert_close(weights_after(halves, 2), whole)
    assert not torch.allclose(weights_after(halves, 1), whole, atol=1e-3)  # two steps are not one


def test_turning_the_weight_average_on_changes_nothing_of_the_raw_run(demo_tables, demo_cache, tmp_path):
    """Paired runs differ only by their setting: the average's extra validation pass draws from
    its loader's generator, not torch's global one, so the raw weights' shuffles, augmentations
    and scores stay as they were."""
    runs = {}
    for name, ema in (("raw", {}), ("averaged", {"decay": 0.9})):
        outputs = TrainOutputs(*(tmp_path / name / file for file in ("c.pt", "oof.csv", "history.csv")))
        runs[name] = train_fold(
            *demo_tables, 0, quick_settings(epochs=3, ema=ema), demo_cache["train"], outputs
        )
    raw, averaged = runs["raw"], runs["averaged"]
    assert list(averaged["train_loss"]) == list(raw["train_loss"])
    assert list(averaged["val_f1_raw"]) == list(raw["val_f1"])
    assert list(averaged["val_f1"]) == list(averaged["val_f1_ema"])  # keep: last keeps the average


def test_early_stopping_ends_training_patience_epochs_after_the_best_and_keeps_the_best_epoch(
    demo_tables, demo_cache, tmp_path, monkeypatch
):
    val_f1 = iter([0.2, 0.5, 0.4, 0.5, 0.9, 0.9])
    scores = dict.fromkeys(("accuracy", "mask_f1", "gender_f1", "age_f1"), 0.0)
    monkeypatch.setattr(
        validation, "task_scores", lambda labels, predicted: scores | {"macro_f1": next(val_f1)}
    )
    outputs = TrainOutputs(tmp_path / "checkpoint.pt", tmp_path / "oof.csv", tmp_path / "history.csv")
    history = train_fold(
        *demo_tables,
        0,
        quick_settings(epochs=6, early_stopping_patience=2, keep="best"),
        demo_cache["train"],
        outputs,
    )
    assert list(history["epoch"]) == [1, 2, 3, 4]  # best at 2; 3 and 4 no better
    assert load_checkpoint(outputs.checkpoint)[1]["epoch"] == 2
