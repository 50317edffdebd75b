"""docs/configuration.md's reference is what scripts/tools/config_reference.py writes from the config
schema, and it has a row for every key of the schema."""

import importlib.util

import yaml

from .conftest import ROOT

SPEC = importlib.util.spec_from_file_location("config_reference", ROOT / "scripts/tools/config_reference.py")
assert SPEC and SPEC.loader
REFERENCE = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(REFERENCE)
SCHEMA = yaml.safe_load(REFERENCE.SCHEMA.read_text())


def generated() -> str:
    return REFERENCE.reference(SCHEMA, yaml.safe_load(REFERENCE.CONFIG.read_text()))


def property_names(spec: dict, prefix: str = ""):
    """The dotted names of the properties under `spec`: in objects, their oneOf options and lists."""
    for part in [spec, *spec.get("oneOf", []), spec.get("items", {})]:
        for name, inner in part.get("properties", {}).items():
            yield prefix + name
            yield from property_names(inner, f"{prefix}{name}.")


def test_the_reference_in_the_doc_is_the_generated_one():
    doc = REFERENCE.DOC.read_text()
    assert REFERENCE.with_reference(doc, generated()) == doc, (
        "docs/configuration.md's configuration reference differs from the schema's: "
        "run .venv/bin/python scripts/tools/config_reference.py"
    )


def test_every_key_of_the_schema_has_a_row_in_its_table_in_the_doc():
    doc = REFERENCE.DOC.read_text()
    section = doc[doc.index(REFERENCE.BEGIN) : doc.index(REFERENCE.END)]
    global_keys, *defined = section.split("\n### ")
    tables = {"": global_keys} | dict(zip(REFERENCE.SECTIONS, defined, strict=True))
    specs = {"": SCHEMA} | {name: SCHEMA["$defs"][name] for name in REFERENCE.SECTIONS}
    keys = [(table, key) for table, spec in specs.items() for key in property_names(spec)]
    missing = [f"{table or 'global'}: {key}" for table, key in keys if f"\n| `{key}` |" not in tables[table]]
    assert not missing
    assert {table for table, _ in keys} == set(specs), "the walk found no keys in some table"
