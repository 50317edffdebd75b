"""The conda environments of the rules (envs/*.yaml) against the pip requirements, the one source
of the versions: conda-forge only, the same packages with the same version specs, and each rule in
an environment that has what its script imports."""

import ast
import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[1]
ENVS = sorted((ROOT / "envs").glob("*.yaml"))
CONDA_NAMES = {"torch": "pytorch", "matplotlib": "matplotlib-base"}  # pip name -> conda-forge name
# under the environment's `pip:`: ttach is not on conda-forge; conda-forge's opencv lacks cv2.data's
# Haar cascades
PIP_ONLY = {"ttach", "opencv-python-headless"}
#: the Snakemake process's and the developer's, not the jobs'
HOST_ONLY = {
    "snakemake",
    "snakemake-executor-plugin-slurm",
    "jsonschema",
    "pytest",
    "pytest-xdist",
    "filelock",
    "snakefmt",
    "ruff",
    "mypy",
}
TORCH = {"torch", "torchvision", "timm", "ttach"}


def requirement_specs(lines) -> dict[str, str]:
    """{package: version spec} of requirement lines such as `timm>=1.0,<2`."""
    specs = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if line:
            name, spec = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(.*)", line).groups()
            specs[name.lower()] = spec.replace(" ", "")
    return specs


def job_requirements() -> dict[str, str]:
    """What the jobs need: requirements.txt, and torch and torchvision from pyproject.toml
    (requirements.txt leaves them out, to be installed first for a CUDA version)."""
    specs = requirement_specs((ROOT / "requirements.txt").read_text().splitlines())
    project = requirement_specs(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    )
    specs |= {name: project[name] for name in ("torch", "torchvision")}
    return {name: spec for name, spec in specs.items() if name not in HOST_ONLY}


def env_specs(env: dict) -> dict[str, str]:
    """{pip name: version spec} of an environment's packages, conda-forge names turned to pip's."""
    pip_names = {conda: pip for pip, conda in CONDA_NAMES.items()}
    conda = [dependency for dependency in env["dependencies"] if isinstance(dependency, str)]
    pip = [
        line
        for dependency in env["dependencies"]
        if isinstance(dependency, dict)
        for line in dependency["pip"]
    ]
    specs = {pip_names.get(name, name): spec for name, spec in requirement_specs(conda).items()}
    pip_specs = requirement_specs(pip)
    assert set(pip_specs) <= PIP_ONLY, f"on conda-forge, not for pip: {set(pip_specs) - PIP_ONLY}"
    assert not set(specs) & PIP_ONLY, f"pip-only packages outside `pip:`: {set(specs) & PIP_ONLY}"
    return specs | pip_specs


def load_env(name: str) -> dict:
    return yaml.safe_load((ROOT / "envs" / name).read_text())


@pytest.mark.parametrize("path", ENVS, ids=[path.name for path in ENVS])
def test_each_environment_is_valid_yaml_from_conda_forge_only(path):
    env = yaml.safe_load(path.read_text())
    assert env["channels"] == ["conda-forge", "nodefaults"]
    assert "python=3.11" in env["dependencies"]
    assert path.with_name(path.stem + ".post-deploy.sh").is_file(), (
        "installs the package (src/facemask) into it"
    )


def test_the_gpu_environment_has_every_job_requirement_with_its_pip_version():
    specs = env_specs(load_env("gpu.yaml"))
    assert {name: specs.get(name) for name in job_requirements()} == job_requirements()


def test_the_cpu_environment_has_the_job_requirements_but_torch_with_their_pip_versions():
    specs = env_specs(load_env("cpu.yaml"))
    wanted = {name: spec for name, spec in job_requirements().items() if name not in TORCH}
    assert {name: specs.get(name) for name in wanted} == wanted
    assert not set(specs) & TORCH


def imported_modules(path: Path) -> set[str]:
    """The top-level modules a file imports and, for facemask modules, what they import in turn."""
    modules, queue, seen = set(), [path], set()
    while queue:
        tree = ast.parse(queue.pop().read_text())
        for node in ast.walk(tree):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                modules.add(name.split(".")[0])
                source = ROOT / "src" / Path(*name.split(".")).with_suffix(".py")
                if name.startswith("facemask") and source.is_file() and source not in seen:
                    seen.add(source)
                    queue.append(source)
    return modules


def rule_environments() -> dict[str, tuple[str, str]]:
    """{rule: (its conda environment file, its script)} of every rule in workflow/rules."""
    rules = {}
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        for rule, body in re.findall(
            r"^(?:rule|checkpoint) (\w+):\n((?:(?:    .*)?\n)+)", smk.read_text() + "\n", re.MULTILINE
        ):
            conda = re.search(r'conda:\n\s+"\.\./\.\./envs/([\w.]+)"', body)
            script = re.search(r'script:\n\s+"\.\./\.\./scripts/([\w.]+)"', body)
            rules[rule] = (conda and conda[1], script and script[1])
    return rules


def test_each_rule_runs_in_an_environment_with_what_its_script_imports():
    rules = rule_environments()
    assert len(rules) >= 11, rules
    for rule, (env, script) in rules.items():
        assert env in {"cpu.yaml", "gpu.yaml"} and script, f"rule {rule}: conda {env}, script {script}"
        needs_torch = bool(
            imported_modules(ROOT / "scripts" / script) & {"torch", "timm", "ttach", "torchvision"}
        )
        assert (env == "gpu.yaml") == needs_torch, (
            f"rule {rule} ({script}) imports torch: {needs_torch}, runs in {env}"
        )


def test_the_face_finder_runs_where_mtcnn_is_installed():
    assert rule_environments()["find_faces"][0] == "gpu.yaml"
    assert "facenet-pytorch" in (ROOT / "envs/gpu.post-deploy.sh").read_text()
