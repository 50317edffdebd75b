"""Sweeps (config sweeps): the expansion of a grid and of draws into stably named model blocks, the
load-time errors naming the sweep, the ranking with person-bootstrap intervals, and a sweep run
end to end with successive halving, rebuilding only new points."""

import json
import math
import re
import sqlite3

import numpy as np
import pandas as pd
import pytest
import yaml

from facemask.classes.labels import LOGIT_COLUMNS
from facemask.config.consistency import checked_settings
from facemask.config.schema import validated
from facemask.config.settings import Settings
from facemask.config.sweeps import differences, draw_points, grid_points, variant_name
from facemask.predict.cli import main as facemask_main
from facemask.report.sweeps import sweep_ranking
from facemask.tracking.store import TrackingTarget
from facemask.tracking.sweeps import log_sweep
from facemask.utils.errors import ConfigError

from .conftest import ROOT, demo_work_folder, snakemake
from .test_workflow import planned_jobs


def config_with(sweep: dict) -> dict:
    """config.yaml's settings with one sweep `lr`, validated."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    return validated(config | {"sweeps": {"lr": sweep}})


def test_a_grid_is_every_combination_named_by_its_settings_whatever_their_order():
    points = grid_points({"optimizer.lr": [1e-3, 3e-3], "image_size": [[112, 112], [160, 160], [224, 224]]})
    assert len(points) == 6 and len({json.dumps(p, sort_keys=True) for p in points}) == 6
    reordered = grid_points(
        {"image_size": [[224, 224], [112, 112], [160, 160]], "optimizer.lr": [3e-3, 1e-3]}
    )
    assert {variant_name("lr", p) for p in points} == {variant_name("lr", p) for p in reordered}
    more = grid_points(
        {"optimizer.lr": [1e-3, 3e-3, 1e-2], "image_size": [[112, 112], [160, 160], [224, 224]]}
    )
    assert {variant_name("lr", p) for p in points} < {variant_name("lr", p) for p in more}


def test_draws_are_seeded_in_range_and_more_draws_keep_the_earlier_ones():
    ranges = {"optimizer.lr": {"log_uniform": [1e-4, 1e-2]}, "mix.prob": {"uniform": [0.0, 1.0]}}
    ranges |= {"epochs": {"int_uniform": [2, 4]}, "loss": {"choice": ["a", "b"]}, "bins": {"choice": [None]}}
    five = draw_points({"count": 5, "seed": 3, "ranges": ranges})
    assert draw_points({"count": 8, "seed": 3, "ranges": ranges})[:5] == five
    assert draw_points({"count": 5, "seed": 4, "ranges": ranges}) != five
    for point in draw_points({"count": 200, "seed": 0, "ranges": ranges}):
        assert 1e-4 <= point["optimizer.lr"] <= 1e-2 and 0 <= point["mix.prob"] <= 1
        assert point["epochs"] in (2, 3, 4) and point["loss"] in ("a", "b") and point["bins"] is None
    lrs = [p["optimizer.lr"] for p in draw_points({"count": 400, "seed": 0, "ranges": ranges})]
    assert 0.4 < np.mean(np.log10(lrs) < -3) < 0.6  # log-uniform: half the draws below the middle decade


def test_a_sweeps_variants_are_blocks_of_their_own_not_voted_each_its_base_with_its_settings():
    config = config_with(
        {"base": "resnet34", "grid": {"optimizer.lr": [1e-3, 3e-3]}, "halving": {"budgets": [0.3]}}
    )
    settings = Settings.from_config(config)
    sweep = settings.sweeps["lr"]
    assert settings.chosen_models == ["vit_small_r26", "efficientnetv2_rw_t", "resnet34"]
    assert len(sweep.variants) == 2 and len(sweep.blocks) == 4
    for variant, point in sweep.variants.items():
        block, base = settings.models[variant], settings.models["resnet34"]
        assert block.optimizer["lr"] == point["optimizer.lr"] and block.arch == base.arch
        assert block.epochs == base.epochs
        assert settings.models[sweep.rung_block(variant, 0)].epochs == math.ceil(base.epochs * 0.3)
    assert settings.sweep_of(sweep.rung_block(next(iter(sweep.variants)), 0)) is sweep
    config["sweeps"]["again"] = {"base": "resnet34", "grid": {"optimizer.lr": [3e-3, 1e-2]}}
    again = Settings.from_config(config).sweeps["again"]
    assert len(set(again.variants) & set(sweep.variants)) == 1  # the shared point is one block


def test_joined_keys_move_together_and_a_number_steps_into_a_list():
    pairs = [[[96, 96], 4], [[112, 112], 3]]
    sweep = {"base": "resnet34", "grid": {"image_size, epochs": pairs, "loss.0.label_smoothing": [0.0]}}
    settings = Settings.from_config(config_with(sweep))
    blocks = [settings.models[variant] for variant in settings.sweeps["lr"].variants]
    assert sorted((block.image_size, block.epochs) for block in blocks) == [((96, 96), 4), ((112, 112), 3)]
    assert all(block.loss[0]["label_smoothing"] == 0.0 for block in blocks)
    base = settings.models["resnet34"]
    assert all(block.loss[1:] == base.loss[1:] and block.optimizer == base.optimizer for block in blocks)
    separate = {"image_size": [[96, 96]], "epochs": [4], "loss.0.label_smoothing": [0.0]}
    assert variant_name("resnet34", grid_points(separate)[0]) in settings.sweeps["lr"].variants
    drawn = {"count": 3, "ranges": {"image_size, epochs": {"choice": pairs}}}
    drawn_settings = Settings.from_config(config_with({"base": "resnet34", "draws": drawn}))
    drawn_blocks = [drawn_settings.models[variant] for variant in drawn_settings.sweeps["lr"].variants]
    assert {(block.image_size, block.epochs) for block in drawn_blocks} <= {((96, 96), 4), ((112, 112), 3)}


def test_adopting_says_how_a_winner_differs_entry_by_entry_in_a_list():
    base = {"loss": [{"name": "cross_entropy", "label_smoothing": 0.1}, {"name": "f1"}], "epochs": 3}
    winner = {"loss": [{"name": "cross_entropy", "label_smoothing": 0.0}, {"name": "f1"}], "epochs": 3}
    assert differences(base, winner) == ["loss.0.label_smoothing: 0.1 -> 0.0"]


@pytest.mark.parametrize(
    ("sweep", "message"),
    [
        (
            {"base": "resnet99", "grid": {"epochs": [1]}},
            "config: sweeps.lr.base: 'resnet99' is not a model block",
        ),
        ({"base": "resnet34", "grid": {"batch_size": [0]}}, "config: sweeps.lr: variant resnet34-"),
        ({"base": "resnet34", "grid": {"epochz": [3]}}, "unknown key 'epochz' (did you mean 'epochs'?)"),
        (
            {"base": "resnet34", "grid": {"epochs.x": [3]}},
            "config: sweeps.lr: epochs.x: epochs is not a group",
        ),
        ({"base": "resnet34", "grid": {}}, "config: sweeps.lr.grid:"),
        (
            {"base": "resnet34", "grid": {"loss.7.label_smoothing": [0.0]}},
            "config: sweeps.lr: loss.7.label_smoothing: 7 is not an index of a list of",
        ),
        (
            {"base": "resnet34", "grid": {"image_size, epochs": [[[96, 96]]]}},
            "config: sweeps.lr: image_size, epochs: [[96, 96]] is not a list of 2 values, one per key",
        ),
        ({"base": "resnet34"}, "config: sweeps.lr: no variants: give a grid or draws"),
    ],
)
def test_a_bad_sweep_is_one_config_error_naming_the_sweep_and_the_key(sweep, message):
    with pytest.raises(ConfigError) as error:
        Settings.from_config(config_with(sweep))
    assert message in str(error.value)
    assert str(error.value).startswith("config: sweeps.lr")


def test_a_block_or_variant_that_mixes_with_neither_mixup_nor_cutmix_is_a_config_error():
    config = config_with(
        {"base": "resnet34", "grid": {"mix.prob, mix.mixup_alpha": [[0.0, 0.0], [0.5, 1.0]]}}
    )
    config["models"]["resnet34"]["mix"] = {"prob": 0.0, "mixup_alpha": 0.0, "cutmix_alpha": 0.0}
    assert len(checked_settings(config).sweeps["lr"].variants) == 2  # mixing on, or off with prob 0
    config["sweeps"]["lr"]["grid"] = {"mix.prob": [0.0, 0.5]}
    with pytest.raises(
        ConfigError, match=r"^config: sweeps.lr: variant resnet34-\w+ \(mix.prob=0.5\): mix.prob"
    ):
        checked_settings(config)
    config["sweeps"] = {}
    config["models"]["resnet34"]["mix"]["prob"] = 0.7
    with pytest.raises(ConfigError, match="config: models.resnet34.mix: mix.prob is 0.7 but mixup_alpha and"):
        checked_settings(config)


def test_halving_folds_are_some_of_the_sweeps_and_its_early_rungs_train_only_on_them(tmp_path):
    sweep = {"base": "resnet34", "folds": [0, 1], "grid": {"optimizer.lr": [1e-3, 1e-2]}}
    sweep["halving"] = {"budgets": [0.5], "keep": 0.5, "folds": [2]}
    config = validated(config_with(sweep) | {"folds": {"k": 3}})
    with pytest.raises(
        ConfigError, match=r"sweeps.lr.halving.folds: 2 is not one of the sweep's folds \(0, 1\)"
    ):
        checked_settings(config)
    work = demo_work_folder(tmp_path)
    sweep["halving"]["folds"] = [1]
    (work / "sweep.yaml").write_text(yaml.safe_dump({"sweeps": {"lr": sweep}}))
    dry_run = snakemake(work, "sweep_lr", "--dry-run", configs=("demo.yaml", "tiny.yaml", "sweep.yaml"))
    assert planned_jobs(dry_run)["train"] == 2  # up to the rung's checkpoint: each variant on fold 1 only
    assert len(re.findall(r"wildcards: .*model=resnet34-\w+-e1, fold=1", dry_run.stdout)) == 2


def oof_table(labels: np.ndarray, signal: float, rng) -> pd.DataFrame:
    """Out-of-fold rows of 2 folds: logits with `signal` on the true class, 3 photos a person."""
    logits = np.eye(18)[labels] * signal + rng.normal(size=(len(labels), 18))
    table = pd.DataFrame(logits, columns=list(LOGIT_COLUMNS))
    table["label"], table["fold"] = labels, np.arange(len(labels)) % 2
    table["person"], table["path"] = np.arange(len(labels)) // 3, [f"p{i:04d}" for i in range(len(labels))]
    return table.set_index("path")


def test_the_ranking_puts_a_clearly_better_variant_ahead_and_an_equal_one_indistinguishable():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 18, size=900)
    tables = {"base": oof_table(labels, 2.0, rng), "better": oof_table(labels, 4.0, rng)}
    tables["same"] = tables["base"].copy()
    tables["worse"] = oof_table(labels, 0.5, rng)
    settings = {"better": "x=1", "same": "x=2", "worse": "x=3"}
    ranking = sweep_ranking(tables, "base", settings, {"better": 60.0}, None, resamples=200).set_index(
        "block"
    )
    assert list(ranking.index) == ["better", "base", "same", "worse"]
    assert ranking.loc["better", "verdict"] == "ahead" and ranking.loc["better", "low"] > 0
    assert ranking.loc["same", "verdict"] == "indistinguishable" and ranking.loc["same", "gain"] == 0
    assert ranking.loc["worse", "verdict"] == "behind" and ranking.loc["base", "verdict"] == "base"
    assert ranking.loc["better", "train_minutes"] == 1.0


def test_a_sweep_is_a_parent_run_with_a_child_run_per_block_tagged_with_its_settings(tmp_path):
    ranking = pd.DataFrame(
        {"block": ["lr-a", "base"], "verdict": ["ahead", "base"], "macro_f1": [0.6, 0.5], "rank": [1, 2]}
    )
    target = TrackingTarget(f"sqlite:///{tmp_path / 'mlflow.db'}", "sweeps", tmp_path)
    record = tmp_path / "run.json"
    parent = log_sweep(target, "lr", ranking, {"lr-a": {"optimizer.lr": 0.01}}, record)
    assert parent and log_sweep(target, "lr", ranking, {"lr-a": {"optimizer.lr": 0.01}}, record) == parent
    with sqlite3.connect(tmp_path / "mlflow.db") as store:
        runs = dict(store.execute("select name, run_uuid from runs"))
        params = store.execute("select key, value from params where run_uuid = ?", (runs["lr-a"],)).fetchall()
    assert set(runs) == {"sweep lr", "lr-a", "base"}  # logged twice, made once
    assert params == [("optimizer.lr", "0.01")]


@pytest.mark.workflow
def test_a_sweep_with_halving_runs_ranks_and_adopts_and_rebuilds_only_new_points(tmp_path, capsys):
    work = demo_work_folder(tmp_path)
    sweep = {"base": "resnet34", "folds": [0], "grid": {"optimizer.lr": [1e-3, 1e-2]}}
    sweep["halving"] = {"budgets": [0.5], "keep": 0.5}
    (work / "sweep.yaml").write_text(yaml.safe_dump({"sweeps": {"lr": sweep}}))
    configs = ("demo.yaml", "tiny.yaml", "sweep.yaml")
    run = snakemake(work, "sweep_lr", configs=configs)
    assert run.returncode == 0, run.stderr[-5000:]
    results = work / "results/tiny/sweeps/lr"
    ranking = pd.read_csv(results / "ranking.csv")
    verdicts = dict(zip(ranking["block"], ranking["verdict"].str.split().str[0], strict=True))
    assert sorted(verdicts.values())[1:] == ["base", "stopped"] or sorted(verdicts.values())[:2] == [
        "base",
        "stopped",
    ]
    assert len(verdicts) == 3 and {"ahead", "behind", "indistinguishable"} & set(verdicts.values())
    assert len(list((work / "results/tiny/train").glob("resnet34-*-e1/fold0/checkpoint.pt"))) == 2
    assert not list((work / "results/tiny/predict").glob("resnet34-*"))  # the ranking is out of fold
    facemask_main(["adopt", str(results)])
    winner = yaml.safe_load(capsys.readouterr().out)
    assert validated(yaml.safe_load((ROOT / "config.yaml").read_text()) | winner)["models"]["resnet34_lr"]
    reordered = {**sweep, "grid": {"optimizer.lr": [1e-2, 1e-3]}}
    (work / "sweep.yaml").write_text(yaml.safe_dump({"sweeps": {"lr": reordered}}))
    dry_run = snakemake(work, "sweep_lr", "--dry-run", configs=configs)
    assert planned_jobs(dry_run) == {}
    added = {**sweep, "grid": {"optimizer.lr": [1e-3, 1e-2, 3e-2]}}
    (work / "sweep.yaml").write_text(yaml.safe_dump({"sweeps": {"lr": added}}))
    planned = planned_jobs(snakemake(work, "sweep_lr", "--dry-run", configs=configs))
    assert (
        planned["train"] == 1 and planned["sweep_rung"] == 1
    )  # the new point's first rung, then rung 0 again
