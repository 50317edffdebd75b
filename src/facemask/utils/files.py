"""Outputs written atomically: to a temporary name beside the target, then renamed over it, so a
crash never leaves a half-written file that looks complete; and the ensemble members' tables read
back, keyed by Member."""

import errno
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from facemask.utils.errors import PipelineError

#: the errors of a write to a full disk, or past the user's quota
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def partial_path(path: Path) -> Path:
    """Where atomic_output writes `path` until it is complete."""
    return path.with_name(path.name + ".partial")


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path`, on error it is removed. A
    full disk is a PipelineError naming `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(path)
    try:
        yield partial
        partial.replace(path)
    except OSError as error:
        if error.errno not in DISK_FULL:
            raise
        raise PipelineError(
            f"{path}: the disk is full ({error.strerror}); nothing was written under this name, "
            "free some space and rerun"
        ) from error
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


class Member(NamedTuple):
    """One member of the ensemble: a model trained with one fold held out, on which it made its
    out-of-fold predictions."""

    model: str
    fold: int

    def __str__(self) -> str:
        return f"{self.model} fold {self.fold}"


def read_member_tables(
    members: Sequence[Sequence], paths: Sequence[str | Path]
) -> dict[Member, pd.DataFrame]:
    """The CSV table of each ensemble member, keyed by its Member; `members` are (model, fold)
    pairs (Members, or the workflow's [model, fold] params) in the order of `paths`."""
    tables = {}
    for (model, fold), path in zip(members, paths, strict=True):
        tables[Member(model, int(fold))] = pd.read_csv(
            path, dtype={"ImageID": str, "person": str, "path": str}
        )
    return tables


def read_run_tables(results_dir: str | Path, pattern: str) -> dict[Member, pd.DataFrame]:
    """The members' tables of a finished run, found by `pattern` under `results_dir`
    ('train/*/fold*/oof_logits.csv', 'predict/*/fold*/eval_logits.csv': model, then fold<k>)."""
    paths = sorted(Path(results_dir).glob(pattern))
    members = [Member(path.parent.parent.name, int(path.parent.name.removeprefix("fold"))) for path in paths]
    return read_member_tables(members, paths)
