"""The load-time check of a model block (facemask.train.block_check): what a train job would fail on
hours later, or ignore, is refused naming the block and the key; every shipped config passes."""

import copy
import functools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from snakemake.utils import update_config

from facemask.config.blocks import ModelBlock
from facemask.config.schema import validated
from facemask.train import block_verdicts
from facemask.train.block_check import check_block
from facemask.train.block_verdicts import record_passed, unchecked_blocks
from facemask.train.fold import train_fold
from facemask.utils.errors import ConfigError

from .conftest import TORCH_THREADS, model_settings, outputs_in

ROOT = Path(__file__).parents[1]
SCHEMA = str(ROOT / "workflow" / "schemas" / "config.schema.yaml")
MIXUP = {"mixup_alpha": 1.0, "prob": 0.5}
EVEN = "Mixup / CutMix (mix) need an even batch"
#: the benchmark configs that are given over utkmask_best.yaml (and others) only (their headers say so)
OVER_RECIPE_B = ("utkmask_years.yaml", "utkmask_next.yaml", "sweep_framed.yaml")
#: the shipped config files as they are given over config.yaml (see their headers and the README)
LAYERS = [
    (),
    ("demo.yaml",),
    ("demo.yaml", "tiny.yaml"),
    ("presets.yaml",),
    ("demo.yaml", "presets.yaml"),
    *(
        (f"benchmarks/{path.name}",)
        for path in sorted((ROOT / "config" / "benchmarks").glob("*.yaml"))
        if path.name not in OVER_RECIPE_B
    ),
    ("benchmarks/utkmask_best.yaml", "benchmarks/utkmask_years.yaml", "benchmarks/utkmask_crop.yaml"),
    ("benchmarks/utkmask_best.yaml", "benchmarks/utkmask_next.yaml"),
    ("benchmarks/utkmask_lite_ensemble.yaml", "benchmarks/five_folds.yaml"),
    ("benchmarks/utkmask_best.yaml", "benchmarks/framed.yaml", "benchmarks/sweep_framed.yaml"),
]


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"batch_size": 33, "mix": MIXUP}, f"batch_size: {EVEN}, not 33"),
        ({"batch_size": 1, "mix": {"cutmix_alpha": 1.0, "prob": 1.0}}, f"batch_size: {EVEN}, not 1"),
        (
            {"loss": [{"name": "cross_entropy", "gamma": 2.0}]},
            "loss[0].gamma: the cross_entropy loss takes no gamma (only focal)",
        ),
        (
            {"loss": [{"name": "focal", "gamma": 2.0}, {"name": "f1", "gamma": 2.0}]},
            "loss[1].gamma: the f1 loss takes no gamma",
        ),
        (
            {"loss": [{"name": "f1", "class_weights": True}]},
            "loss[0].class_weights: the f1 loss takes no class_weights (only cross_entropy and focal)",
        ),
        (
            {"head": "multi", "task_losses": {"age": [{"name": "f1", "label_smoothing": 0.1}]}},
            "task_losses.age[0].label_smoothing: the f1 loss takes no label_smoothing",
        ),
        (
            {"task_losses": {"age": [{"name": "focal"}]}},
            "task_losses: a single head has no tasks, so they would be ignored",
        ),
        (
            {"scheduler": {"name": "cosinus"}},
            "scheduler: timm cannot build it (ValueError: Unknown scheduler 'cosinus'",
        ),
        ({"scheduler": {"name": "cosine", "cycle_limitt": 3}}, "scheduler: timm cannot build it (TypeError:"),
        ({"optimizer": {"name": "adamm"}}, "optimizer: timm cannot build it"),
        (
            {"optimizer": {"name": "adamw", "betaz": [0.9, 0.99]}},
            "optimizer: timm cannot build it (TypeError:",
        ),
        (
            {"model_kwargs": {"drop_ratez": 0.1}},
            "model_kwargs: timm cannot build resnet18 with {'drop_ratez': 0.1} (TypeError",
        ),
        (
            {"model_kwargs": {"num_classes": 5}},
            "model_kwargs.num_classes: the head sets the number of outputs",
        ),
        ({"compile": "turbo"}, "compile: 'turbo' is not a torch.compile backend"),
        (
            {"early_stopping_patience": 2},
            "early_stopping_patience: stopping at the best validation F1 needs keep: best",
        ),
        ({"train_age_bins": [60, 30]}, "train_age_bins: [60, 30] are not two increasing ages"),
    ],
)
def test_a_setting_that_would_fail_or_be_ignored_is_refused_in_one_line_naming_its_key(block, message):
    with pytest.raises(ConfigError) as error:
        check_block("tiny", model_settings(arch="resnet18", **block))
    assert str(error.value).startswith(f"config: models.tiny.{message}"), str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "block",
    [
        {"batch_size": 33},
        {"batch_size": 33, "mix": {"mixup_alpha": 1.0, "prob": 0.0}},  # mixing off: any batch
        {
            "batch_size": 6,
            "mix": {"mixup_alpha": 1.0, "cutmix_alpha": 1.0, "prob": 1.0},
            "accumulation_steps": 4,
        },
        {
            "loss": [
                {"name": "focal", "gamma": 1.5, "label_smoothing": 0.1, "class_weights": True},
                {"name": "f1", "weight": 0.5},
            ]
        },
        {
            "head": "multi",
            "task_losses": {"age": [{"name": "cross_entropy", "label_smoothing": 0.1}]},
            "train_age_bins": [30, 58],
        },
        {
            "head": "multi",
            "age_years": {"sigma": 3.0},
            "mix": MIXUP,
            "ema": {"decay": 0.999},
        },
        {"age_years": {"sigma": 2.0}, "clip_grad_norm": 1.0, "sampler": "age"},
        {"scheduler": {"name": "plateau"}},
        {"scheduler": {"name": "none"}},
        {"scheduler": {"name": "cosine", "warmup_epochs": 0.5, "cycle_limit": 3, "cycle_decay": 0.5}},
        {"epochs": 3, "scheduler": {"name": "wsd", "decay_epochs": 0.1}},
        {"optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9}},
        {"compile": True},
        {"compile": "aot_eager"},
        {"compile": "inductor"},
        {"model_kwargs": {"drop_rate": 0.2}},
    ],
)
def test_a_block_that_trains_as_set_passes(block):
    check_block("tiny", model_settings(arch="resnet18", **block))


def test_the_check_leaves_the_settings_and_the_random_states_as_they_were():
    settings = model_settings(arch="resnet18", mix=MIXUP, age_years={"sigma": 3.0}, ema={"decay": 0.99})
    kept, torch_state, numpy_state = copy.deepcopy(settings), torch.get_rng_state(), np.random.get_state()
    check_block("tiny", settings)
    assert settings == kept
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state[1])


@functools.cache
def shipped_blocks() -> dict:
    """Every distinct model block of the shipped configs, as the workflow sees it (layered over
    config.yaml, validated, defaults filled in), by where it first appears: (name, block, age_bins)."""
    blocks, seen = {}, set()
    for layers in LAYERS:
        config = yaml.safe_load((ROOT / "config.yaml").read_text())
        for layer in layers:
            update_config(config, yaml.safe_load((ROOT / "config" / layer).read_text()))
        validated(config)
        for name, block in config["models"].items():
            if (key := json.dumps([name, block, config["age_bins"]], sort_keys=True)) not in seen:
                seen.add(key)
                model = ModelBlock.from_config(block, config["precision"])
                blocks[f"{'+'.join(layers) or 'config.yaml'}:{name}"] = (name, model, config["age_bins"])
    return blocks


@pytest.mark.parametrize("where", list(shipped_blocks()))
def test_every_block_of_the_shipped_configs_passes(where):
    check_block(*shipped_blocks()[where])


def test_a_verdict_holds_for_the_block_as_it_is_and_is_lost_when_it_or_the_checks_change(
    tmp_path, monkeypatch
):
    blocks = {"a": {"arch": "resnet18", "epochs": 1}, "b": {"arch": "resnet18", "epochs": 2}}
    assert unchecked_blocks(blocks, "auto", [30, 60], tmp_path) == blocks
    record_passed({"a": blocks["a"]}, "auto", [30, 60], tmp_path)
    assert list(unchecked_blocks(blocks, "auto", [30, 60], tmp_path)) == ["b"]
    assert list(
        unchecked_blocks(blocks | {"a": {"arch": "resnet18", "epochs": 3}}, "auto", [30, 60], tmp_path)
    ) == [
        "a",
        "b",
    ]
    assert list(unchecked_blocks(blocks, "bf16", [30, 60], tmp_path)) == [
        "a",
        "b",
    ]  # another global precision
    assert list(unchecked_blocks(blocks, "auto", [30, 58], tmp_path)) == ["a", "b"]  # other age cuts
    monkeypatch.setattr(block_verdicts, "code_digest", lambda path: "the checks after an edit")
    block_verdicts.checking_code.cache_clear()  # a new process: the edit is seen
    assert list(unchecked_blocks(blocks, "auto", [30, 60], tmp_path)) == ["a", "b"]
    block_verdicts.checking_code.cache_clear()


def test_the_check_and_a_train_job_build_a_block_with_the_one_builder(demo_tables, demo_cache, tmp_path):
    """What the load-time check builds is what a train job builds (facemask.train.recipe): a setting the
    builder refuses stops both, in the same words, naming the key."""
    block = model_settings(
        arch="test_resnet", image_size=[32, 32], optimizer={"name": "adamw", "betas": [0.9]}
    )
    with pytest.raises(ConfigError) as checked:
        check_block("m", block)
    index, folds = demo_tables
    outputs = outputs_in(tmp_path)
    with pytest.raises(ConfigError) as trained:
        train_fold(index, folds, 0, block, demo_cache["train"], outputs, threads=TORCH_THREADS)
    assert str(trained.value).startswith("optimizer: timm cannot build it")
    assert str(checked.value) == f"config: models.m.{trained.value}"
