"""Every `snakemake ...` and `facemask ...` command that README.md and docs/ show runs as written, in
a scratch copy of the repository with a tiny generated data set in place of the competition's:
each Snakemake command as a dry run (`-n` added; a real run of each is the demo's, the tiny run's or
another test's) in a copy without results, on either pytest-xdist worker; each `facemask` command
for real on the tiny run's ensemble. A command that cannot run here is listed in CANNOT_RUN with
the reason, and still goes through its program's own argument parser; a command the docs show as
failing (SHOWN_FAILING) must fail as they say."""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from facemask.train.passed_checks import PASSED_CHECKS

from .conftest import ROOT, SHARED_VERDICTS

#: the documents whose commands are checked: the README and every page of docs/
DOCUMENTS = ["README.md", *(f"docs/{page.name}" for page in sorted((ROOT / "docs").glob("*.md")))]
PROGRAMS = ("snakemake", "facemask")
#: commands (as written, spaces folded) that cannot run here, and why; each is still parsed
CANNOT_RUN = {
    "--report": "a report of a finished run (tests/test_workflow.py builds one from the tiny run)",
    "--sdm conda": "creates or uses conda environments: needs conda, which the tests do not install",
    "--logger rich": "needs the optional snakemake-logger-plugin-rich (docs/outputs.md); parsed without it",
    "config/benchmarks/": "needs the real-face data of ../shared/ (docs/benchmarks.md)",
    "../shared/": "needs the real-face data of ../shared/ (docs/benchmarks.md)",
    "results/pseudo": "needs a pseudo-label round (tests/test_pseudo_labels.py runs one)",
    "results/sweeps": "needs a finished sweep (tests/test_sweeps.py runs one)",
}
#: commands the docs show failing, and what Snakemake says then
SHOWN_FAILING = {
    "snakemake --cores 1 --resources gpu=1 submission": "dictionary update sequence",
    "snakemake --logger rich submission": "--logger",
}
#: a config of your own that the docs name and show just above, for the commands that give it
PLACEHOLDER_CONFIGS = {
    "my_recipe.yaml": "models:\n  resnet34: {epochs: 3}\n",
    "demo.yaml": (ROOT / "config/demo.yaml").read_text(),  # a test work folder's copy (docs/benchmarks.md)
}


def code_spans(text: str) -> list[str]:
    """The commands of a Markdown text: each line of a fenced code block (with its `\\`
    continuations), and each inline code span, spaces folded; `a && b` gives a and b."""
    commands = []
    fenced = re.findall(r"^```[^\n]*\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    for block in fenced:
        commands += [re.sub(r"\s+#.*$", "", line) for line in block.replace("\\\n", " ").splitlines()]
    prose = re.sub(r"^```[^\n]*\n.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    commands += re.findall(r"`([^`]+)`", prose)
    return [" ".join(part.split()) for command in commands for part in command.split("&&")]


def is_command(span: str) -> bool:
    """Whether a code span is a command of ours: it starts (after VAR=value settings and a
    `.venv/bin/`) with a program of PROGRAMS and is not the bare name of a `facemask` subcommand."""
    start = re.match(r"^(?:[A-Z_]+=\S+ )*(?:\.venv/bin/)?(\w+)", span)
    if not start or start[1] not in PROGRAMS:
        return False
    words = [word for word in shlex.split(span, comments=True) if not re.match(r"^[A-Z_]+=", word)]
    if not words or Path(words[0]).name not in PROGRAMS or words[0].startswith("-"):
        return False
    return len(words) > 1 and not (words[0] == "facemask" and len(words) == 2)


def documented_commands() -> list[tuple[str, str]]:
    """(document, command) of every command the documents show, each command once (in the first
    document that shows it)."""
    first: dict[str, str] = {}
    for document in DOCUMENTS:
        for span in code_spans((ROOT / document).read_text()):
            if is_command(span):
                first.setdefault(span, document)
    return sorted((document, command) for command, document in first.items())


COMMANDS = documented_commands()


def test_the_docs_show_the_commands_users_type():
    shown = {command for _, command in COMMANDS}
    assert len(shown) >= 25, shown
    readme = {command for document, command in COMMANDS if document == "README.md"}
    assert {"snakemake submission", "snakemake submission -n"} <= readme
    assert ".venv/bin/snakemake submission --cores 2 --configfile config/demo.yaml" in readme


def argv_of(command: str) -> tuple[dict, list[str]]:
    """The environment settings and the arguments of a command, its program as this venv's."""
    words = shlex.split(command, comments=True)
    env = {}
    while re.match(r"^[A-Z_]+=", words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    program = Path(words.pop(0)).name
    if program == "snakemake":
        return env, [sys.executable, "-m", "snakemake", *words]
    return env, [sys.executable, "-m", "facemask.predict.cli", *words]


def scratch_copy(root: Path, demo_dir: Path) -> Path:
    """`root` made a copy of the repository with the tiny generated data set as the competition's and
    the demo's, and the photos and configs the docs name."""
    ignored = shutil.ignore_patterns(
        ".venv", ".git", "results", "data", "weights", ".snakemake", "__pycache__", ".*_cache"
    )
    shutil.copytree(ROOT, root, ignore=ignored, dirs_exist_ok=True)
    for data in ("data/competition", "data/demo"):
        shutil.copytree(demo_dir, root / data)
    photos = sorted((demo_dir / "eval/images").iterdir())
    (root / "path/to/photos").mkdir(parents=True)
    for photo in photos[:3]:
        shutil.copy(photo, root / "path/to/photos" / photo.name)
    (root / "more").mkdir()
    shutil.copy(photos[3], root / "more/photo.jpg")
    for document in DOCUMENTS:  # a config the docs show as a YAML block headed `# <name>.yaml`
        for name, text in re.findall(
            r"```yaml\n# (\S+\.yaml)\n(.*?)```", (ROOT / document).read_text(), re.DOTALL
        ):
            (root / name).write_text(text)
    for name, text in PLACEHOLDER_CONFIGS.items():
        (root / name).write_text(text)
    if SHARED_VERDICTS:
        (root / PASSED_CHECKS).parent.mkdir(parents=True, exist_ok=True)
        (root / PASSED_CHECKS).symlink_to(SHARED_VERDICTS[0], target_is_directory=True)
    return root


@pytest.fixture(scope="module")
def scratch(tmp_path_factory, demo_dir):
    """A scratch copy of the repository without results, in which the Snakemake commands plan the
    whole run (one copy per pytest-xdist worker, so that the dry runs spread over both)."""
    return scratch_copy(tmp_path_factory.mktemp("repository"), demo_dir)


@pytest.fixture(scope="module")
def scratch_with_results(tmp_path_factory, tiny_run, demo_dir):
    """A scratch copy of the repository with the tiny run's results as `results/` (the default run's)
    and `results/demo`, for the `facemask` commands that read a bundle."""
    root = scratch_copy(tmp_path_factory.mktemp("repository_with_results"), demo_dir)
    for results in ("results", "results/demo"):
        shutil.copytree(tiny_run / "results/tiny", root / results, ignore=shutil.ignore_patterns("demo"))
    return root


def parses(root: Path, argv: list[str]) -> subprocess.CompletedProcess:
    """The program's own argument parser (Snakemake's: its targets, options and profiles) on a
    command's arguments."""
    parser = (
        "snakemake.cli import parse_args"
        if argv[2] == "snakemake"
        else "facemask.predict.cli import parse_arguments"
    )
    check = f"import sys; from {parser} as parse; parse(sys.argv[1:])"
    return subprocess.run(
        [sys.executable, "-c", check, *argv[3:]], cwd=root, capture_output=True, text=True, timeout=120
    )


def reason_it_cannot_run(command: str) -> str | None:
    return next((why for key, why in CANNOT_RUN.items() if key in command), None)


def run_as_written(root: Path, document: str, command: str) -> None:
    """Run a documented command in `root` as written (a Snakemake command as a dry run), or parse it
    when it cannot run here or is shown failing."""
    env, argv = argv_of(command)
    if command in SHOWN_FAILING:
        run = parses(root, argv)
        assert run.returncode != 0 and SHOWN_FAILING[command] in run.stderr, run.stderr[-2000:]
        return
    why = reason_it_cannot_run(command)
    if why:
        if "--logger rich" in command:  # the option of a plugin not installed is left out of the parse
            argv = [word for word in argv if word not in ("--logger", "rich")]
        run = parses(root, argv)
        assert run.returncode == 0, f"{command} ({why}): {run.stderr[-3000:]}"
        return
    if argv[2] == "snakemake":
        argv.insert(3, "-n")
    run = subprocess.run(argv, cwd=root, env=os.environ | env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"{document}: {command}\n{run.stdout[-2000:]}\n{run.stderr[-4000:]}"
    assert "Traceback" not in run.stderr, run.stderr[-3000:]


def commands_of(program: str) -> list:
    return [
        pytest.param(document, command, id=f"{document}: {command}")
        for document, command in COMMANDS
        if argv_of(command)[1][2] == program
    ]


@pytest.mark.workflow
@pytest.mark.parametrize(("document", "command"), commands_of("snakemake"))
def test_each_documented_snakemake_command_runs_as_written(scratch, document, command):
    run_as_written(scratch, document, command)


@pytest.mark.workflow
@pytest.mark.parametrize(("document", "command"), commands_of("facemask.predict.cli"))
def test_each_documented_facemask_command_runs_as_written(scratch_with_results, document, command):
    run_as_written(scratch_with_results, document, command)
