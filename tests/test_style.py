"""The code keeps the project's style and types: ruff's lint and format, mypy on the package,
snakefmt on the rule files (the same checks as .pre-commit-config.yaml)."""

import subprocess
import sys

import pytest

from .conftest import ROOT


@pytest.mark.parametrize(
    "check",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["mypy"],
        ["snakefmt", "--check", "Snakefile", "workflow/rules"],
    ],
    ids=["ruff check", "ruff format", "mypy", "snakefmt"],
)
def test_the_code_passes_the_style_and_type_checks(check):
    run = subprocess.run([sys.executable, "-m", *check], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-2000:]
