"""Digests of the package code that a job runs, as Snakemake params (Snakemake does not track the
modules a script imports) and in a train job's resume fingerprint. A digest covers what the code
does (each module's syntax tree without docstrings), so a comment or docstring edit changes none."""

import ast
import hashlib
from pathlib import Path

PACKAGE = "facemask"


class _WithoutDocstrings(ast.NodeTransformer):
    """Drops every statement that is a bare string (docstrings): it computes nothing."""

    def visit_Expr(self, node: ast.Expr):
        return None if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str) else node


def code_of(source: str) -> str:
    """What a Python source does: its syntax tree without docstrings, comments or positions."""
    return ast.dump(_WithoutDocstrings().visit(ast.parse(source)))


def package_modules(path: Path, source_dir: Path, seen: set[str] | None = None) -> set[str]:
    """The facemask modules under `source_dir` that the Python file `path` imports, directly or not."""
    seen = set() if seen is None else seen
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
        names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        for name in names:
            source = module_file(name, source_dir)
            if name.split(".")[0] == PACKAGE and name not in seen and source.is_file():
                seen.add(name)
                package_modules(source, source_dir, seen)
    return seen


def module_file(name: str, source_dir: Path) -> Path:
    """The file of the module `name` (dotted) below `source_dir`."""
    return source_dir / Path(*name.split(".")).with_suffix(".py")


def code_digest(path: str | Path, source_dir: str | Path = Path(__file__).parents[1]) -> str:
    """A digest of what the Python file `path` and the package code it reaches do (the facemask
    modules it imports, followed transitively; see code_of)."""
    digest = hashlib.sha256(code_of(Path(path).read_text()).encode())
    for name in sorted(package_modules(Path(path), Path(source_dir))):
        digest.update(f"{name}\n{code_of(module_file(name, Path(source_dir)).read_text())}\n".encode())
    return digest.hexdigest()[:16]
