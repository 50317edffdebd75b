"""The config checked against workflow/schemas/config.schema.yaml, with messages a person can act on:
each names the key path (`models.resnet34.image_size[0]`), a close key for a typo, the valid names."""

import copy
import difflib
import functools
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError

from facemask.config.defaults import SCHEMA, read_yaml
from facemask.config.sections import FLAT_CROP_KEYS, crop_of_flat
from facemask.utils.errors import ConfigError
from facemask.utils.logs import log

#: a number in plain or scientific notation; YAML 1.1 reads one with an exponent but no dot (1e-3) as
#: a string
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
#: the words a command line gives for a boolean
BOOLEANS = {"true": True, "false": False}
#: how YAML writes null, as Snakemake's --config passes it inside a mapping: a string
NULLS = ("null", "~")
TYPE_NAMES = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "a boolean (true/false)",
    "object": "a mapping (key: value)",
    "array": "a list",
    "null": "null",
}
LIMITS = {
    "minimum": "{value} is below the minimum {limit}",
    "maximum": "{value} is above the maximum {limit}",
    "exclusiveMinimum": "{value} must be above {limit}",
    "exclusiveMaximum": "{value} must be below {limit}",
    "minItems": "{value} has too few items (at least {limit})",
    "maxItems": "{value} has too many items (at most {limit})",
    "minProperties": "{value} has too few keys (at least {limit})",
    "maxProperties": "{value} has too many keys (at most {limit})",
    "minLength": "{value} is too short (at least {limit} characters)",
    "pattern": "{value} does not match the pattern {limit}",
}


def validated(config: dict, schema_path: str | Path = SCHEMA) -> dict:
    """`config` checked (check_config) and its defaults filled in from the schema, in place, as the
    workflow loads it (Snakemake's validate fills them); returned for convenience."""
    from snakemake.utils import validate

    check_config(config, schema_path)
    validate(config, str(schema_path))
    return config


def read_schema(path: Path) -> dict:
    """The schema at `path`, read once per version of the file (a sweep checks each variant)."""
    status = path.stat()
    return copy.deepcopy(_read_schema(path.resolve(), status.st_mtime_ns, status.st_size))


@functools.cache
def _read_schema(path: Path, mtime_ns: int, size: int) -> dict:
    return read_yaml(path)


def check_config(config: dict, schema_path: str | Path = SCHEMA) -> None:
    """Turn numbers and booleans written as strings into numbers and booleans where the schema wants
    one (in place, see values_from_strings), then check `config` against the schema; raise
    ConfigError with one line per mistake, each naming its key."""
    schema = read_schema(Path(schema_path))
    crop_from_flat_keys(config)
    values_from_strings(config, schema, schema)
    errors = jsonschema.Draft202012Validator(schema).iter_errors(config)
    lines = [
        f"{key_path(error.absolute_path)} {line}"
        for found in sorted(errors, key=lambda error: [str(part) for part in error.absolute_path])
        for error, line in explain(found)
    ]
    if lines:
        raise ConfigError("\n".join(lines))


def crop_from_flat_keys(config: dict) -> None:
    """The cache's flat crop settings (`face_crop`, `centre_crop`, `face_scale`, `face_detector`,
    before `cache.crop`) turned into `cache.crop`, in place, with a warning that gives the new form."""
    cache = config.get("cache")
    if not isinstance(cache, dict) or not (flat := [key for key in FLAT_CROP_KEYS if key in cache]):
        return
    for flag in ("face_crop", "centre_crop"):
        if isinstance(cache.get(flag), str):
            cache[flag] = BOOLEANS.get(cache[flag].lower(), cache[flag])
    cache["crop"] = crop_of_flat(cache)
    for key in flat:
        del cache[key]
    log.warning("config: cache.%s: read as cache.crop: %s (the new form)", ", ".join(flat), cache["crop"])


def values_from_strings(value: Any, schema: dict, root: dict) -> Any:
    """`value` with each string in number notation (`1e-3`) turned into a number, each `true` or
    `false` (as `--config tracking=false` gives it) into a boolean, and each `null` (as
    `--config 'pseudo_labels={models: null}'` gives it) into None, where the schema wants one there
    and no string (or only an enum's names, which `value` is not); dicts and lists are changed in
    place. Where only an integer will do, a whole number (`1e1`, `64.0`) becomes an int: YAML 1.2
    and JSON read `1e1` as 10.0, which the schema's "integer" accepts but `range(epochs)` would
    not; a fraction (`2.5e0`) stays as written, so that the check refuses it by its key."""
    schemas = alternatives(schema, root)
    if isinstance(value, dict | list):
        for key, item in value.items() if isinstance(value, dict) else enumerate(value):
            child = child_schema(schemas, key)
            if child is not None:
                value[key] = values_from_strings(item, child, root)
        return value
    strings = [each for each in schemas if "string" in as_list(each.get("type", []))]
    if any("enum" not in each or value in each["enum"] for each in strings):
        return value  # a string is wanted there (a name of an enum, as `batch_size: auto`)
    types = {name for each in schemas for name in as_list(each.get("type", []))}
    if "null" in types and isinstance(value, str) and value.lower() in NULLS:
        return None
    if "boolean" in types and isinstance(value, str) and value.lower() in BOOLEANS:
        return BOOLEANS[value.lower()]
    if not types & {"number", "integer"}:
        return value
    if isinstance(value, str) and NUMBER.fullmatch(value.strip()):
        number = float(value)
    elif isinstance(value, float):
        number = value
    else:
        return value
    if "number" in types:
        return number
    return int(number) if number.is_integer() else value


def alternatives(schema: dict, root: dict) -> list[dict]:
    """The schema and its oneOf / anyOf alternatives, with local $refs (#/$defs/...) resolved."""
    schema = resolve(schema, root)
    return [schema, *(resolve(each, root) for each in schema.get("oneOf", []) + schema.get("anyOf", []))]


def resolve(schema: dict, root: dict) -> dict:
    """`schema` with its $ref (a path in this schema file) replaced by what it points at."""
    if "$ref" not in schema:
        return schema
    target = root
    for part in schema["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    return {**target, **{key: value for key, value in schema.items() if key != "$ref"}}


def child_schema(schemas: list[dict], key: str | int) -> dict | None:
    """The schema of an item (list index) or a key of a mapping, from the first alternative with one."""
    for schema in schemas:
        if isinstance(key, int):
            found = schema.get("items")
        else:
            found = schema.get("properties", {}).get(key, schema.get("additionalProperties"))
        if isinstance(found, dict):
            return found
    return None


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def explain(error: ValidationError) -> list[tuple[ValidationError, str]]:
    """What is wrong, one line per mistake (without the key path), with the error it is at."""
    kind, value, limit = error.validator, error.instance, error.validator_value
    if kind == "oneOf" and error.context:
        meant = alternative_meant(error)
        if meant is not None and list(meant.relative_schema_path)[1:] != ["enum"]:
            return explain(meant)  # else the value is of an alternative's kind, not one of its names
        wanted = [takes(option) for option in limit if takes(option)]  # a name of an enum, or a kind
        return [(error, f"{show(value)} is not {' or '.join(wanted)}")]
    if kind == "additionalProperties":
        known = list(error.schema.get("properties", {}))
        return [(error, unknown_key(key, known)) for key in value if key not in known]
    if kind == "required":
        return [(error, f"missing key {key!r}") for key in limit if key not in value]
    if kind == "enum":
        return [(error, f"{show(value)} is not one of {', '.join(show_name(name) for name in limit)}")]
    if kind == "type":
        return [(error, f"{show(value)} is not {' or '.join(TYPE_NAMES[name] for name in as_list(limit))}")]
    if kind in LIMITS:
        return [(error, LIMITS[str(kind)].format(value=show(value), limit=limit))]
    return [(error, error.message)]


def alternative_meant(error: ValidationError) -> ValidationError | None:
    """Of a oneOf's errors, the deepest one of an alternative of the value's kind (a TTA transform
    given as a mapping: its mapping's error), or None when the value is of no alternative's kind."""
    wrong_kind = {sub.relative_schema_path[0] for sub in error.context or [] if is_kind_error(sub)}
    fitting = [sub for sub in error.context or [] if sub.relative_schema_path[0] not in wrong_kind]
    return max(fitting, key=lambda sub: len(sub.absolute_path), default=None)


def takes(option: dict) -> str:
    """What an alternative of a oneOf takes, in words: its names (`auto`), or its kinds."""
    if "enum" in option:
        names = [show_name(name) for name in option["enum"]]
        return names[0] if len(names) == 1 else f"one of {', '.join(names)}"
    return " or ".join(TYPE_NAMES[name] for name in as_list(option.get("type", [])))


def is_kind_error(sub: ValidationError) -> bool:
    """Whether a oneOf's error says that the value itself is not of its alternative's type."""
    return sub.validator == "type" and not sub.path


def unknown_key(key: str, known: list[str]) -> str:
    """An unknown key, with the known key it is likely a typo of, or else every known key."""
    return f"unknown key {key!r} ({close_name(key, known) or 'the keys: ' + ', '.join(known)})"


def close_name(name: str, names: list[str]) -> str:
    """`did you mean 'epochs'?` for a name close to one of `names`, else ''."""
    close = difflib.get_close_matches(name, names, n=1)
    return f"did you mean {close[0]!r}?" if close else ""


def key_path(path: Any) -> str:
    """`config: models.resnet34.image_size[0]:`, as the key is written in YAML; `config:` for the top."""
    text = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)
    return f"config: {text.lstrip('.')}:" if text else "config:"


def show(value: Any) -> str:
    """A value as short YAML-like text: strings quoted, true / false / null."""
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def show_name(name: Any) -> str:
    return "null" if name is None else str(name)
