"""Sweeps (config `sweeps`): many settings of one model block tried as jobs. A sweep names a base
block and the settings to vary by dotted key (`optimizer.lr`; a number steps into a list:
`loss.0.label_smoothing`): a grid of values, and/or random draws from ranges (seeded). Keys joined by
commas (`image_size, epochs`) move together, each value a list with one entry per key. Each point
becomes a model block at load time, named from its settings alone (the base block's name and a
digest), so that adding a value adds only its jobs, reordering changes nothing, and two sweeps that
try the same point train it once. With `halving`, successive halving: every variant first trains a
share of its schedule's updates (a rung: its full lr schedule, stopped early), on the rung folds,
the best `keep` share goes on to the next, the last rung the whole schedule on the sweep's folds."""

import copy
import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from facemask.config.defaults import schema_default, schema_field
from facemask.utils.digests import settings_digest
from facemask.utils.errors import ConfigError

#: how a draw's range is sampled, by the range's one key
SAMPLERS = {
    "log_uniform": lambda rng, low, high: float(math.exp(rng.uniform(math.log(low), math.log(high)))),
    "uniform": lambda rng, low, high: float(rng.uniform(low, high)),
    "int_uniform": lambda rng, low, high: int(rng.integers(low, high + 1)),
}


@dataclass(frozen=True)
class Sweep:
    """A sweep as loaded: its `base` block, its variants (block name -> the settings varied, by
    dotted key), the `folds` it trains (None: all), and with halving the `budgets` of the rungs
    before the last (shares of each variant's optimizer updates), each variant's blocks at those
    rungs (`rungs`, named <variant>-s<percent>), the share `keep` that goes on, and the folds
    those rungs train on (`rung_folds`; None: the sweep's)."""

    name: str
    base: str
    variants: Mapping[str, Mapping[str, Any]]
    folds: tuple[int, ...] | None = None
    budgets: tuple[float, ...] = ()
    keep: float = schema_field("sweeps.*.halving.keep")
    rungs: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    rung_folds: tuple[int, ...] | None = None

    @property
    def blocks(self) -> list[str]:
        """Every block of the sweep: its variants and their rungs before the last."""
        return [self.rung_block(v, rung) for v in self.variants for rung in range(len(self.budgets) + 1)]

    def rung_block(self, variant: str, rung: int) -> str:
        """The block that trains `variant` at `rung` (the last rung: the variant itself)."""
        return variant if rung == len(self.budgets) else self.rungs[variant][rung]

    def variant_of(self, block: str) -> str:
        """The variant that the sweep's `block` (a variant, or one of its rungs) trains."""
        return next(
            variant for variant in self.variants if block == variant or block in self.rungs.get(variant, ())
        )

    def survivors(self, ranked: list[str]) -> list[str]:
        """The variants of a rung (best first) that go on to the next: the best `keep` share, at least 1."""
        return ranked[: max(1, math.ceil(len(ranked) * self.keep))]


def with_setting(block: Mapping[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of `block` with the dotted `key` (e.g. optimizer.lr; a number steps into a list, as in
    loss.0.label_smoothing) set to `value`."""
    changed = copy.deepcopy(dict(block))
    *path, last = key.split(".")
    place: Any = changed
    for part in path:
        if isinstance(place, dict) and place.get(part) is None:  # unset, or null: a group of its own
            place[part] = {}
        place = step(place, part, key)
    if isinstance(place, list):
        place[list_index(place, last, key)] = value
    elif isinstance(place, dict):
        place[last] = value
    else:
        raise ConfigError(f"{key}: {path[-1]} is not a group of settings")
    return changed


def step(place: Any, part: str, key: str) -> Any:
    """The setting `part` of the group or list `place`, one step along the dotted `key`."""
    if isinstance(place, list):
        return place[list_index(place, part, key)]
    if not isinstance(place, dict):
        raise ConfigError(f"{key}: {part} is not in a group of settings")
    return place[part]


def list_index(items: list, part: str, key: str) -> int:
    """`part` of the dotted `key` as an index of the list `items`."""
    if not part.isdigit() or int(part) >= len(items):
        raise ConfigError(
            f"{key}: {part} is not an index of a list of {len(items)} entries (0 to {len(items) - 1})"
        )
    return int(part)


def split_joined(point: Mapping[str, Any]) -> dict[str, Any]:
    """A point with its joined keys (`image_size, epochs`: several settings that move together)
    split, one value per key."""
    split: dict[str, Any] = {}
    for joined, value in point.items():
        keys = [key.strip() for key in joined.split(",")]
        if len(keys) == 1:
            split[keys[0]] = value
        elif not isinstance(value, list) or len(value) != len(keys):
            raise ConfigError(f"{joined}: {value!r} is not a list of {len(keys)} values, one per key")
        else:
            split |= dict(zip(keys, value, strict=True))
    return split


def grid_points(grid: Mapping[str, list]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, keys in sorted order."""
    keys = sorted(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(grid[k] for k in keys))]


def draw_points(draws: Mapping[str, Any]) -> list[dict[str, Any]]:
    """`count` points drawn from the `ranges` (each {log_uniform | uniform | int_uniform: [low, high]}
    or {choice: [values]}); draw i is seeded by (seed, i), so more draws keep the earlier ones."""
    ranges, points = draws.get("ranges", {}), []
    for number in range(draws.get("count", 0)):
        rng = np.random.default_rng([draws.get("seed", schema_default("sweeps.*.draws.seed")), number])
        point = {}
        for key in sorted(ranges):
            (kind, spec), *_ = ranges[key].items()
            if kind == "choice":  # a value may be null (a setting's default)
                point[key] = spec[int(rng.integers(len(spec)))]
            else:
                point[key] = SAMPLERS[kind](rng, *spec)
        points.append(point)
    return points


def variant_name(base: str, point: Mapping[str, Any]) -> str:
    """The block name of a sweep's point: its base block's name and a digest of its settings."""
    return f"{base}-{settings_digest(point, 8)}"


def expand_sweep(name: str, sweep: Mapping[str, Any], models: Mapping[str, Any]) -> tuple[Sweep, dict]:
    """The sweep `name` as loaded, and its blocks (the variants, and with halving their rungs) as
    plain config, each its base block with its point's settings."""
    if sweep["base"] not in models:
        raise ConfigError(
            f"config: sweeps.{name}.base: {sweep['base']!r} is not a model block "
            f"(the blocks: {', '.join(models)})"
        )
    base = models[sweep["base"]]
    points = grid_points(sweep.get("grid", {}))
    draws = sweep.get("draws") or {}
    points = [grid | drawn for grid in points for drawn in draw_points(draws)] if draws else points
    if not sweep.get("grid") and not draws:
        raise ConfigError(f"config: sweeps.{name}: no variants: give a grid or draws")
    try:
        points = [split_joined(point) for point in points]
    except ConfigError as error:
        raise ConfigError(f"config: sweeps.{name}: {error}") from None
    variants = dict(
        sorted((variant_name(sweep["base"], point), point) for point in points)
    )  # no config order
    blocks: dict[str, dict] = {}
    for variant, point in variants.items():
        blocks[variant] = dict(base)
        for key, value in point.items():
            try:
                blocks[variant] = with_setting(blocks[variant], key, value)
            except ConfigError as error:
                raise ConfigError(f"config: sweeps.{name}: {error}") from None
    halving = sweep.get("halving") or {}
    budgets = tuple(halving.get("budgets", ()))
    if any(later <= earlier for earlier, later in itertools.pairwise(budgets)):
        raise ConfigError(f"config: sweeps.{name}.halving.budgets: {list(budgets)} do not increase")
    rungs = {variant: rung_blocks(variant, blocks[variant], budgets) for variant in variants}
    for named in rungs.values():
        blocks |= named
    folds = tuple(sweep["folds"]) if sweep.get("folds") else None
    rung_folds = tuple(halving["folds"]) if halving.get("folds") else None
    keep = halving.get("keep", schema_default("sweeps.*.halving.keep"))
    loaded = Sweep(name, sweep["base"], variants, folds, budgets, keep, rung_folds=rung_folds)
    return dataclasses.replace(
        loaded, rungs={variant: tuple(named) for variant, named in rungs.items()}
    ), blocks


def rung_blocks(variant: str, block: Mapping[str, Any], budgets: Sequence[float]) -> dict[str, dict]:
    """A variant's blocks at the rungs before the last: itself stopped after each budget's share of
    its schedule's updates (stop_after; its lr schedule the full run's), named <variant>-s<percent>
    (<variant>-s12_5 for 12.5 %)."""
    return {
        f"{variant}-s{f'{budget * 100:g}'.replace('.', '_')}": dict(block)
        | {"stop_after": budget * block["stop_after"]}
        for budget in budgets
    }


def load_sweeps(config: Mapping[str, Any]) -> tuple[dict[str, Sweep], dict[str, dict]]:
    """Every sweep of the validated `config`, and all their blocks (plain config, checked against
    the schema: a bad variant is one error naming its sweep, its settings and the key)."""
    from facemask.config.schema import check_config

    sweeps: dict[str, Sweep] = {}
    blocks: dict[str, dict] = {}
    for name, spec in config.get("sweeps", {}).items():
        sweep, made = expand_sweep(name, spec, config["models"])
        for block_name, block in made.items():
            try:
                check_config({"models": {block_name: block}})
            except ConfigError as error:
                raise ConfigError(f"config: sweeps.{name}: {describe(sweep, block_name)}: {error}") from None
        sweeps[name], blocks = sweep, blocks | made
    return sweeps, blocks


def settings_text(sweep: Sweep, block: str) -> str:
    """The settings that a sweep's block (a variant or one of its rungs) varies, in words."""
    return ", ".join(f"{key}={value}" for key, value in sweep.variants[sweep.variant_of(block)].items())


def describe(sweep: Sweep, block: str) -> str:
    """A sweep's block in words: its name and the settings its variant varies."""
    return f"variant {block} ({settings_text(sweep, block)})"


def differences(base: Mapping[str, Any], block: Mapping[str, Any], prefix: str = "") -> list[str]:
    """How `block` differs from `base`, one `key: old -> new` line per dotted key (lists of one
    length compared entry by entry: loss.0.label_smoothing)."""
    lines = []
    for key in sorted(set(base) | set(block), key=str):
        old, new = base.get(key), block.get(key)
        if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
            old, new = dict(enumerate(old)), dict(enumerate(new))
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            lines += differences(old, new, f"{prefix}{key}.")
        elif old != new:
            lines.append(f"{prefix}{key}: {old} -> {new}")
    return lines


def winner_text(sweep: Sweep, winner: str, blocks: Mapping[str, Mapping[str, Any]], summary: str) -> str:
    """The winning variant as a model block to paste into config.yaml (named <base>_<sweep>), with
    comments saying how it scored (`summary`) and how it differs from the base."""
    import yaml

    lines = [f"# sweep {sweep.name}: {summary}", f"# differs from {sweep.base}:"]
    lines += [f"#   {line}" for line in differences(blocks[sweep.base], blocks[winner])]
    block = {f"{sweep.base}_{sweep.name}": dict(blocks[winner])}
    return (
        "\n".join(lines) + "\n" + yaml.safe_dump({"models": block}, sort_keys=False, default_flow_style=None)
    )
