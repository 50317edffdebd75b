"""Digests of the package code that a job runs, as Snakemake params (Snakemake does not track the
modules a script imports) and in a train job's resume fingerprint. A digest covers what the code
does (each module's syntax tree without docstrings), so a comment or docstring edit changes none."""

import ast
import functools
import hashlib
from pathlib import Path

PACKAGE = "facemask"


class _WithoutDocstrings(ast.NodeTransformer):
    """Drops every statement that is a bare string (docstrings): it computes nothing."""

    def visit_Expr(self, node: ast.Expr):
        return None if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str) else node


def parsed(path: Path) -> tuple[str, tuple[str, ...]]:
    """What the Python file at `path` does (its syntax tree without docstrings, comments or
    positions) and the names of the modules it imports; parsed once per version of the file, as a
    parse of the workflow digests many scripts that import the same modules."""
    status = path.stat()
    return _parsed(path.resolve(), status.st_mtime_ns, status.st_size)


@functools.cache
def _parsed(path: Path, mtime_ns: int, size: int) -> tuple[str, tuple[str, ...]]:
    """parsed(path), the file's date and size keying the cache. `from a.b import c` imports the
    module a.b and, where c is a module of the package a.b, a.b.c too."""
    tree = ast.parse(path.read_text())
    imported: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        imported += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
    return ast.dump(_WithoutDocstrings().visit(tree)), tuple(imported)


def package_modules(path: Path, source_dir: Path, seen: set[str] | None = None) -> set[str]:
    """The facemask modules under `source_dir` that the Python file `path` imports, directly or not."""
    seen = set() if seen is None else seen
    for name in parsed(path)[1]:
        source = module_file(name, source_dir)
        if name.split(".")[0] == PACKAGE and name not in seen and source.is_file():
            seen.add(name)
            package_modules(source, source_dir, seen)
    return seen


def module_file(name: str, source_dir: Path) -> Path:
    """The file of the module `name` (dotted) below `source_dir`: its .py file, or a package's
    __init__.py."""
    path = source_dir / Path(*name.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def code_digest(path: str | Path, source_dir: str | Path = Path(__file__).parents[2]) -> str:
    """A digest of what the Python file `path` and the package code it reaches do (the facemask
    modules it imports, followed transitively; see parsed)."""
    digest = hashlib.sha256(parsed(Path(path))[0].encode())
    for name in sorted(package_modules(Path(path), Path(source_dir))):
        digest.update(f"{name}\n{parsed(module_file(name, Path(source_dir)))[0]}\n".encode())
    return digest.hexdigest()[:16]
