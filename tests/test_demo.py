"""The README's demo, fold 0 of its 2, run once a session: the three seed models at the demo's size
learn the generated faces well above chance, with config.yaml's recipe (the age in years, a weight
average).
Everything else about a run (wiring, reruns, the bundle, tracking) is checked on the tiny run."""

import json

import pandas as pd
import pytest

from facemask.model.classifier import checkpoint_meta

pytestmark = pytest.mark.workflow


def test_the_demo_scores_well_above_chance_and_learns_the_mask(demo_run):
    scores = json.loads((demo_run / "results/demo/eval_scores.json").read_text())
    # a constant answer scores macro F1 0.01 and mask F1 0.28; uniform guessing about 0.05 and 0.33
    # (measured on fold 0 of the demo, 2026-12-07: macro F1 0.36, mask F1 0.59, gender 0.88, age 0.74)
    assert scores["macro_f1"] > 0.2, scores
    assert scores["mask_f1"] > 0.4, scores
    assert scores["gender_f1"] > 0.75, scores
    assert scores["age_f1"] > 0.6, scores


def test_the_demo_trains_the_default_recipe_the_age_in_years_and_a_weight_average(demo_run):
    """config.yaml's blocks, and so the demo's, learn the age in years beside the classes (a
    years head with the bands' cuts) and validate a moving average of the weights every epoch."""
    checkpoints = sorted((demo_run / "results" / "demo" / "train").glob("*/fold*/checkpoint.pt"))
    assert len(checkpoints) == 3  # 3 models x fold 0
    for checkpoint in checkpoints:
        assert checkpoint_meta(checkpoint)["age_cuts"] == [30, 60], checkpoint
        history = pd.read_csv(checkpoint.with_name("history.csv"))
        assert {"val_f1_raw", "val_f1_ema"} <= set(history.columns), checkpoint
        assert set(history["weights"]) <= {"raw", "ema"}, checkpoint


def test_the_demo_writes_what_the_readme_lists(demo_run):
    results = demo_run / "results" / "demo"
    for name in (
        "submission.csv",
        "cv_scores.md",
        "eval_scores.md",
        "eval_scores.json",
        "ensemble/ensemble.json",
    ):
        assert (results / name).is_file(), name
    assert len(list((results / "plots").glob("*.png"))) == 7  # with the contact sheet of crops
    submission = pd.read_csv(results / "submission.csv")
    assert len(submission) == 30 * 7 and submission["ans"].between(0, 17).all()
