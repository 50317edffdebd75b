"""The load-time check of a model block (facemask.train.block_check): what a train job would fail on
hours later, or ignore, is refused naming the block and the key; every shipped config passes."""

import copy
import functools
import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from snakemake.utils import update_config
from timm.optim import create_optimizer_v2, get_optimizer_class, get_optimizer_info, list_optimizers
from timm.scheduler import create_scheduler_v2

from facemask.config.blocks import ModelBlock
from facemask.config.schema import validated
from facemask.train import passed_checks
from facemask.train.block_check import check_block
from facemask.train.fold import train_fold
from facemask.train.optim import LearningRateSchedule
from facemask.train.passed_checks import record_passed, unchecked_blocks
from facemask.train.timm_options import (
    FLAGGED_OPTIONS,
    SCHEDULE_READS,
    keyword_names,
    optimizer_problems,
    schedule_reads,
    scheduler_defaults,
)
from facemask.utils.errors import ConfigError
from facemask.utils.provenance import package_modules

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
        (
            {"scheduler": {"name": "cosine", "cycle_limitt": 3}},
            "scheduler: unknown key 'cycle_limitt' (did you mean 'cycle_limit'?)",
        ),
        (
            {"scheduler": {"name": "cosine", "decay_rate": 0.5}},
            "scheduler.decay_rate: the cosine schedule takes no decay_rate (poly, step, multistep, plateau "
            "do): remove it, or change scheduler.name",
        ),
        (
            {"scheduler": {"name": "cosine", "patience_epochs": 3}},
            "scheduler.patience_epochs: the cosine schedule takes no patience_epochs (plateau does)",
        ),
        (
            {"scheduler": {"name": "plateau", "cycle_limit": 3}},
            "scheduler.cycle_limit: the plateau schedule takes no cycle_limit (cosine, tanh, poly do)",
        ),
        (
            {"scheduler": {"name": "step", "min_lr": 1.0e-5}},
            "scheduler.min_lr: the step schedule takes no min_lr",
        ),
        (
            {"scheduler": {"name": "none", "warmup_epochs": 3}},
            "scheduler.warmup_epochs: the none schedule takes no warmup_epochs",
        ),
        ({"optimizer": {"name": "adamm"}}, "optimizer: timm cannot build it"),
        (
            {"optimizer": {"name": "adamw", "betaz": [0.9, 0.99]}},
            "optimizer: unknown key 'betaz' (did you mean 'betas'?)",
        ),
        (
            {"optimizer": {"name": "adamw", "weight_decai": 0.05}},
            "optimizer: unknown key 'weight_decai' (did you mean 'weight_decay'?)",
        ),
        (
            {"optimizer": {"name": "adam", "momentum": 0.9}},
            "optimizer.momentum: adam takes no momentum (sgd, ",
        ),
        (
            {"optimizer": {"name": "lookahead_adamw", "momentum": 0.9}},
            "optimizer.momentum: lookahead_adamw takes no momentum",
        ),
        ({"optimizer": {"name": "sgd", "betas": [0.9, 0.99]}}, "optimizer.betas: sgd takes no betas (adam, "),
        ({"optimizer": {"name": "lion", "eps": 1.0e-6}}, "optimizer.eps: lion takes no eps"),
        (
            {"model_kwargs": {"drop_ratez": 0.1}},
            "model_kwargs: unknown key 'drop_ratez' (did you mean 'drop_rate'?)",
        ),
        (
            {"model_kwargs": {"drop_rate": 0.1, "drop_path_rat": 0.1}},
            "model_kwargs: unknown key 'drop_path_rat' (did you mean 'drop_path_rate'?)",
        ),
        (
            {"model_kwargs": {"in_chans": "three"}},
            "model_kwargs: timm cannot build resnet18 with {'in_chans': 'three'} (TypeError",
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
        {"optimizer": {"name": "lookahead_sgd", "momentum": 0.9, "nesterov": False}},
        {"optimizer": {"name": "adamw", "betas": [0.9, 0.99], "eps": 1.0e-6, "layer_decay": 0.8}},
        {"scheduler": {"name": "step", "decay_epochs": 0.5, "decay_rate": 0.5}},
        {"scheduler": {"name": "multistep", "decay_milestones": [1, 2], "decay_rate": 0.5}},
        {"scheduler": {"name": "plateau", "patience_epochs": 2, "decay_rate": 0.5}},
        {"scheduler": {"name": "none", "warmup_epochs": 2, "warmup_prefix": True}},
        {"scheduler": {"name": "step", "min_lr": 1.0e-6}},  # the schema's default, which every block holds
        {"optimizer": {"name": "adamw", "momentum": None}},  # null: a momentum set below removed
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


@pytest.mark.filterwarnings("ignore:It is highly recommended to have 'opt_einsum'")
def test_timm_drops_momentum_eps_and_betas_exactly_for_the_optimizers_that_the_check_names():
    """create_optimizer_v2 passes momentum, eps and betas on to an optimizer whose registry entry has
    them (whose class takes them) and drops them silently for the others, as the check says."""
    values = {"momentum": 0.5, "eps": 1.0e-3, "betas": (0.5, 0.6)}
    assert set(FLAGGED_OPTIONS) == set(values)
    model = torch.nn.Linear(2, 2)
    for name in map(str, list_optimizers()):
        info = get_optimizer_info(name)
        try:
            optimizer = get_optimizer_class(name, bind_defaults=False)
        except (AssertionError, ImportError):  # APEX and bitsandbytes: CUDA only
            continue
        for option, value in values.items():
            assert getattr(info, f"has_{option}") == (option in keyword_names(optimizer)), (name, option)
            if not getattr(info, f"has_{option}"):
                built = create_optimizer_v2(model, name, lr=0.01, **{option: value})
                assert all(group.get(option) != value for group in built.param_groups), (name, option)
                assert next(optimizer_problems({"name": name, option: value})).startswith(
                    f"optimizer.{option}: {name} takes no {option}"
                )


#: the arguments of create_scheduler_v2 that the train job sets itself (facemask.train.optim)
SET_BY_THE_JOB = {"optimizer", "sched", "num_epochs", "step_on_epochs", "updates_per_epoch"}
#: a value of each other argument, unlike the schema's default and timm's
CHANGED = {
    "decay_epochs": 0.5,
    "decay_milestones": [1, 2],
    "cooldown_epochs": 2,
    "patience_epochs": 3,
    "decay_rate": 0.5,
    "min_lr": 1.0e-4,
    "warmup_lr": 1.0e-3,
    "warmup_epochs": 2,
    "warmup_prefix": True,
    "noise": 0.5,
    "noise_pct": 0.5,
    "noise_std": 0.5,
    "noise_seed": 7,
    "cycle_mul": 2.0,
    "cycle_decay": 0.5,
    "cycle_limit": 2,
    "k_decay": 2.0,
    "decay_fn": "cosine",
    "stable_timescale": 2.0,
    "plateau_mode": "min",
}


def built_schedule(options: dict) -> tuple:
    """A train job's schedule (facemask.train.optim) of the scheduler `options`: the timm scheduler's
    settings, the run's epochs and the first lr."""
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
    schedule = LearningRateSchedule(optimizer, ModelBlock(arch="resnet18", scheduler=options), 100)
    state = {} if schedule.scheduler is None else vars(schedule.scheduler)
    settings = {
        key: value.state_dict() if hasattr(value, "state_dict") else value  # plateau's torch scheduler
        for key, value in state.items()
        if key != "optimizer"
    }
    return repr(sorted(settings.items())), schedule.epochs, optimizer.param_groups[0]["lr"]


def test_every_argument_of_timms_scheduler_factory_is_tried():
    parameters = inspect.signature(create_scheduler_v2).parameters
    assert set(CHANGED) == set(keyword_names(create_scheduler_v2)) - SET_BY_THE_JOB
    for key, value in CHANGED.items():
        assert value not in (parameters[key].default, scheduler_defaults().get(key)), key


@pytest.mark.parametrize("kind", list(SCHEDULE_READS))
def test_each_schedule_reads_the_arguments_that_the_check_says_and_drops_the_others(kind):
    """SCHEDULE_READS is how timm's create_scheduler_v2 dispatches: an argument changes the schedule
    of a kind exactly where the table says that the kind reads it."""
    base = {**scheduler_defaults(), "name": kind}
    built = built_schedule(base)
    assert {key for key, value in CHANGED.items() if built_schedule(base | {key: value}) != built} == (
        schedule_reads(kind, base)
    )


def test_with_warmup_prefix_even_no_schedule_reads_warmup_epochs():
    base = {**scheduler_defaults(), "name": "none", "warmup_prefix": True}
    assert built_schedule(base | {"warmup_epochs": 2}) != built_schedule(base)
    assert "warmup_epochs" in schedule_reads("none", base)


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
    monkeypatch.setattr(passed_checks, "code_digest", lambda path: "the checks after an edit")
    passed_checks.checking_code.cache_clear()  # a new process: the edit is seen
    assert list(unchecked_blocks(blocks, "auto", [30, 60], tmp_path)) == ["a", "b"]
    passed_checks.checking_code.cache_clear()


def test_the_digest_of_the_checking_code_covers_what_timm_drops():
    """A change to the table of what timm's factories drop loses the verdicts (passed_checks.CHECKS
    and the modules it imports)."""
    assert "facemask.train.timm_options" in package_modules(passed_checks.CHECKS, ROOT / "src")


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
