"""config.yaml is checked against the JSON schema, which also fills in the defaults."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from facemask.config.schema import check_config, validated
from facemask.train.passed_checks import PASSED_CHECKS
from facemask.utils.errors import ConfigError

from .conftest import demo_work_folder, snakemake

ROOT = Path(__file__).parents[1]
SCHEMA = str(ROOT / "workflow" / "schemas" / "config.schema.yaml")


@pytest.fixture
def config():
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def test_the_shipped_configs_are_valid_and_list_the_three_seed_models(config):
    check_config(config, SCHEMA)
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


def resnet34(config: dict) -> dict:
    return config["models"]["resnet34"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.update(foldz=3), "config: unknown key 'foldz' (did you mean 'folds'?)"),
        (
            lambda c: resnet34(c).update(epoch=2),
            "config: models.resnet34: unknown key 'epoch' (did you mean 'epochs'?)",
        ),
        (
            lambda c: resnet34(c).update(lr=0.1),
            "config: models.resnet34: unknown key 'lr' (the keys: arch, pretrained,",
        ),
        (
            lambda c: resnet34(c).update(image_size=[0, 64]),
            "config: models.resnet34.image_size[0]: 0 is below the minimum 16",
        ),
        (
            lambda c: resnet34(c).update(head="singel"),
            "config: models.resnet34.head: 'singel' is not one of single, multi",
        ),
        (
            lambda c: resnet34(c).update(batch_size="big"),
            "config: models.resnet34.batch_size: 'big' is not an integer",
        ),
        (
            lambda c: resnet34(c)["optimizer"].update(lr=-1.0),
            "config: models.resnet34.optimizer.lr: -1.0 must be above 0",
        ),
        (lambda c: c["folds"].update(k=1), "config: folds.k: 1 is below the minimum 2"),
        (
            lambda c: c["tta"].update(transforms=["HorizontalFlip", "Explode"]),
            "config: tta.transforms[1]: 'Explode' is not one of HorizontalFlip, VerticalFlip,",
        ),
        (
            lambda c: c["tta"].update(transforms=[{"Flip": {}}]),
            "config: tta.transforms[0]: 'Flip' is not one of HorizontalFlip, VerticalFlip,",
        ),
        (
            lambda c: c.update(tracking={"experimnt": "x"}),
            "config: tracking: unknown key 'experimnt' (did you mean 'experiment'?)",
        ),
        (
            lambda c: resnet34(c).update(loss=[{"name": "focall"}]),
            "config: models.resnet34.loss[0].name: 'focall' is not one of cross_entropy, focal, f1",
        ),
        (lambda c: resnet34(c).pop("arch"), "config: models.resnet34: missing key 'arch'"),
        (
            lambda c: resnet34(c).update(epochs="2.5e0"),
            "config: models.resnet34.epochs: '2.5e0' is not an integer",
        ),
    ],
)
def test_a_typo_or_wrong_value_fails_at_load_naming_its_key_path(config, change, message):
    change(config)
    with pytest.raises(ConfigError) as error:
        check_config(config, SCHEMA)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_every_mistake_is_told_on_a_line_of_its_own_sorted_by_key_path(config):
    resnet34(config).update(epoch=2, head="singel")
    config["folds"]["k"] = 1
    with pytest.raises(ConfigError) as error:
        check_config(config, SCHEMA)
    assert [line.split(": ")[1] for line in str(error.value).splitlines()] == [
        "folds.k",
        "models.resnet34",
        "models.resnet34.head",
    ]


def test_a_learning_rate_written_1e_3_is_the_number_0_001():
    """YAML 1.1 (PyYAML, Snakemake) reads a number with an exponent but no dot as a string."""
    config = yaml.safe_load("models: {m: {arch: resnet18, optimizer: {lr: 1e-3}}}")
    assert config["models"]["m"]["optimizer"]["lr"] == "1e-3"
    check_config(config, SCHEMA)
    assert config["models"]["m"]["optimizer"]["lr"] == 0.001


@pytest.mark.parametrize(
    ("setting", "value"),
    [("tracking=false", False), ("tracking=True", True), ("ensemble.fit_weights=true", True)],
)
def test_a_boolean_from_the_command_line_is_a_boolean(setting, value):
    """Snakemake's --config key=value gives `false` as a string."""
    key, written = setting.split("=")
    config = {"models": {"m": {"arch": "resnet18"}}}
    section, _, name = key.rpartition(".")
    (config.setdefault(section, {}) if section else config)[name] = written
    check_config(config, SCHEMA)
    assert (config[section] if section else config)[name] is value


def test_a_null_from_the_command_line_is_none_where_the_schema_allows_it():
    """Snakemake's --config 'pseudo_labels={models: null}' gives `null` as a string."""
    config = {"models": {"m": {"arch": "resnet18", "ema": {"decay": "null"}}}}
    config |= {"pseudo_labels": {"models": "null"}, "run_models": "~"}
    check_config(config, SCHEMA)
    assert config["pseudo_labels"]["models"] is None and config["run_models"] is None
    assert config["models"]["m"]["ema"]["decay"] is None
    named = {"models": {"m": {"arch": "null"}}}  # a string where the schema wants one
    check_config(named, SCHEMA)
    assert named["models"]["m"]["arch"] == "null"


@pytest.mark.parametrize(
    ("key", "written", "value"),
    [
        ("optimizer", {"weight_decay": "5E-4"}, {"weight_decay": 5e-4}),
        ("scheduler", {"warmup_epochs": ".5e1", "min_lr": "+1e-6"}, {"warmup_epochs": 5.0, "min_lr": 1e-6}),
        ("ema", {"decay": "9.99e-1"}, {"decay": 0.999}),  # a number or null
        ("augment", {"scale": ["8e-1", 1]}, {"scale": [0.8, 1]}),
        ("epochs", "1e1", 10),  # a whole number: an integer, as the code wants it
        ("batch_size", 64.0, 64),
        ("pretrained", "1e-3", "1e-3"),  # true, false or a weights file: a string stays one
        ("model_kwargs", {"drop_rate": "1e-1"}, {"drop_rate": "1e-1"}),  # the schema says nothing there
    ],
)
def test_numbers_in_scientific_notation_are_numbers_where_the_schema_wants_one(key, written, value):
    config = {"models": {"m": {"arch": "resnet18", key: written}}}
    check_config(config, SCHEMA)
    assert config["models"]["m"][key] == value
    assert type(config["models"]["m"][key]) is type(value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda c: c["models"]["resnet34"].update(arch="resnet_nope"),
            "config: models.resnet34.arch: 'resnet_nope' is not in timm's registry",
        ),
        (lambda c: c.update(age_bins=[60, 30]), "config: age_bins: [60, 30] must be two increasing ages"),
        (
            lambda c: c["models"]["vit_small_r26"]["optimizer"].update(lr=-0.1),
            "config: models.vit_small_r26.optimizer.lr: -0.1 must be above 0",
        ),
        (
            lambda c: c["models"]["resnet34"]["optimizer"].update(name="adamm"),
            "config: models.resnet34.optimizer: timm cannot build",
        ),
        (
            lambda c: c["models"]["resnet34"]["scheduler"].update(name="cosinus"),
            "config: models.resnet34.scheduler: timm cannot build",
        ),
        (lambda c: c["models"]["resnet34"]["optimizer"].update(betaz=[0.9, 0.99]), "betaz"),
        (
            lambda c: c["models"]["vit_small_r26"].update(batch_size=63),  # the seeds' Mixup / CutMix
            "config: models.vit_small_r26.batch_size: Mixup / CutMix (mix) need an even batch, not 63",
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
    verdicts = tmp_path / PASSED_CHECKS
    assert snakemake(tmp_path, "--dry-run", "submission").returncode == 0
    assert len(list(verdicts.iterdir())) == 3  # the demo's three blocks passed
    (tmp_path / "odd.yaml").write_text(
        yaml.safe_dump({"models": {"resnet34": {"batch_size": 15, "mix": {"prob": 0.5, "mixup_alpha": 1.0}}}})
    )
    for _ in range(2):
        run = snakemake(tmp_path, "--dry-run", "submission", configs=("demo.yaml", "odd.yaml"))
        message = "config: models.resnet34.batch_size: Mixup / CutMix (mix) need an even batch, not 15"
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
    from facemask.model.heads import HEADS
    from facemask.model.inference import TTA_MERGE_MODES, TTA_TRANSFORMS
    from facemask.model.losses import LOSSES
    from facemask.train.job import SAMPLERS

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
            f"results/demo/train/{name}/fold{fold}/checkpoint.pt" in run.stdout for fold in range(2)
        ), name
    assert re.search(r"^train\s+(\d+)$", run.stdout, re.MULTILINE).group(1) == str(
        2 * (3 + len(presets))
    )  # the demo's 2 folds of every model


def test_a_learning_rate_written_1e_3_runs_and_a_misspelt_key_stops_the_run_naming_its_path(tmp_path):
    workdir = demo_work_folder(tmp_path)
    (workdir / "typo.yaml").write_text("models: {resnet34: {epoch: 2}}\n")
    (workdir / "lr.yaml").write_text(
        "models: {efficientnetv2_rw_t: {optimizer: {lr: 1e-3}}}\n"
    )  # the demo's lr
    typo = snakemake(workdir, "--dry-run", "submission", configs=("demo.yaml", "typo.yaml"), timeout=120)
    assert typo.returncode != 0
    assert (
        "config: models.resnet34: unknown key 'epoch' (did you mean 'epochs'?)" in typo.stdout + typo.stderr
    )
    run = snakemake(workdir, "--dry-run", "submission", configs=("demo.yaml", "lr.yaml"), timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]


def test_the_schema_is_the_one_source_of_defaults():
    """What the code falls back on where no config reaches it (a block built in code, the age cuts
    of a function called alone, the experiment of `tracking: true`) is what the schema fills in."""
    from facemask.classes.labels import DEFAULT_AGE_BINS
    from facemask.config.blocks import ModelBlock
    from facemask.config.sections import Tracking
    from facemask.config.settings import Settings
    from facemask.tracking.store import DEFAULT_EXPERIMENT

    config = validated({"models": {"m": {"arch": "resnet18"}}})
    assert ModelBlock.from_config(config["models"]["m"]) == ModelBlock(arch="resnet18")
    assert list(DEFAULT_AGE_BINS) == config["age_bins"]
    assert config["tracking"]["experiment"] == DEFAULT_EXPERIMENT
    settings = Settings.from_config(config)
    assert settings.tracking == Tracking(True, None, DEFAULT_EXPERIMENT)
    assert (settings.folds.chosen, settings.chosen_models) == ([0, 1, 2, 3, 4], ["m"])


def test_the_typed_settings_cover_every_top_level_key_and_give_the_rules_plain_data():
    import dataclasses

    from facemask.config.settings import Settings
    from facemask.config.typed import as_config

    schema = yaml.safe_load(Path(SCHEMA).read_text())
    fields = {field.name for field in dataclasses.fields(Settings)}
    assert set(schema["properties"]) <= fields
    config = validated(yaml.safe_load((ROOT / "config.yaml").read_text()))
    settings = Settings.from_config(config)
    assert as_config(settings.tta) == config["tta"] and as_config(settings.folds) == config["folds"]
    assert settings.models["resnet34"].optimizer["lr"] == 1e-4  # written 1e-4 in config.yaml
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.tta.merge = "gmean"  # type: ignore[misc]


def test_the_flat_crop_keys_of_earlier_versions_read_as_the_crop_block_with_a_warning(caplog):
    config = validated(
        {"models": {"m": {"arch": "resnet18"}}, "cache": {"face_crop": "true", "face_scale": 1.5}}
    )
    assert config["cache"]["crop"] == {"kind": "face", "scale": 1.5, "detector": "mtcnn"}
    assert "cache.face_crop, face_scale: read as cache.crop" in caplog.text
    config = {"models": {"m": {"arch": "resnet18"}}, "cache": {"crop": {"kind": "face"}, "face_crop": False}}
    assert validated(config)["cache"]["crop"]["kind"] == "whole"
    with pytest.raises(
        ConfigError, match="face_crop and centre_crop are both true: choose one cache.crop.kind"
    ):
        validated({"models": {"m": {"arch": "resnet18"}}, "cache": {"face_crop": True, "centre_crop": True}})


def test_a_crop_is_keyed_by_what_its_pixels_depend_on():
    from facemask.config.sections import Crop

    assert Crop("whole", 1.5, "haar").pixel_form == Crop("whole") == Crop("whole", None, None)
    assert Crop("centre", 1.5, "mtcnn").pixel_form == Crop("centre")
    assert Crop("face", 1.5, "haar").pixel_form == Crop("face", 1.5, "haar")
    assert Crop("face", 1.3, "mtcnn").runs_torch and not Crop("face", 1.3, "haar").runs_torch
    with pytest.raises(ConfigError, match="a face crop needs its scale and detector"):
        Crop("face")


def test_a_default_read_from_the_schema_is_the_one_its_check_fills_in():
    from facemask.config.defaults import schema_default

    config = validated({"models": {"m": {"arch": "resnet18"}}, "pseudo_labels": {}})
    block = config["models"]["m"]
    for key in ("optimizer", "scheduler", "loss", "mix", "augment", "epochs", "image_size"):
        assert schema_default(f"models.*.{key}") == block[key], key
    assert schema_default("pseudo_labels.threshold") == config["pseudo_labels"]["threshold"]
    assert (
        schema_default("cache.crop")
        == config["cache"]["crop"]
        == {"kind": "whole", "scale": 1.3, "detector": "mtcnn"}
    )
