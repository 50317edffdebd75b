"""What timm's factories take of a model block's `optimizer`, `scheduler` and `model_kwargs`, read from
their own signatures and registry: an option that a train job would pass in vain (timm drops it for the
chosen optimizer or schedule: `momentum` with adam, `decay_rate` with cosine), or that no part of the
factory takes (a typo, with the nearest key that one does). facemask.train.block_check refuses both."""

import dataclasses
import inspect
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from timm.optim import (
    OptimInfo,
    create_optimizer_v2,
    get_optimizer_class,
    get_optimizer_info,
    list_optimizers,
)
from timm.scheduler import create_scheduler_v2

from facemask.config.schema import SCHEMA, read_schema, unknown_key

#: the options that create_optimizer_v2 passes on only to an optimizer that takes them, each with
#: the OptimInfo flag it asks (`has_momentum`: momentum, ...); it drops them for the others
FLAGGED_OPTIONS = tuple(
    field.name.removeprefix("has_")
    for field in dataclasses.fields(OptimInfo)
    if field.name.startswith("has_")
)
#: the schedules' parts that timm.scheduler.create_scheduler_v2 hands to several kinds
WARMUP = ("warmup_lr", "warmup_epochs", "warmup_prefix")
NOISE = ("noise", "noise_pct", "noise_std", "noise_seed")
CYCLES = ("cycle_mul", "cycle_decay", "cycle_limit", "cooldown_epochs")
#: the arguments of create_scheduler_v2 that each kind of schedule reads: its branch passes them to the
#: scheduler it builds, or counts them in the run's epochs (cooldown_epochs); the others it drops.
#: tests/test_block_checks.py builds every kind with each argument changed, and fails when timm's
#: factory reads otherwise
SCHEDULE_READS = {
    "cosine": {"min_lr", "k_decay", *CYCLES, *WARMUP, *NOISE},
    "tanh": {"min_lr", *CYCLES, *WARMUP, *NOISE},
    "poly": {"min_lr", "k_decay", "decay_rate", *CYCLES, *WARMUP, *NOISE},
    "step": {"decay_epochs", "decay_rate", *WARMUP, *NOISE},
    "multistep": {"decay_milestones", "decay_rate", *WARMUP, *NOISE},
    "constant": {*WARMUP, *NOISE},
    "plateau": {"min_lr", "decay_rate", "patience_epochs", "plateau_mode", *WARMUP, *NOISE},
    "wsd": {"min_lr", "decay_epochs", "decay_fn", "stable_timescale", "cooldown_epochs", *WARMUP, *NOISE},
    "rsqrt": {"min_lr", "decay_epochs", "decay_fn", "stable_timescale", "cooldown_epochs", *WARMUP, *NOISE},
    "none": {"warmup_prefix"},
}
#: how many optimizers or schedules that take an option a message names
SHOWN = 4
#: Python's words for a keyword that a function does not take
UNEXPECTED_KEYWORD = re.compile(r"unexpected keyword argument '(\w+)'")


def keyword_names(function: Callable) -> list[str]:
    """The names that `function` (or a class's __init__) takes as keywords; a `**kwargs` is not one."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [
        name for name, parameter in inspect.signature(function).parameters.items() if parameter.kind in kinds
    ]


def takes_any_keyword(function: Callable) -> bool:
    """Whether `function` has a `**kwargs`."""
    parameters = inspect.signature(function).parameters.values()
    return any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters)


def takers(names: list[str]) -> str:
    """'a, b, c, d, ... do' of the `names` that take an option (the first SHOWN); 'a does' of one."""
    shown = ", ".join(names[:SHOWN]) + (", ..." if len(names) > SHOWN else "")
    return f"{shown} {'does' if len(names) == 1 else 'do'}"


def optimizer_info(name: str) -> OptimInfo | None:
    """timm's registry entry of the optimizer `name` ('lookahead_adamw': adamw's, as the factory
    reads it), or None for a name that it lacks (the build then says so)."""
    try:
        return get_optimizer_info(name.lower().split("_")[-1])
    except ValueError:
        return None


def optimizer_keys(info: OptimInfo) -> list[str] | None:
    """The options that create_optimizer_v2 and the optimizer of `info` take, `name` first; None
    where the optimizer takes any keyword, or cannot be had here (APEX or bitsandbytes without CUDA:
    the build says so)."""
    try:
        optimizer = get_optimizer_class(info.name, bind_defaults=False)
    except (AssertionError, ImportError):
        return None
    if takes_any_keyword(optimizer):
        return None
    # the factory's and the optimizer's keywords after the first (the model, the parameters)
    keys = ["name", *keyword_names(create_optimizer_v2)[1:], *keyword_names(optimizer)[1:], *FLAGGED_OPTIONS]
    return list(dict.fromkeys(keys))


def optimizer_problems(options: Mapping[str, Any]) -> Iterator[str]:
    """'optimizer...: what is wrong and what to do' of each of the block's optimizer `options` that
    neither create_optimizer_v2 nor the optimizer named takes, or that the factory would drop for it."""
    name = str(options.get("name"))
    info = optimizer_info(name)
    if info is None:
        return
    known = optimizer_keys(info)
    if known is not None:
        yield from (f"optimizer: {unknown_key(key, known)}" for key in options if key not in known)
    for option in FLAGGED_OPTIONS:
        if option in options and not getattr(info, f"has_{option}"):
            names = [
                str(each)
                for each in list_optimizers()
                if getattr(get_optimizer_info(str(each)), f"has_{option}")
            ]
            yield (
                f"optimizer.{option}: {name} takes no {option} ({takers(sorted(names, key=len))}): "
                "remove it, or change optimizer.name"
            )


def schedule_reads(name: str, options: Mapping[str, Any]) -> set[str]:
    """The arguments of create_scheduler_v2 that the schedule `name` reads (SCHEDULE_READS); with
    warmup_prefix, warmup_epochs too, which timm then adds to the run's epochs, whatever the schedule."""
    return SCHEDULE_READS[name] | ({"warmup_epochs"} if options.get("warmup_prefix") else set())


def scheduler_defaults() -> dict[str, Any]:
    """The scheduler options that the schema fills in every block, with their values."""
    properties = read_schema(SCHEMA)["$defs"]["model"]["properties"]["scheduler"]["properties"]
    return {key: value["default"] for key, value in properties.items() if "default" in value}


def scheduler_problems(options: Mapping[str, Any]) -> Iterator[str]:
    """'scheduler...: what is wrong and what to do' of each of the block's scheduler `options` that
    create_scheduler_v2 does not take, or that it would drop for the schedule named (an option at the
    schema's default, which every block holds, excepted)."""
    name = str(options.get("name"))
    known = ["name", *keyword_names(create_scheduler_v2)[1:]]
    yield from (f"scheduler: {unknown_key(key, known)}" for key in options if key not in known)
    if name not in SCHEDULE_READS:
        return
    defaults, read = scheduler_defaults(), schedule_reads(name, options)
    for key, value in options.items():
        kinds = [kind for kind in SCHEDULE_READS if key in schedule_reads(kind, options)]
        if kinds and key not in read and not (key in defaults and defaults[key] == value):
            yield (
                f"scheduler.{key}: the {name} schedule takes no {key} ({takers(kinds)}): remove it, "
                "or change scheduler.name"
            )


def unexpected_keyword(error: BaseException | None) -> str | None:
    """The keyword that a TypeError `error` says a function does not take, else None."""
    found = UNEXPECTED_KEYWORD.search(str(error)) if isinstance(error, TypeError) else None
    return found.group(1) if found else None
