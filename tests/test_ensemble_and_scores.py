"""Soft vote, member weights, the decision, submission order, the scores (what a vote
fits on out-of-fold predictions: test_oof_fit.py)."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax

from facemask.classes.decision import (
    class_counts_to_match,
    class_share_offsets,
    class_shares,
    decide_classes,
    log_probabilities,
)
from facemask.classes.labels import LOGIT_COLUMNS
from facemask.classes.scores import macro_f1, task_scores
from facemask.config.sections import TestTimeAugmentation
from facemask.ensemble.bundle import Bundle
from facemask.ensemble.spec import VoteSpec
from facemask.ensemble.vote import Vote, fold_weights, soft_vote, vote_eval_predictions
from facemask.report.scores import cv_summary, eval_scores_by_model, score_submission
from facemask.utils.errors import PipelineError
from facemask.utils.files import Member, read_member_tables


def test_soft_vote_with_equal_weights_is_the_mean_of_the_softmax_probabilities():
    rng = np.random.default_rng(0)
    members = [rng.normal(size=(5, 18)) * 3 for _ in range(3)]
    voted = soft_vote(members)
    np.testing.assert_allclose(voted, np.mean([softmax(m, axis=1) for m in members], axis=0))
    np.testing.assert_allclose(voted.sum(axis=1), 1)


def test_a_member_with_zero_weight_has_no_say():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(4, 18)), rng.normal(size=(4, 18))
    np.testing.assert_allclose(soft_vote([a, b], [1, 0]), softmax(a, axis=1))
    with pytest.raises(ValueError):
        soft_vote([a, b], [0, 0])


def test_a_models_weight_is_shared_among_its_folds():
    members = [("vit", 0), ("vit", 1), ("resnet", 0)]
    assert fold_weights(members, {"vit": 1.0, "resnet": 2.0}) == [0.5, 0.5, 2.0]


def test_matching_class_shares_restores_a_rare_class_that_averaging_hides():
    rng = np.random.default_rng(3)
    labels = rng.choice(18, size=3000, p=np.r_[np.full(12, 0.9 / 12), np.full(6, 0.1 / 6)])
    # members see the truth faintly and every photo as a bit likelier common than rare
    members = [
        np.eye(18)[labels] * 1.5 + rng.normal(size=(3000, 18)) * 1.2 + np.r_[np.full(12, 1.5), np.zeros(6)]
        for _ in range(3)
    ]
    probabilities = soft_vote(members)
    plain, matched = decide_classes(probabilities), decide_classes(probabilities, class_shares(labels))
    rare = labels >= 12
    assert np.isin(plain, range(12, 18)).mean() < 0.5 * rare.mean()  # the plain argmax all but drops them
    assert np.abs(class_shares(matched) - class_shares(labels)).sum() < 0.02
    assert macro_f1(labels, matched) > macro_f1(labels, plain) + 0.05
    np.testing.assert_array_equal(decide_classes(probabilities, None), probabilities.argmax(axis=1))


def test_the_submission_follows_info_csv_order_whatever_the_logit_row_order():
    ids = [f"{i:03d}.jpg" for i in range(18)]
    logits = np.eye(18) * 10
    table = pd.DataFrame(logits, columns=list(LOGIT_COLUMNS)).assign(ImageID=ids)
    shuffled = table.sample(frac=1, random_state=0)
    order = ids[::-1]
    submission = vote_eval_predictions({("m", 0): shuffled, ("m", 1): table}, Vote({"m": 1.0}), order)
    assert list(submission.columns) == ["ImageID", "ans"]
    assert list(submission["ImageID"]) == order
    assert list(submission["ans"]) == list(range(18))[::-1]


def test_member_tables_are_keyed_by_member_whether_given_members_or_workflow_pairs(tmp_path):
    paths = []
    for fold in range(2):
        paths.append(tmp_path / f"fold{fold}.csv")
        pd.DataFrame({"ImageID": ["007", "010"], "logit_00": [fold, 1.0]}).to_csv(paths[-1], index=False)
    from_params = read_member_tables([["vit", 0], ["vit", "1"]], paths)  # Snakemake params: plain lists
    assert list(from_params) == [Member("vit", 0), Member("vit", 1)] == [("vit", 0), ("vit", 1)]
    assert list(from_params[Member("vit", 1)]["ImageID"]) == ["007", "010"]  # ImageIDs stay text
    assert list(read_member_tables([Member("vit", 0), Member("vit", 1)], paths)) == list(from_params)
    assert str(Member("vit", 1)) == "vit fold 1"


def test_the_bundle_decides_with_its_class_offsets_or_by_the_plain_argmax_without_them():
    probabilities = softmax(np.random.default_rng(4).normal(size=(50, 18)), axis=1)
    offsets = np.linspace(-1, 1, 18)
    plain = Bundle((), Vote({}), False, TestTimeAugmentation((), "mean", 8), (30, 60))
    np.testing.assert_array_equal(
        dataclasses.replace(plain, class_offsets=tuple(offsets)).decide(probabilities),
        decide_classes(probabilities, offsets=offsets),
    )
    np.testing.assert_array_equal(plain.decide(probabilities), probabilities.argmax(axis=1))


def test_the_class_counts_to_match_are_the_training_photos_or_none(tmp_path):
    index = tmp_path / "train_photos.csv"
    pd.DataFrame({"path": ["a", "b", "c", "d"], "label": [0, 0, 5, 17]}).to_csv(index, index=False)
    counts = class_counts_to_match(index, True)
    assert counts[[0, 5, 17]].tolist() == [2, 1, 1] and counts.sum() == 4
    assert class_counts_to_match(index, False) is None


def test_logits_missing_an_eval_photo_are_refused():
    table = pd.DataFrame(np.zeros((2, 18)), columns=list(LOGIT_COLUMNS)).assign(ImageID=["a", "b"])
    with pytest.raises(PipelineError, match="ImageIDs"):
        vote_eval_predictions({("m", 0): table}, Vote({"m": 1.0}), ["a", "b", "c"])


def test_task_scores_split_the_18_classes_into_mask_gender_and_age():
    truth = np.array([0, 7, 17, 3])
    assert task_scores(truth, truth) == {
        "macro_f1": 1.0,
        "accuracy": 1.0,
        "mask_f1": 1.0,
        "gender_f1": 1.0,
        "age_f1": 1.0,
    }
    wrong_age = truth - truth % 3 + (truth % 3 + 1) % 3
    scores = task_scores(truth, wrong_age)
    assert scores["mask_f1"] == scores["gender_f1"] == 1.0
    assert scores["age_f1"] == scores["accuracy"] == scores["macro_f1"] == 0.0


def test_scoring_a_submission_checks_it_answers_every_photo():
    answers = pd.DataFrame({"ImageID": ["a", "b"], "ans": [1, 2]})
    assert score_submission(answers, answers)["macro_f1"] == 1.0
    with pytest.raises(ValueError, match="rows"):
        score_submission(answers.iloc[:1], answers)


def test_cv_summary_scores_each_fold_each_model_and_the_ensemble():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 18, size=40)
    oof = {}
    for model, noise in (("good", 0.1), ("bad", 5.0)):
        logits = np.eye(18)[labels] * 5 + rng.normal(scale=noise, size=(40, 18))
        for fold in (0, 1):
            rows = slice(fold * 20, fold * 20 + 20)
            oof[(model, fold)] = pd.DataFrame(logits[rows], columns=list(LOGIT_COLUMNS)).assign(
                path=[f"p{i}" for i in range(40)][rows], label=labels[rows]
            )
    summary = cv_summary(oof, VoteSpec({"good": 1.0, "bad": 1.0})).set_index(["model", "fold"])
    assert summary.loc[("good", "all"), "macro_f1"] == 1.0
    assert summary.loc[("good", "0"), "n_photos"] == 20
    assert summary.loc[("ensemble", "all"), "n_photos"] == 40
    assert summary.loc[("bad", "all"), "macro_f1"] < summary.loc[("ensemble", "all"), "macro_f1"]


def test_class_share_offsets_equal_those_of_the_plain_iteration_over_every_photo():
    def plain(log_p, shares, steps=300, step_size=0.2):  # every photo decided again each step
        floor = 0.5 / len(log_p)
        offsets, best, best_gap = np.zeros(18), None, np.inf
        for _ in range(steps):
            predicted = class_shares((log_p + offsets).argmax(axis=1))
            gap = np.abs(predicted - shares).sum()
            if gap < best_gap:
                best, best_gap = offsets.copy(), gap
            offsets += step_size * (np.log(np.maximum(shares, floor)) - np.log(np.maximum(predicted, floor)))
        return best

    rng = np.random.default_rng(8)
    for trial in range(12):
        labels = rng.choice(18, size=500 + 100 * trial, p=rng.dirichlet(np.ones(18)))
        logits = np.eye(18)[labels] * (trial % 4) + rng.normal(scale=0.3 + trial / 3, size=(len(labels), 18))
        logits += rng.normal(size=18)
        logits = np.round(logits) if trial % 3 == 0 else logits  # equal maxima: the first class wins
        log_p = log_probabilities(softmax(logits, axis=1))
        shares = class_shares(labels if trial % 2 else rng.integers(0, 18, 1000))
        np.testing.assert_array_equal(class_share_offsets(log_p, shares), plain(log_p, shares))


def test_eval_scores_rate_each_model_on_its_own_folds_and_the_submission():
    ids = [f"{i:02d}.jpg" for i in range(36)]
    answers = pd.DataFrame({"ImageID": ids, "ans": np.arange(36) % 18})
    right = np.eye(18)[answers["ans"]] * 5
    shifted = np.roll(right, 1, axis=1)  # every answer one class off
    eval_logits = {("right", 0): right, ("right", 1): right, ("wrong", 0): shifted, ("wrong", 1): right * 0.5}
    eval_logits = {
        member: pd.DataFrame(logits, columns=list(LOGIT_COLUMNS)).assign(ImageID=ids)
        for member, logits in eval_logits.items()
    }
    submission = answers.assign(ans=0)
    spec = VoteSpec({"right": 1.0, "wrong": 1.0}, fit_weights=True)
    scores = eval_scores_by_model(eval_logits, ids, answers, submission, spec).set_index("model")
    assert list(scores.index) == ["right", "wrong", "ensemble"]
    assert scores.loc["right", "vote"] == "right alone: the soft vote of its folds"
    assert scores.loc["ensemble", "vote"] == "the submission: " + spec.describe()
    assert "weights fitted" in scores.loc["ensemble", "vote"]
    assert scores.loc["right", "macro_f1"] == 1.0
    assert (
        scores.loc["wrong", "macro_f1"] == 0.0
    )  # its folds vote 5 for the shifted class, 2.5 for the right one
    assert scores.loc["ensemble", "accuracy"] == pytest.approx(2 / 36)
    assert scores.loc["ensemble", "n_images"] == 36
