"""The vote's options (ensemble.combine, ensemble.temperature): the plain mean as before, a fitted
temperature, weights per task, a stacked logistic regression, each fitted on the other folds only,
kept intact in the bundle's form; and out-of-fold decisions matched to the other folds' shares."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.special import softmax

from facemask.classes.decision import class_counts, class_shares, decide_classes, decide_out_of_fold
from facemask.classes.labels import LOGIT_COLUMNS
from facemask.classes.scores import macro_f1, task_scores
from facemask.ensemble import combiners, fit
from facemask.ensemble.combiners import (
    COMBINERS,
    Combiner,
    StackVote,
    TaskVote,
    fit_stacker,
    fit_task_weights,
)
from facemask.ensemble.fit import cross_fitted_vote, fit_temperature, fit_vote
from facemask.ensemble.spec import VoteSpec
from facemask.ensemble.vote import Vote, by_model, fold_weights, soft_vote
from facemask.utils.files import Member

from .conftest import ROOT


def complementary(labels: np.ndarray, rng) -> dict[str, np.ndarray]:
    """Logits of two models: one knows the mask and guesses the gender and age with confidence,
    the other knows the gender and age and guesses the mask."""
    classes = np.arange(18)[None, :]
    guesses = rng.integers(0, 18, size=len(labels))[:, None]
    size = (len(labels), 18)
    mask = (classes // 6 == labels[:, None] // 6) * 4.0 + (classes % 6 == guesses % 6) * 4.0
    person = (classes % 6 == labels[:, None] % 6) * 4.0 + (classes // 6 == guesses // 6) * 4.0
    return {
        "mask": mask + rng.normal(scale=0.7, size=size),
        "person": person + rng.normal(scale=0.7, size=size),
    }


def oof_tables(logits: dict[str, np.ndarray], labels: np.ndarray, folds: int = 3) -> dict[str, pd.DataFrame]:
    """Out-of-fold tables by model (as fit.oof_by_model gives them), photos dealt to `folds` folds."""
    fold = np.arange(len(labels)) % folds
    return {
        model: pd.DataFrame(values, columns=list(LOGIT_COLUMNS)).assign(label=labels, fold=fold)
        for model, values in logits.items()
    }


def test_the_mean_vote_is_the_soft_vote_of_the_members_with_their_models_weights_shared_by_folds():
    rng = np.random.default_rng(0)
    members = {Member("a", 0): 0, Member("a", 1): 0, Member("b", 0): 0}
    logits = {member: rng.normal(scale=2, size=(40, 18)) for member in members}
    weights = {"a": 2.0, "b": 1.0}
    np.testing.assert_allclose(
        Vote(weights).probabilities(by_model(logits)),
        soft_vote(list(logits.values()), fold_weights(list(logits), weights)),
    )


def test_a_fitted_temperature_undoes_overconfident_logits():
    rng = np.random.default_rng(1)
    calibrated = rng.normal(scale=2, size=(4000, 18))
    labels = np.array([rng.choice(18, p=p) for p in softmax(calibrated, axis=1)])
    assert fit_temperature(3 * calibrated, labels) == pytest.approx(3, rel=0.1)
    assert fit_temperature(calibrated / 2, labels) == pytest.approx(0.5, rel=0.1)


def test_weights_per_task_follow_what_each_model_knows_and_vote_each_task_by_its_own():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 18, size=900)
    votes = {model: softmax(logits, axis=1) for model, logits in complementary(labels, rng).items()}
    weights = fit_task_weights(votes, labels)
    assert weights["mask"]["mask"] > 0.5
    assert weights["gender"]["person"] > 0.5 and weights["age"]["person"] > 0.5
    per_task = Vote({}, combiner=TaskVote(weights)).probabilities(
        {model: [np.log(vote)] for model, vote in votes.items()}
    )
    mean = Vote(dict.fromkeys(votes, 1.0)).probabilities({model: [np.log(v)] for model, v in votes.items()})
    np.testing.assert_allclose(per_task.sum(axis=1), 1)
    assert macro_f1(labels, per_task.argmax(1)) > macro_f1(labels, mean.argmax(1)) + 0.05
    for task in ("mask", "gender", "age"):  # the argmax decides each task by its own vote
        assert task_scores(labels, per_task.argmax(1))[f"{task}_f1"] >= 0.9


def test_the_stacker_combines_complementary_models_and_never_predicts_a_class_it_never_saw():
    rng = np.random.default_rng(3)
    labels = rng.choice([c for c in range(18) if c != 5], size=1200)
    votes = {model: softmax(logits, axis=1) for model, logits in complementary(labels, rng).items()}
    stacker = fit_stacker({model: vote[:800] for model, vote in votes.items()}, labels[:800])
    held_out = stacker.probabilities({model: vote[800:] for model, vote in votes.items()}, {})
    np.testing.assert_allclose(held_out.sum(axis=1), 1)
    assert held_out[:, 5].max() < 1e-6
    assert macro_f1(labels[800:], held_out.argmax(1)) > 0.8


@pytest.mark.parametrize("combine", ["mean", "tasks", "stack"])
def test_a_fitted_vote_decides_the_same_from_its_bundle_form(combine):
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 18, size=300)
    tables = oof_tables(complementary(labels, rng), labels)
    spec = VoteSpec({}, fit_weights=True, combine=combine, temperature=True)
    vote = fit_vote(tables, spec, class_shares(labels)).vote
    again = Vote.from_config(json.loads(json.dumps(vote.as_config())))
    logits = {model: [table[list(LOGIT_COLUMNS)].to_numpy()] for model, table in tables.items()}
    np.testing.assert_allclose(again.probabilities(logits), vote.probabilities(logits), rtol=1e-12)
    assert set(vote.temperatures) == {"mask", "person"} and (combine == "stack") == isinstance(
        vote.combiner, StackVote
    )


@pytest.mark.parametrize("combine", ["tasks", "stack"])
def test_each_folds_vote_is_fitted_on_the_other_folds_only(monkeypatch, combine):
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 18, size=300)
    tables = oof_tables(complementary(labels, rng), labels)
    fitted_on: list[int] = []
    fitters = {"tasks": (combiners, "fit_task_weights"), "stack": (combiners, "fit_stacker")}
    for module, name in (fitters[combine], (fit, "fit_temperature")):
        fitter = getattr(module, name)
        monkeypatch.setattr(
            module,
            name,
            lambda first, labels, *rest, f=fitter: fitted_on.append(len(labels)) or f(first, labels, *rest),
        )
    spec = VoteSpec({}, fit_weights=True, combine=combine, temperature=True)
    probabilities = cross_fitted_vote(tables, spec, class_counts(labels))
    assert set(fitted_on) == {200}  # 2 temperatures and the combination per fold, each on 200 photos
    assert len(fitted_on) == 3 * 3
    fold = tables["mask"]["fold"].to_numpy()
    plan = fit_vote({m: t[fold != 0] for m, t in tables.items()}, spec, class_shares(labels[fold != 0]))
    np.testing.assert_allclose(
        probabilities[fold == 0], plan.probabilities({m: t[fold == 0] for m, t in tables.items()})
    )


def test_an_out_of_fold_decision_never_sees_its_own_folds_labels():
    rng = np.random.default_rng(6)
    labels = rng.integers(0, 18, size=600)
    folds = np.arange(600) % 3
    probabilities = softmax(np.eye(18)[labels] + rng.normal(size=(600, 18)), axis=1)
    decided = decide_out_of_fold(probabilities, labels, folds, class_counts(labels))
    relabelled = labels.copy()
    relabelled[folds == 0] = 0  # fold 0's labels changed: only the others' decisions may move
    again = decide_out_of_fold(probabilities, relabelled, folds, class_counts(relabelled))
    np.testing.assert_array_equal(decided[folds == 0], again[folds == 0])
    assert (decided[folds != 0] != again[folds != 0]).any()
    np.testing.assert_array_equal(
        decided[folds == 1], decide_classes(probabilities[folds == 1], class_shares(labels[folds != 1]))
    )


def test_the_schemas_ways_to_combine_are_the_registered_combiners():
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    assert schema["properties"]["ensemble"]["properties"]["combine"]["enum"] == list(COMBINERS)
    for name, kind in COMBINERS.items():
        assert kind.name == name and issubclass(kind, Combiner)


@pytest.mark.parametrize("name", list(COMBINERS))
def test_a_vote_spec_needs_a_fit_exactly_when_something_is_fitted(name):
    given = VoteSpec({"a": 1.0, "b": 2.0}, combine=name)
    assert given.needs_fit == COMBINERS[name].fits_always
    assert VoteSpec({"a": 1.0}, fit_weights=True, combine=name).needs_fit
    assert VoteSpec({"a": 1.0}, temperature=True, combine=name).needs_fit
    if not given.needs_fit:
        assert given.unfitted().combine == name and dict(given.unfitted().weights) == {"a": 1.0, "b": 2.0}
    assert VoteSpec.from_config(given.as_config()) == given
