"""config.yaml is checked against the JSON schema, which also fills in the defaults."""

import copy
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from facemask.check_cache import VERDICTS

from .conftest import demo_work_folder, snakemake

ROOT = Path(__file__).parents[1]
SCHEMA = str(ROOT / "workflow" / "schemas" / "config.schema.yaml")


@pytest.fixture
def config():
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def test_the_shipped_configs_are_valid_and_list_the_three_seed_models(config):
    validate(config, SCHEMA)
    assert [block["arch"] for block in config["models"].values()] == [
        "vit_small_r26_s32_224.augreg_in21k",
        "efficientnetv2_rw_t.ra2_in1k",
        "resnet34.a1_in1k",
    ]
    validate(
        yaml.safe_load((ROOT / "config" / "demo.yaml").read_text()) | {"models": {"m": {"arch": "resnet18"}}},
        SCHEMA,
    )


def test_defaults_are_filled_in_down_to_each_model_block():
    config = {"models": {"tiny": {"arch": "resnet18"}}}
    validate(config, SCHEMA)
    assert config["folds"] == {"k": 5, "seed": 42, "run": None}
    assert config["age_bins"] == [30, 60] and config["min_photo_side"] == 32
    assert config["models"]["tiny"]["optimizer"]["name"] == "adamw"
    assert config["models"]["tiny"]["augment"]["hflip"] == 0.5
    assert config["models"]["tiny"]["ensemble_weight"] == 1.0
    assert (config["device"], config["precision"], config["models"]["tiny"]["precision"]) == (
        "auto",
        "auto",
        None,
    )
    assert config["models"]["tiny"]["age_years"] == {"sigma": None, "weight": 0.5, "fit_cuts": False}  # off
    assert config["models"]["tiny"]["ema"] == {"decay": None, "warmup": True}  # off


def test_the_real_run_wants_the_gpu_and_the_demo_and_cpu_benchmarks_let_the_cpu_do():
    paths = [ROOT / "config" / "demo.yaml", *(ROOT / "config" / "benchmarks").glob("*.yaml")]
    configs = {path.stem: yaml.safe_load(path.read_text()) for path in paths}
    assert yaml.safe_load((ROOT / "config.yaml").read_text())["device"] == "cuda"
    assert configs["demo"]["device"] == "auto"
    assert all(
        config["device"] == "cpu"
        for name, config in configs.items()
        if name.startswith("utkmask") and not name.endswith("gpu")
    )


@pytest.mark.parametrize(
    ("change", "word"),
    [
        (lambda c: c.update(foldz=3), "foldz"),
        (lambda c: c["models"]["resnet34"].update(lr=0.1), "lr"),
        (lambda c: c["models"]["resnet34"]["optimizer"].update(lr=-1.0), "-1.0"),
        (lambda c: c["folds"].update(k=1), "1"),
        (lambda c: c["models"]["resnet34"].update(batch_size="big"), "big"),
        (lambda c: c["tta"].update(transforms=["Explode"]), "Explode"),
    ],
)
def test_a_typo_or_wrong_value_fails_at_load_naming_it(config, change, word):
    bad = copy.deepcopy(config)
    change(bad)
    with pytest.raises(WorkflowError, match=word):
        validate(bad, SCHEMA)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda c: c["models"]["resnet34"].update(arch="resnet_nope"),
            "not in timm's registry: resnet34 (resnet_nope)",
        ),
        (lambda c: c.update(age_bins=[60, 30]), "age_bins must be two increasing ages"),
        (lambda c: c["models"]["vit_small_r26"]["optimizer"].update(lr=-0.1), "-0.1"),
        (
            lambda c: c["models"]["resnet34"]["optimizer"].update(name="adamm"),
            "config: model resnet34: optimizer: timm cannot build",
        ),
        (
            lambda c: c["models"]["resnet34"]["scheduler"].update(name="cosinus"),
            "config: model resnet34: scheduler: timm cannot build",
        ),
        (lambda c: c["models"]["resnet34"]["optimizer"].update(betaz=[0.9, 0.99]), "betaz"),
        (
            lambda c: c["models"]["vit_small_r26"].update(batch_size=63),  # the seeds' Mixup / CutMix
            "config: model vit_small_r26: batch_size: Mixup / CutMix (mix) need an even batch, not 63",
        ),
    ],
)
def test_a_bad_config_stops_the_workflow_before_any_job_runs(config, tmp_path, change, message):
    change(config)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--cores", "1", "--dry-run"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert run.returncode != 0
    assert message in run.stdout + run.stderr
    assert "Job stats" not in run.stdout


def test_a_block_that_passed_is_not_checked_again_and_a_bad_one_stops_every_parse(tmp_path):
    for name, source in (("config.yaml", ROOT / "config.yaml"), ("demo.yaml", ROOT / "config" / "demo.yaml")):
        shutil.copy(source, tmp_path / name)
    verdicts = tmp_path / VERDICTS
    assert snakemake(tmp_path, "--dry-run", "submission").returncode == 0
    assert len(list(verdicts.iterdir())) == 3  # the demo's three blocks passed
    (tmp_path / "odd.yaml").write_text(
        yaml.safe_dump({"models": {"resnet34": {"batch_size": 15, "mix": {"prob": 0.5, "mixup_alpha": 1.0}}}})
    )
    for _ in range(2):
        run = snakemake(tmp_path, "--dry-run", "submission", configs=("demo.yaml", "odd.yaml"))
        message = "config: model resnet34: batch_size: Mixup / CutMix (mix) need an even batch, not 15"
        assert run.returncode != 0 and message in run.stdout + run.stderr
    assert len(list(verdicts.iterdir())) == 3


def schema_enums(schema: dict) -> dict[str, set]:
    """Every enum of the schema by the name of the property that holds it."""
    found = {}
    for key, value in schema.items() if isinstance(schema, dict) else enumerate(schema):
        if isinstance(value, dict) and "enum" in value:
            found.setdefault(key, set()).update(value["enum"])
        if isinstance(value, (dict, list)):
            for name, values in schema_enums(value).items():
                found.setdefault(name, set()).update(values)
    return found


def test_the_schema_allows_exactly_the_values_the_code_accepts():
    from facemask.fold_data import SAMPLERS
    from facemask.inference import TTA_MERGE_MODES, TTA_TRANSFORMS
    from facemask.losses import LOSSES
    from facemask.models import HEADS

    enums = schema_enums(yaml.safe_load(Path(SCHEMA).read_text()))
    assert enums["name"] == set(LOSSES)  # the loss terms' names
    assert enums["merge"] == set(TTA_MERGE_MODES)
    assert enums["propertyNames"] == enums[0] == set(TTA_TRANSFORMS)  # a transform by name, or with options
    assert enums["head"] == set(HEADS)
    assert enums["sampler"] == set(SAMPLERS)


def test_the_presets_add_their_models_to_a_run(tmp_path):
    run = snakemake(
        demo_work_folder(tmp_path),
        "--dry-run",
        "submission",
        configs=("demo.yaml", str(ROOT / "config" / "presets.yaml")),
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    presets = yaml.safe_load((ROOT / "config" / "presets.yaml").read_text())["models"]
    for name in presets:
        assert all(
            f"results/demo/train/{name}/fold{fold}/checkpoint.pt" in run.stdout for fold in range(3)
        ), name
    assert re.search(r"^train\s+(\d+)$", run.stdout, re.MULTILINE).group(1) == str(
        3 * (3 + len(presets))
    )  # 3 folds of every model
