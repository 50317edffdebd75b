"""Outputs written atomically: to a temporary name beside the target, then renamed over it, so a
crash never leaves a half-written file that looks complete."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        yield partial
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def write_csv(table: pd.DataFrame, path: str | Path) -> None:
    """Write `table` as CSV without its index, atomically."""
    with atomic_output(path) as partial:
        table.to_csv(partial, index=False)


def write_json(data, path: str | Path) -> None:
    """Write `data` as indented JSON, atomically."""
    with atomic_output(path) as partial:
        partial.write_text(json.dumps(data, indent=2) + "\n")


def write_text(text: str, path: str | Path) -> None:
    """Write `text`, atomically."""
    with atomic_output(path) as partial:
        partial.write_text(text)


def read_member_tables(members: list[str], paths: list[str]) -> dict[tuple[str, int], pd.DataFrame]:
    """The CSV table of each ensemble member, keyed (model, fold); `members` are "model/fold"
    strings in the order of `paths`."""
    tables = {}
    for member, path in zip(members, paths, strict=True):
        model, fold = member.rsplit("/", 1)
        tables[(model, int(fold))] = pd.read_csv(path, dtype={"ImageID": str, "person": str, "path": str})
    return tables
