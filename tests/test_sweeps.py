"""Sweeps (config sweeps): the expansion of a grid and of draws into stably named model blocks, the
load-time errors naming the sweep, the ranking with person-bootstrap intervals, and a sweep run
end to end with successive halving, rebuilding only new points."""

import json
import re
import sqlite3

import numpy as np
import pandas as pd
import pytest
import yaml

from facemask.classes.labels import LOGIT_COLUMNS
from facemask.classes.scores import (
    counted_macro_f1,
    person_bootstrap_gains,
    person_bootstrap_macro_f1,
    studentised_intervals,
)
from facemask.config.consistency import checked_settings
from facemask.config.schema import validated
from facemask.config.settings import Settings
from facemask.config.sweeps import differences, draw_points, grid_points, variant_name
from facemask.predict.cli import main as facemask_main
from facemask.report.sweeps import sweep_ranking, verdict
from facemask.tracking.store import TrackingTarget
from facemask.tracking.sweeps import log_sweep
from facemask.train.fold import TrainingState, set_up, train_epochs
from facemask.train.job import TrainJob, split_fold
from facemask.train.resume import seed_everything
from facemask.utils.errors import ConfigError

from .conftest import ROOT, demo_work_folder, model_settings, outputs_in, snakemake
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
        assert block.epochs == base.epochs and block.stop_after == 1.0
        rung = settings.models[sweep.rung_block(variant, 0)]
        assert sweep.rung_block(variant, 0) == f"{variant}-s30"
        assert rung.epochs == base.epochs and rung.stop_after == 0.3  # its lr schedule the full run's
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
        ({"base": "resnet34", "grid": {"stop_after": [0.0]}}, "config: sweeps.lr: variant resnet34-"),
        (
            {"base": "resnet34", "grid": {"epochs": [2]}, "halving": {"budgets": [0.5, 0.2]}},
            "config: sweeps.lr.halving.budgets: [0.5, 0.2] do not increase",
        ),
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
    assert len(re.findall(r"wildcards: .*model=resnet34-\w+-s50, fold=1", dry_run.stdout)) == 2


def oof_table(labels: np.ndarray, signal: float | np.ndarray, rng) -> pd.DataFrame:
    """Out-of-fold rows of 2 folds (alternating): logits with `signal` (one, or a column of one a
    row) on the true class, 3 photos a person."""
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
    ranking = sweep_ranking(tables, "base", settings, {"better": 60.0}, None, resamples=200).table
    ranking = ranking.set_index("block")
    assert list(ranking.index) == ["better", "base", "same", "worse"]
    assert ranking.loc["better", "verdict"] == "ahead" and ranking.loc["better", "low"] > 0
    assert ranking.loc["same", "verdict"] == "indistinguishable" and ranking.loc["same", "gain"] == 0
    assert ranking.loc["worse", "verdict"] == "behind" and ranking.loc["base", "verdict"] == "base"
    assert ranking.loc["better", "train_minutes"] == 1.0


def noisy_answers(truth: np.ndarray, right: float, rng) -> np.ndarray:
    """Classes that are right with probability `right`, else drawn at random."""
    return np.where(rng.random(len(truth)) < right, truth, rng.integers(0, 18, size=len(truth)))


def test_the_fast_person_bootstrap_draws_the_same_people_and_scores_as_the_slow_one():
    rng = np.random.default_rng(1)
    truth, person = rng.integers(0, 18, size=300), rng.integers(0, 90, size=300).astype(str)
    new, old = noisy_answers(truth, 0.6, rng), noisy_answers(truth, 0.5, rng)
    slow = [gains["macro_f1"] for gains in person_bootstrap_gains(truth, new, old, person, 10, seed=4)]
    fast = person_bootstrap_macro_f1(truth, {"new": new, "old": old}, person, 10, seed=4)
    np.testing.assert_allclose(fast["new"] - fast["old"], slow, atol=1e-12)


def null_sweep(seed: int, variants: int, resamples: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """A sweep of `variants` that gain nothing over the base (each right as often, their errors
    drawn apart), 600 photos of 200 people: the observed gains, and on each of the person
    bootstrap's resamples."""
    rng = np.random.default_rng(seed)
    truth, person = rng.integers(0, 18, size=600), np.arange(600) // 3
    answers = {name: noisy_answers(truth, 0.5, rng) for name in ["base", *map(str, range(variants))]}
    observed = counted_macro_f1(truth, answers, person, np.ones((1, 200)))
    resampled = person_bootstrap_macro_f1(truth, answers, person, resamples, seed)
    names = list(answers)[1:]
    gains = np.array([observed[name][0] - observed["base"][0] for name in names])
    return gains, np.column_stack([resampled[name] - resampled["base"] for name in names])


def test_family_wise_intervals_are_wider_than_marginal_ones_on_the_same_resamples():
    observed, resampled = null_sweep(0, variants=3, resamples=300)
    (low, high), (marginal_low, marginal_high) = (
        studentised_intervals(observed, resampled, simultaneous=flag) for flag in (True, False)
    )
    assert np.all(low < marginal_low) and np.all(high > marginal_high)
    (alone_low, alone_high), (one_low, one_high) = (
        studentised_intervals(observed[:1], resampled[:, :1], simultaneous=flag) for flag in (True, False)
    )
    assert alone_low == one_low and alone_high == one_high  # a family of one is its own interval


def test_family_wise_verdicts_rarely_crown_one_of_twelve_variants_of_pure_noise():
    crowned = {True: 0, False: 0}  # sweeps with a variant called ahead: family-wise, marginal
    for seed in range(60):
        observed, resampled = null_sweep(seed, variants=12)
        for simultaneous in crowned:
            low, high = studentised_intervals(observed, resampled, simultaneous=simultaneous)
            calls = [verdict(False, *bounds) for bounds in zip(low, high, strict=True)]
            crowned[simultaneous] += "ahead" in calls
    assert crowned[True] <= 6 and crowned[False] >= crowned[True] + 5, crowned  # 4 and 11 of 60


def test_the_winners_honest_gain_is_scored_on_folds_that_did_not_pick_it():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 18, size=900)
    fold = np.arange(900) % 2
    tables = {"base": oof_table(labels, 2.0, rng)}
    tables["lucky"] = oof_table(labels, np.where(fold == 0, 6.0, 1.5)[:, None], rng)  # great on fold 0 only
    tables["late"] = oof_table(labels, np.where(fold == 1, 5.0, 1.0)[:, None], rng)  # great on fold 1 only
    ranked = sweep_ranking(tables, "base", {"lucky": "x=1", "late": "x=2"}, {}, None, resamples=200)
    winner = ranked.table.iloc[0]
    assert winner["block"] == "lucky" and winner["gain"] > 0.05  # picked and scored on the same photos
    honest = ranked.honest
    assert honest is not None and dict(honest.picks) == {0: "late", 1: "lucky"}  # each by the other fold
    assert honest.gain < 0 < winner["gain"] and honest.low < honest.gain < honest.high
    notes = " ".join(ranked.notes())
    assert "simultaneous over the 2 variants" in notes and "(optimistic)" in notes
    assert "on folds that did not pick it" in notes
    one_fold = {block: table[table["fold"] == 0] for block, table in tables.items()}
    alone = sweep_ranking(one_fold, "base", {}, {}, None, resamples=50)
    assert alone.honest is None and "one fold only" in " ".join(alone.notes())


RUNG = {"arch": "test_resnet", "image_size": [32, 32], "batch_size": 8, "epochs": 3}


def test_a_rung_stops_after_its_share_of_the_full_schedules_updates_at_the_full_schedules_lr(
    demo_tables, demo_cache, tmp_path
):
    index, folds = demo_tables
    runs = {}
    for name, share in (("full", 1.0), ("rung", 0.25)):
        block = model_settings(**RUNG, stop_after=share)
        runs[name] = set_up(
            TrainJob(block, 0, demo_cache["train"], outputs_in(tmp_path / name)), *split_fold(index, folds, 0)
        )
    full, rung = runs["full"].parts, runs["rung"].parts
    full_lrs = []  # the lr of each update of the full schedule, stepped alone
    for _ in range(full.schedule.epochs * full.schedule.updates_per_epoch):
        full_lrs.append(full.schedule.lr)
        full.step.optimizer.step()
    rung_lrs, state = [], TrainingState()
    rung.step.optimizer.register_step_pre_hook(lambda *_: rung_lrs.append(rung.schedule.lr))
    seed_everything(0)
    train_epochs(runs["rung"], state, lambda row: None)
    updates = round(0.25 * len(full_lrs))
    assert len(full_lrs) >= 12 and updates < full.schedule.updates_per_epoch  # a rung under one epoch
    assert len(rung_lrs) == rung.schedule.updates == updates
    assert rung_lrs == full_lrs[:updates] and rung.schedule.lr == full_lrs[updates]  # the full run's lr
    assert [row["epoch"] for row in state.history] == [1] and state.kept_logits is not None  # validated


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
    assert len(list((work / "results/tiny/train").glob("resnet34-*-s50/fold0/checkpoint.pt"))) == 2
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
