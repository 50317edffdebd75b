"""What a vote fits on out-of-fold predictions: the weight search (greedy ensemble selection), and
the cross-validation summary's fitted rows, each fold scored by a fit on the other folds only."""

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax

from facemask.classes.decision import (
    class_counts,
    class_shares,
    decide_classes,
    decide_out_of_fold,
    other_folds_shares,
)
from facemask.classes.labels import LOGIT_COLUMNS, YEAR_COLUMNS
from facemask.classes.scores import macro_f1
from facemask.ensemble import fit, weights
from facemask.ensemble.fit import cross_fitted_vote, fit_vote, oof_by_model
from facemask.ensemble.spec import VoteSpec
from facemask.ensemble.vote import soft_vote
from facemask.ensemble.weights import select_weights
from facemask.report.scores import cv_summary


def test_fitted_ensemble_rows_score_each_fold_by_weights_fitted_on_the_other_folds():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 18, size=90)
    oof = {
        (model, fold): pd.DataFrame(
            np.eye(18)[labels[fold::3]] * 2 + rng.normal(scale=noise, size=(30, 18)),
            columns=list(LOGIT_COLUMNS),
        ).assign(path=[f"p{fold}_{i:02d}" for i in range(30)], label=labels[fold::3])
        for model, noise in (("a", 1.0), ("b", 2.0), ("c", 4.0))
        for fold in range(3)
    }
    spec = VoteSpec(dict.fromkeys("abc", 1.0), fit_weights=True)
    summary = cv_summary(oof, spec).set_index("model")
    by_model = oof_by_model(oof)
    honest = decide_classes(cross_fitted_vote(by_model, spec))
    assert summary.loc["ensemble_fitted", "macro_f1"] == pytest.approx(
        macro_f1(by_model["a"]["label"], honest)
    )
    in_sample = fit_vote(by_model, spec)
    assert summary.loc["ensemble_fitted", "weights"] == " ".join(
        f"{m}={in_sample.weights[m]:.2f}" for m in "abc"
    )


def test_cv_summary_fits_no_weights_and_has_no_fitted_row_unless_asked(monkeypatch):
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 18, size=60)
    oof = {
        (model, fold): pd.DataFrame(
            np.eye(18)[labels[fold::2]] * 2 + rng.normal(size=(30, 18)), columns=list(LOGIT_COLUMNS)
        ).assign(path=[f"p{fold}_{i:02d}" for i in range(30)], label=labels[fold::2])
        for model in "ab"
        for fold in range(2)
    }
    fitted = []
    monkeypatch.setattr(fit, "select_weights", lambda *args: fitted.append(1) or {"a": 0.5, "b": 0.5})
    given = VoteSpec(dict.fromkeys("ab", 1.0))
    assert "ensemble_fitted" not in set(cv_summary(oof, given)["model"]) and not fitted
    summary = cv_summary(oof, VoteSpec(dict.fromkeys("ab", 1.0), fit_weights=True))
    assert list(summary["model"][-2:]) == ["ensemble", "ensemble_fitted"]
    assert len(fitted) == 3  # on all photos, and on each of the 2 folds' others


def informative(labels: np.ndarray, rng, signal: float = 3.0, noise: float = 1.5) -> np.ndarray:
    return np.eye(18)[labels] * signal + rng.normal(scale=noise, size=(len(labels), 18))


def test_weight_search_puts_nearly_all_weight_on_the_informative_model_among_noise():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 18, size=600)
    logits = {
        "noise1": rng.normal(scale=3, size=(600, 18)),
        "good": informative(labels, rng),
        **{f"noise{i}": rng.normal(scale=3, size=(600, 18)) for i in (2, 3)},
    }
    weights = select_weights(logits, labels, class_shares(labels))
    assert list(weights) == list(logits) and sum(weights.values()) == pytest.approx(1)
    assert weights["good"] >= 0.85


def test_weight_search_votes_two_complementary_models_above_either_alone():
    rng = np.random.default_rng(6)
    labels = rng.integers(0, 18, size=900)
    same_mask = np.arange(18)[None, :] // 6 == labels[:, None] // 6  # knows the mask only
    same_gender_age = np.arange(18)[None, :] % 6 == labels[:, None] % 6  # knows gender and age only
    logits = {
        "mask": same_mask * 4.0 + rng.normal(scale=0.5, size=(900, 18)),
        "person": same_gender_age * 4.0 + rng.normal(scale=0.5, size=(900, 18)),
    }
    shares = class_shares(labels)
    alone = {
        name: macro_f1(labels, decide_classes(softmax(member, axis=1), shares))
        for name, member in logits.items()
    }
    weights = select_weights(logits, labels, shares)
    voted = macro_f1(labels, decide_classes(soft_vote(list(logits.values()), list(weights.values())), shares))
    assert min(weights.values()) >= 0.2
    assert voted > max(alone.values()) + 0.2


def test_weight_search_scores_a_number_of_votes_linear_in_the_number_of_models(monkeypatch):
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 18, size=300)
    decided, decide = [], weights.decide_classes
    monkeypatch.setattr(weights, "decide_classes", lambda *args: decided.append(1) or decide(*args))
    votes = {}
    for models in (3, 6):
        decided.clear()
        select_weights(
            {f"m{i}": informative(labels, rng, noise=1.0 + i / 2) for i in range(models)},
            labels,
            class_shares(labels),
            rounds=20,
        )
        votes[models] = len(decided)
    # the best model alone, then 20 rounds of one vote per model (a 0.1 grid: 66 and 3003 votes)
    assert 3 <= votes[3] <= 21 * 3 and 6 <= votes[6] <= 21 * 6


#: the vote options a score row must name truly: the spec's keywords
VOTE_OPTIONS = {
    "mean at given weights": {},
    "fitted weights": {"fit_weights": True},
    "temperatures": {"temperature": True},
    "tasks, fitted weights": {"combine": "tasks", "fit_weights": True},
    "stack": {"combine": "stack"},
    "age cuts": {"age_cut_models": ("a",)},
    "argmax": {"match_class_shares": False, "fit_weights": True},
}


def oof_tables(folds: int, rng) -> dict:
    """Out-of-fold tables of 3 models (a good years head, a middling one, noise) over `folds` folds
    of 40 photos each."""
    labels = rng.integers(0, 18, size=40 * folds)
    years = np.eye(101)[rng.integers(18, 80, size=len(labels))] * 4
    tables = {}
    for model, signal in (("a", 2.5), ("b", 1.5), ("c", 0.0)):
        logits = np.eye(18)[labels] * signal + rng.normal(size=(len(labels), 18))
        table = pd.DataFrame(np.hstack([logits, years]), columns=[*LOGIT_COLUMNS, *YEAR_COLUMNS])
        table = table.assign(path=[f"p{i:03d}" for i in range(len(labels))], label=labels)
        for fold in range(folds):
            tables[(model, fold)] = table.iloc[fold::folds].reset_index(drop=True)
    return tables


def scored_as_named(by_model: dict, spec: VoteSpec, shares) -> float:
    """The macro F1 of the vote `spec` scored as its row's `fitted_on` says: each fold by a fit
    on the other folds, or with one fold by the fit on its own photos (the submission's)."""
    first = next(iter(by_model.values()))
    labels, folds = first["label"].to_numpy(), first["fold"].to_numpy()
    probabilities = np.zeros((len(labels), 18))
    for fold in np.unique(folds):
        held_out = folds == fold if len(np.unique(folds)) > 1 else np.zeros(len(folds), dtype=bool)
        fitted_on = ~held_out
        share = other_folds_shares(labels, held_out, shares) if held_out.any() else shares
        plan = fit_vote({m: t[fitted_on] for m, t in by_model.items()}, spec, share)
        scored = folds == fold
        probabilities[scored] = plan.probabilities({m: t[scored] for m, t in by_model.items()})
    return macro_f1(labels, decide_out_of_fold(probabilities, labels, folds, shares))


@pytest.mark.parametrize("folds", [1, 3], ids=["one fold", "three folds"])
@pytest.mark.parametrize("option", list(VOTE_OPTIONS))
def test_the_submitted_vote_row_scores_the_vote_the_submission_uses(option, folds):
    rng = np.random.default_rng(11)
    oof = oof_tables(folds, rng)
    options = VOTE_OPTIONS[option]
    spec = VoteSpec(dict.fromkeys("abc", 1.0), **options)
    shares = class_counts(rng.integers(0, 18, size=2000)) if spec.match_class_shares else None
    summary = cv_summary(oof, spec, shares=shares)
    submitted = summary[summary["submitted"].astype(bool)]
    assert len(submitted) == 1
    row = submitted.iloc[0]
    assert row["model"] == ("ensemble_fitted" if spec.fit_weights else "ensemble")
    assert row["vote"] == spec.describe()
    by_model = oof_by_model(oof)
    assert row["macro_f1"] == pytest.approx(scored_as_named(by_model, spec, shares))
    plan = fit_vote(by_model, spec, shares)  # the bundle's fit: on every fold's photos
    assert row["weights"] == " ".join(f"{m}={plan.weights[m]:.2f}" for m in "abc")
    expected = "nothing fitted" if not spec.fits_anything else ("cross-fitted" if folds > 1 else "in-sample")
    assert row["fitted_on"].startswith(expected)
    assert (summary["fitted_on"].str.startswith("in-sample").any()) == (folds == 1 and spec.fits_anything)


def test_a_one_fold_run_scores_its_fitted_weights_not_the_equal_ones():
    """The bug of issue 46: with one fold, the fitted row scored the plain mean at equal weights
    while it listed the fitted ones."""
    oof = oof_tables(1, np.random.default_rng(12))
    summary = cv_summary(oof, VoteSpec(dict.fromkeys("abc", 1.0), fit_weights=True)).set_index("model")
    fitted, equal = summary.loc["ensemble_fitted"], summary.loc["ensemble"]
    assert fitted["macro_f1"] > equal["macro_f1"]  # c is noise: fitted on the same photos, it gets ~0
    assert fitted["fitted_on"].startswith("in-sample") and equal["fitted_on"] == "nothing fitted"
