"""The load-time checks passed, kept by digest: a model block that passed facemask.train.block_check once
is not built again while its settings, the config's age cuts and precision, the checking code and
the torch and timm versions stay the same, so that a parse of an unchanged config (`snakemake -n`,
every job of a cluster run) imports neither torch nor timm."""

import functools
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from facemask.config.settings import Settings
from facemask.utils.digests import settings_digest
from facemask.utils.errors import ConfigError
from facemask.utils.provenance import code_digest

#: where the checks passed in a working folder are kept: beside Snakemake's own records of it
PASSED_CHECKS = Path(".snakemake") / "facemask" / "checked_blocks"
#: the code whose verdict a digest records
CHECKS = Path(__file__).with_name("block_check.py")


def block_digest(block: Mapping[str, Any], precision: str, age_bins: Sequence[int]) -> str:
    """What the check of the model `block` (as validated) depends on, as a digest."""
    record = {"block": block, "precision": precision, "age_bins": list(age_bins), **checking_code()}
    return settings_digest(record, 24)


@functools.cache
def checking_code() -> dict[str, Any]:
    """The checking code's digest and the torch and timm versions, once a process."""
    return {
        "code": code_digest(CHECKS),
        "versions": {name: metadata.version(name) for name in ("torch", "timm")},
    }


def unchecked_blocks(
    blocks: Mapping[str, Mapping[str, Any]],
    precision: str,
    age_bins: Sequence[int],
    folder: Path = PASSED_CHECKS,
) -> dict[str, Mapping[str, Any]]:
    """The `blocks` (by name) that have not passed the check as they are now."""
    return {
        name: block
        for name, block in blocks.items()
        if not (folder / block_digest(block, precision, age_bins)).exists()
    }


def record_passed(
    blocks: Mapping[str, Mapping[str, Any]],
    precision: str,
    age_bins: Sequence[int],
    folder: Path = PASSED_CHECKS,
) -> None:
    """Keep the verdict that `blocks` passed; a folder that cannot be written only costs a check
    at the next parse."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for block in blocks.values():
            (folder / block_digest(block, precision, age_bins)).touch()
    except OSError:
        pass


def check_blocks(settings: Settings) -> None:
    """Raise a ConfigError when a model block of `settings` names no timm model, or holds a setting
    that its train jobs would fail on or ignore (see block_check.check_block); a block that passed
    as it is now is not built again."""
    blocks = {name: block.as_config() for name, block in settings.models.items()}
    unchecked = unchecked_blocks(blocks, settings.precision, settings.age_bins)
    if not unchecked:
        return
    import timm

    from facemask.train.block_check import check_block

    unknown = [
        f"config: models.{name}.arch: {settings.models[name].arch!r} is not in timm's registry "
        "(see timm.list_models())"
        for name in unchecked
        if not timm.is_model(settings.models[name].arch)
    ]
    if unknown:
        raise ConfigError("\n".join(unknown))
    for name in unchecked:
        check_block(name, settings.models[name], settings.age_bins)
    record_passed(unchecked, settings.precision, settings.age_bins)
