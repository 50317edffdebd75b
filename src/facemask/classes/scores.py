"""Scores: macro F1 over the 18 classes, accuracy, and macro F1 per task (mask, gender, age); the
person bootstrap of a gain, and intervals of several gains that hold together."""

from collections.abc import Mapping
from typing import Any

import numpy as np

from facemask.classes.labels import TASKS, decode_class

#: the F1 scores that every score table reports: over the 18 classes, then each task's
F1_SCORES = ("macro_f1", *(f"{task}_f1" for task in TASKS))


def macro_f1(y_true, y_pred) -> float:
    """Macro F1 over the classes present in either array (as the competition's scorer does)."""
    from sklearn.metrics import f1_score  # here: importing sklearn.metrics costs every Snakemake load 1 s

    return float(f1_score(y_true, y_pred, average="macro", zero_division=0))


def task_scores(y_true, y_pred) -> dict[str, float]:
    """Macro F1 and accuracy over the 18 classes, and macro F1 of each task (mask, gender, age)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    tasks_true, tasks_pred = decode_class(y_true), decode_class(y_pred)
    return {
        "macro_f1": macro_f1(y_true, y_pred),
        "accuracy": float((y_true == y_pred).mean()),
        **{f"{task}_f1": macro_f1(t, p) for task, t, p in zip(TASKS, tasks_true, tasks_pred, strict=True)},
    }


def person_draws(person, resamples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`resamples` resamples of the people (as many draws as people, each drawn person's photos all
    taken): how many times each person is drawn in each, (resamples, people); and each photo's
    person, as a column of it."""
    people, of_photo = np.unique(np.asarray(person), return_inverse=True)
    rng, count = np.random.default_rng(seed), len(people)
    draws = [np.bincount(rng.integers(count, size=count), minlength=count) for _ in range(resamples)]
    return np.stack(draws), of_photo


def person_bootstrap_gains(truth, new, old, person, resamples: int, seed: int = 0) -> list[dict[str, float]]:
    """The gain of the answers `new` over `old` in each score of task_scores, on each of the
    `resamples` resamples of the people of person_draws, both sides on the same resample: one dict
    a resample."""
    truth, new, old = (np.asarray(values) for values in (truth, new, old))
    draws, of_photo = person_draws(person, resamples, seed)
    gains = []
    for drawn in draws:
        rows = np.repeat(np.arange(len(truth)), drawn[of_photo])
        ahead, behind = task_scores(truth[rows], new[rows]), task_scores(truth[rows], old[rows])
        gains.append({score: ahead[score] - behind[score] for score in ahead})
    return gains


def person_bootstrap_macro_f1(
    truth, answers: Mapping[str, Any], person, resamples: int, seed: int = 0
) -> dict[str, np.ndarray]:
    """The macro F1 of each of the `answers` (name -> classes, one a photo) on each of the
    resamples of person_bootstrap_gains (the same `seed`: the same people drawn), all on the same
    resamples: name -> one score a resample."""
    draws, of_photo = person_draws(person, resamples, seed)
    return counted_macro_f1(truth, answers, of_photo, draws)


def counted_macro_f1(
    truth, answers: Mapping[str, Any], of_photo, counts: np.ndarray
) -> dict[str, np.ndarray]:
    """The macro F1 (as macro_f1 scores it: over the classes present) of each of the `answers`
    (name -> classes, one a photo) when each photo counts as many times as its person (`of_photo`:
    a column of `counts`) in each row of `counts` (rows x people; a row of ones: the photos as they
    are). Counted by person, so that many answers and rows are cheap: name -> one score a row."""
    truth, of_photo = np.asarray(truth), np.asarray(of_photo)
    classes = 1 + max(int(truth.max()), *(int(np.max(given)) for given in answers.values()))

    def counted(photos: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """How many of `photos` each row counts with each of the labels: rows x classes."""
        per_person = np.bincount(
            of_photo[photos] * classes + labels[photos], minlength=counts.shape[1] * classes
        )
        return counts @ per_person.reshape(-1, classes)

    everyone = np.arange(len(truth))
    true_counts, scores = counted(everyone, truth), {}
    for name, predicted in answers.items():
        predicted = np.asarray(predicted)
        present = true_counts + counted(everyone, predicted)  # each class's photos: true plus answered
        hits = counted(np.flatnonzero(predicted == truth), truth)
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.where(present > 0, 2 * hits / present, np.nan)  # nan: a class in neither
        scores[name] = np.nanmean(f1, axis=1)
    return scores


def studentised_intervals(
    observed: np.ndarray, resampled: np.ndarray, level: float = 0.95, simultaneous: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Intervals at `level` around the `observed` gains (one a variant), from their bootstrap
    values (`resampled`: resamples x variants, every variant on the same resamples): each
    resample's gains centred on the observed ones and divided by their bootstrap standard error;
    `simultaneous` (max-|t|): the `level` quantile of the largest of these over the variants is
    one multiplier for all, so that all the intervals hold together at `level`; else each
    variant's own quantile (marginal intervals). A variant whose gain never varies keeps it as
    its interval. Low and high bounds."""
    observed, resampled = np.asarray(observed, dtype=float), np.asarray(resampled, dtype=float)
    error = resampled.std(axis=0, ddof=1)
    scaled = np.abs(resampled - observed) / np.where(error > 0, error, np.inf)
    multiplier = np.quantile(scaled.max(axis=1) if simultaneous else scaled, level, axis=0)
    return observed - multiplier * error, observed + multiplier * error
