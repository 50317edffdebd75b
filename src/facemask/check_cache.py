"""The load-time check's verdicts, kept by digest: a model block that passed facemask.checks once
is not built again while its settings, the config's age cuts and precision, the checking code and
the torch and timm versions stay the same, so that a parse of an unchanged config (`snakemake -n`,
every job of a cluster run) imports neither torch nor timm."""

import hashlib
import json
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from facemask.provenance import code_digest

#: where the verdicts of a working folder go: beside Snakemake's own records of it
VERDICTS = Path(".snakemake") / "facemask" / "checked_blocks"
#: the code whose verdict a digest records
CHECKS = Path(__file__).with_name("checks.py")


def block_digest(block: Mapping[str, Any], precision: str, age_bins: Sequence[int]) -> str:
    """What the check of the model `block` (as validated) depends on, as a digest."""
    record = {
        "block": block,
        "precision": precision,
        "age_bins": list(age_bins),
        "code": code_digest(CHECKS),
        "versions": {name: metadata.version(name) for name in ("torch", "timm")},
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:24]


def unchecked_blocks(
    blocks: Mapping[str, Mapping[str, Any]], precision: str, age_bins: Sequence[int], folder: Path = VERDICTS
) -> dict[str, Mapping[str, Any]]:
    """The `blocks` (by name) that have not passed the check as they are now."""
    return {
        name: block
        for name, block in blocks.items()
        if not (folder / block_digest(block, precision, age_bins)).exists()
    }


def record_passed(
    blocks: Mapping[str, Mapping[str, Any]], precision: str, age_bins: Sequence[int], folder: Path = VERDICTS
) -> None:
    """Keep the verdict that `blocks` passed; a folder that cannot be written only costs a check
    at the next parse."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for block in blocks.values():
            (folder / block_digest(block, precision, age_bins)).touch()
    except OSError:
        pass
