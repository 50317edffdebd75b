"""The package tells the pipeline's story: its folders in the order of the pipeline, each importing
only from its own floor or those below; and the part-two size limits hold."""

import ast
import importlib
import io
import re
import tokenize
from collections import Counter
from pathlib import Path

import pytest
import yaml

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


def layout_lines() -> list[str]:
    """The lines of the map of files in docs/code.md (its fenced Layout block)."""
    text = (ROOT / "docs" / "code.md").read_text()
    return re.search(r"## Layout\n+```\n(.*?)^```", text, re.MULTILINE | re.DOTALL)[1].splitlines()


def outside_parentheses(text: str) -> str:
    """`text` less what stands inside its (possibly nested) parentheses."""
    depth, outside = 0, []
    for char in text:
        depth += char == "("
        outside.append(char if depth == 0 else "")
        depth -= char == ")"
    return "".join(outside)


def listed_names(listing: str) -> set[str]:
    """The names of a map line's listing, `a (what a holds), b, c and d (...)`: its words outside
    parentheses, split at commas and "and"."""
    return {name for part in re.split(r",| and ", outside_parentheses(listing)) if (name := part.strip())}


def mapped(lines: list[str], folder: str) -> set[str]:
    """The names that the map's line of `folder` (`utils/`, `workflow/rules/*.smk`) lists, after
    any heading of the listing (`MLflow: `)."""
    listing = next(line.split(maxsplit=1)[1] for line in lines if line.split()[:1] == [folder])
    return listed_names(re.sub(r"^[^(,]*?: ", "", listing))


def test_the_code_map_names_every_module_and_rule_file_and_nothing_else():
    """docs/code.md's map cannot drift: each package folder's line lists exactly its modules, the
    rules' line exactly the rule files, and every path it names exists."""
    lines = layout_lines()
    for floor in FLOORS:
        modules = {path.stem for path in (PACKAGE / floor).glob("*.py") if path.stem != "__init__"}
        assert mapped(lines, f"{floor}/") == modules, floor
    assert mapped(lines, "workflow/rules/*.smk") == {path.stem for path in ROOT.glob("workflow/rules/*.smk")}
    named = 0
    for line in lines:  # an indented line is a package folder's; a name may be under the line's first
        base = PACKAGE if line.startswith(" ") else ROOT
        words = [word.rstrip(",;:") for word in outside_parentheses(line).split()]
        for path in [word for word in words if re.fullmatch(r"[\w.*]+(/[\w.*]*)+", word)]:
            named += 1
            assert any(
                (folder / path).exists() or list(folder.glob(path)) for folder in (base, base / words[0])
            ), path
    assert named > 20


def top_level_definitions():
    """(module path, node) of each top-level statement of the package's modules."""
    for path in PACKAGE.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            yield path, node


def package_names() -> tuple[dict[str, set[str]], set[str]]:
    """{a top-level function, class or CONSTANT of the package: the leaf names of the modules that
    define it}, and the names of the package's methods and class fields."""
    defined: dict[str, set[str]] = {}
    members = set()
    for path, node in top_level_definitions():
        names = [node.name] if isinstance(node, ast.FunctionDef | ast.ClassDef) else []
        if isinstance(node, ast.Assign):
            names = [target.id for target in node.targets if isinstance(target, ast.Name)]
        for name in names:
            if not isinstance(node, ast.Assign) or name.isupper():
                defined.setdefault(name, set()).add(path.stem)
        if isinstance(node, ast.ClassDef):
            members |= {sub.name for sub in ast.walk(node) if isinstance(sub, ast.FunctionDef)}
            members |= {
                sub.target.id
                for sub in ast.walk(node)
                if isinstance(sub, ast.AnnAssign) and isinstance(sub.target, ast.Name)
            }
    return defined, members


def prose_of(path: Path) -> str:
    """The docs' text; the comments and strings of code and rule files."""
    text = path.read_text()
    if path.suffix == ".py":
        tokens = tokenize.generate_tokens(io.StringIO(text).readline)
        return "\n".join(
            token.string for token in tokens if token.type in (tokenize.COMMENT, tokenize.STRING)
        )
    if path.suffix in (".smk", "") and path.name != "README.md":
        return "\n".join(
            re.findall(r"#.*$", text, re.MULTILINE) + re.findall(r'"""(.*?)"""', text, re.DOTALL)
        )
    return text


def test_the_short_dotted_names_of_docs_and_comments_name_where_the_thing_lives():
    """`module.name` in docs and comments, where `name` is a function, class or constant of the
    package and no method, field or config key, names a module that defines it (this file's own
    examples aside): a name that moved to another module leaves no reference behind."""
    defined, members = package_names()
    keys = set(re.findall(r"^\s*(\w+):", (ROOT / "workflow/schemas/config.schema.yaml").read_text(), re.M))
    texts = [ROOT / "README.md", ROOT / "Snakefile", *ROOT.glob("docs/*.md"), *ROOT.glob("workflow/**/*.smk")]
    texts += [*ROOT.glob("scripts/**/*.py"), *PACKAGE.rglob("*.py")]
    texts += [path for path in ROOT.glob("tests/*.py") if path.name != Path(__file__).name]
    stale = sorted(
        f"{path.relative_to(ROOT)}: {module}.{name}"
        for path in texts
        for module, name in set(re.findall(r"(?<![\w./-])([a-z_]\w*)\.([A-Za-z_]\w*)\b", prose_of(path)))
        if name in defined and name not in members | keys and module not in defined[name] | {"facemask"}
    )
    assert not stale


def test_every_function_and_class_of_the_package_has_a_caller_outside_the_tests():
    """No dead code: each top-level function and class of the package, and each method of its
    classes (dunders and ast visitors aside), is named somewhere in the package, the scripts, the
    rules or the profiles besides its definition."""
    code = [*PACKAGE.rglob("*.py"), *ROOT.glob("scripts/**/*.py"), *ROOT.glob("workflow/**/*.smk")]
    code += [ROOT / "Snakefile", *ROOT.glob("profiles/**/*.yaml")]
    uses = Counter(word for path in code for word in re.findall(r"\w+", path.read_text()))
    defined = []
    for _, node in top_level_definitions():
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            defined.append(node.name)
        if isinstance(node, ast.ClassDef):
            defined += [sub.name for sub in node.body if isinstance(sub, ast.FunctionDef)]
    callers_missing = [name for name in defined if uses[name] < 2 and not name.startswith(("__", "visit_"))]
    assert not callers_missing


def schema_defaults(schema) -> set[tuple[str, object]]:
    """(key, default) of every key of the config schema with a default that is a string or number."""
    found = set()
    if isinstance(schema, dict):
        for key, sub in (schema.get("properties") or {}).items():
            default = sub.get("default") if isinstance(sub, dict) else None
            if isinstance(default, str | int | float) and not isinstance(default, bool):
                found.add((key, default))
        for sub in schema.values():
            found |= schema_defaults(sub)
    elif isinstance(schema, list):
        found = set().union(*(schema_defaults(sub) for sub in schema))
    return found


def literal_defaults(tree: ast.AST):
    """(name, literal) of each default of `tree`: a parameter's or a class field's, and a mapping's
    `.get("name", literal)`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            arguments = node.args.posonlyargs + node.args.args
            pairs = list(zip(reversed(arguments), reversed(node.args.defaults), strict=False))
            pairs += list(zip(node.args.kwonlyargs, node.args.kw_defaults, strict=True))
            # a parameter `seed` seeds a function's own random draws (a bootstrap's), not the config's
            yield from ((arg.arg, value) for arg, value in pairs if value is not None and arg.arg != "seed")
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            yield node.target.id, node.value
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "get" and len(node.args) == 2:
            yield getattr(node.args[0], "value", None), node.args[1]


def test_no_default_of_the_schema_is_copied_into_the_code():
    """Every default of the config is declared once, in the schema: no parameter, class field or
    `.get(key, ...)` of the package or the scripts named as a config key defaults to its value."""
    defaults = schema_defaults(yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text()))
    code = [*PACKAGE.rglob("*.py"), *ROOT.glob("scripts/**/*.py")]
    copies = sorted(
        f"{path.relative_to(ROOT)}: {name} = {value.value!r}"
        for path in code
        for name, value in literal_defaults(ast.parse(path.read_text()))
        if isinstance(value, ast.Constant) and not isinstance(value.value, bool)
        if (name, value.value) in defaults
    )
    assert len(defaults) > 30
    assert not copies, "\n".join(copies)
