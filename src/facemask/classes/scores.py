"""Scores: macro F1 over the 18 classes, accuracy, and macro F1 per task (mask, gender, age)."""

import numpy as np

from facemask.classes.labels import decode_class


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
        **{
            f"{task}_f1": macro_f1(t, p)
            for task, t, p in zip(("mask", "gender", "age"), tasks_true, tasks_pred, strict=True)
        },
    }


def person_bootstrap_gains(truth, new, old, person, resamples: int, seed: int = 0) -> list[dict[str, float]]:
    """The gain of the answers `new` over `old` in each score of task_scores, on each of
    `resamples` resamples of the people (each drawn person's photos all taken, as many draws as
    people), both sides on the same resample: one dict a resample."""
    truth, new, old, person = (np.asarray(values) for values in (truth, new, old, person))
    rows_of_person = [np.flatnonzero(person == one) for one in np.unique(person)]
    rng, gains = np.random.default_rng(seed), []
    for _ in range(resamples):
        picks = rng.integers(len(rows_of_person), size=len(rows_of_person))
        rows = np.concatenate([rows_of_person[i] for i in picks])
        ahead, behind = task_scores(truth[rows], new[rows]), task_scores(truth[rows], old[rows])
        gains.append({score: ahead[score] - behind[score] for score in ahead})
    return gains
