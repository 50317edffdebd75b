"""The config schema's defaults, for settings and functions built in code: each default is declared
once, in workflow/schemas/config.schema.yaml, and read from there (tests/test_package.py finds
literal copies)."""

import copy
import dataclasses
import functools
from pathlib import Path
from typing import Any

import yaml

#: the workflow's config schema (beside the package in a checkout of the workflow)
SCHEMA = Path(__file__).parents[3] / "workflow" / "schemas" / "config.schema.yaml"


@functools.cache
def _schema() -> dict:
    return read_yaml(SCHEMA)


def read_yaml(path: Path) -> Any:
    """A YAML file read by libyaml's safe loader where PyYAML has it (6 times faster: every job
    reads the schema)."""
    return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def schema_default(path: str) -> Any:
    """The schema's default of the config key at the dotted `path`, an object's filled with its keys'
    defaults as the schema's check fills them: `models.*` is a model block, `sweeps.*` a sweep, `[]`
    an item of a list (`models.*.optimizer`, `models.*.loss.[].weight`)."""
    node = _schema()
    for key in path.split("."):
        node = resolved(node)
        node = (
            node["additionalProperties"]
            if key == "*"
            else node["items"]
            if key == "[]"
            else node["properties"][key]
        )
    return filled(node["default"] if "default" in node else resolved(node)["default"], resolved(node))


def resolved(node: dict) -> dict:
    """`node` with its local `$ref` (#/$defs/...) followed, and of its oneOf / anyOf alternatives
    the one with keys (a section that may also be null)."""
    if "$ref" in node:
        target = _schema()
        for key in node["$ref"].removeprefix("#/").split("/"):
            target = target[key]
        node = target
    keyed = [each for each in node.get("oneOf", []) + node.get("anyOf", []) if "properties" in each]
    return keyed[0] if keyed else node


def filled(default: Any, node: dict) -> Any:
    """A copy of `default`, a mapping's missing keys filled with their defaults in `node` (and so
    each item of a list)."""
    if isinstance(default, list) and "items" in node:
        return [filled(item, resolved(node["items"])) for item in default]
    if not isinstance(default, dict):
        return copy.deepcopy(default)
    properties = node.get("properties", {})
    missing = {key: sub for key, sub in properties.items() if key not in default and "default" in sub}
    return {key: copy.deepcopy(value) for key, value in default.items()} | {
        key: filled(sub["default"], resolved(sub)) for key, sub in missing.items()
    }


def schema_field(path: str) -> Any:
    """A dataclass field whose default is the schema's default at `path` (see schema_default),
    lists as tuples."""
    value = schema_default(path)
    if isinstance(value, dict):
        return dataclasses.field(default_factory=lambda: schema_default(path))
    return dataclasses.field(default=tuple(value) if isinstance(value, list) else value)
