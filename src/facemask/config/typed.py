"""Typed settings from plain config data and back: a rule's params carry a slice as plain data
(as_config), which the job's script turns back into its type (typed)."""

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any


def _frozen(value):
    """Lists as tuples, so that nested settings compare and hash as values."""
    return tuple(value) if isinstance(value, list) else value


def _plain(value):
    """Tuples as lists, recursively."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def typed(kind, data: Mapping[str, Any]):
    """The dataclass `kind` from `data` by field name (a missing field its default, an unknown one
    a TypeError): a field whose type is a dataclass built from its mapping, lists as tuples,
    values that are built already kept."""
    hints = typing.get_type_hints(kind)
    values = {}
    for name, value in data.items():
        hint = hints.get(name)
        nested = dataclasses.is_dataclass(hint) and isinstance(value, Mapping)
        values[name] = typed(hint, value) if nested else _frozen(value)
    return kind(**values)


def as_config(settings) -> dict[str, Any]:
    """A settings object as plain data (lists and dicts), as the config holds it: for a rule's
    params (Snakemake compares plain data only), logs and JSON."""
    return _plain(dataclasses.asdict(settings))
