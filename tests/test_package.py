"""The package tells the pipeline's story: its folders in the order of the pipeline, each importing
only from its own floor or those below; and the part-two size limits hold."""

import ast
import importlib
import re
from pathlib import Path

import pytest

from .conftest import ROOT

PACKAGE = ROOT / "src" / "facemask"
#: the package's folders from the bottom floor up: plumbing, the config, tracking, the 18 classes,
#: then the pipeline's stages in their order
FLOORS = ("utils", "config", "tracking", "classes", "data", "model", "train", "ensemble", "predict", "report")
#: the part-two limits: lines of a file, lines of a function, characters of a line
MAX_FILE_LINES, MAX_FUNCTION_LINES, MAX_LINE = 300, 50, 110


def floor_of(module: str) -> int:
    """The floor of a dotted facemask module (the package's own __init__, its face, is above them all)."""
    parts = module.split(".")
    return FLOORS.index(parts[1]) if len(parts) > 1 and parts[1] in FLOORS else len(FLOORS)


def package_imports(path: Path) -> set[str]:
    """The facemask modules that the file at `path` imports."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("facemask"):
            imported.add(node.module)
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names if alias.name.startswith("facemask")}
    return imported


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")


def test_every_module_lives_in_a_floor_of_the_story():
    loose = [p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
    assert not loose, f"modules outside the floors {FLOORS}: {loose}"
    folders = {path.name for path in PACKAGE.iterdir() if path.is_dir() and path.name != "__pycache__"}
    assert folders == set(FLOORS)


def test_no_module_imports_from_a_floor_above_its_own():
    upward = [
        f"{module_name(path)} imports {imported}"
        for path in PACKAGE.rglob("*.py")
        for imported in package_imports(path)
        if floor_of(imported) > floor_of(module_name(path))
    ]
    assert not upward


def python_files() -> list[Path]:
    """The package's modules and the jobs' scripts (not the benchmarks and tools of scripts/*/)."""
    return [*PACKAGE.rglob("*.py"), *(ROOT / "scripts").glob("*.py")]


@pytest.mark.parametrize("path", sorted(ROOT.glob("workflow/rules/*.smk")), ids=lambda path: path.name)
def test_rule_files_stay_short(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_FILE_LINES, f"{lines} lines"


@pytest.mark.parametrize("path", python_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_files_and_functions_stay_short(path):
    text = path.read_text()
    lines = len(text.splitlines())
    assert lines <= MAX_FILE_LINES, f"{lines} lines"
    long = [
        f"{node.name}: {node.end_lineno - node.lineno + 1} lines"  # type: ignore[operator]
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES  # type: ignore[operator]
    ]
    assert not long


def test_no_line_of_the_code_or_rules_is_too_long():
    files = [
        *(ROOT / "src").rglob("*.py"),
        *(ROOT / "scripts").rglob("*.py"),
        *(ROOT / "tests").rglob("*.py"),
    ]
    files += [ROOT / "Snakefile", *ROOT.glob("workflow/rules/*")]
    long = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in files
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if len(line) > MAX_LINE
    ]
    assert not long


def referenced_names(text: str) -> set[str]:
    """The dotted names in the package's folders that `text` mentions (facemask.utils.devices, ...;
    not MLflow's tags, facemask.arch and the like)."""
    names = re.findall(r"\bfacemask(?:\.[A-Za-z_]\w*)+", text)
    return {name for name in names if name.split(".")[1] in FLOORS}


def resolves(name: str) -> bool:
    """Whether the dotted `name` is a module of the package or a name in one."""
    parts = name.split(".")
    for end in range(len(parts), 1, -1):
        try:
            found = importlib.import_module(".".join(parts[:end]))
        except ImportError:
            continue
        for part in parts[end:]:
            found = getattr(found, part, None)
        return found is not None
    return False


def test_every_module_or_function_that_the_docs_scripts_and_rules_name_exists():
    """A module that moves leaves no reference behind (setup.sh once named facemask.devices)."""
    texts = [ROOT / "setup.sh", ROOT / "README.md", ROOT / "Snakefile", *ROOT.glob("docs/*.md")]
    texts += [
        *ROOT.glob("workflow/**/*.smk"),
        *ROOT.glob("workflow/**/*.yaml"),
        *ROOT.glob("scripts/**/*.py"),
    ]
    texts += [*PACKAGE.rglob("*.py"), *ROOT.glob("profiles/**/*.yaml"), *ROOT.glob("config/**/*.yaml")]
    missing = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in texts
        for name in sorted(referenced_names(path.read_text()))
        if not resolves(name)
    ]
    assert not missing
