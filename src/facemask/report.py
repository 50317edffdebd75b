"""Scores: macro F1 over the 18 classes, accuracy, and macro F1 per task; CV summaries."""

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from facemask.ensemble import soft_vote
from facemask.labels import LOGIT_COLUMNS, decode_class

SCORE_COLUMNS = ("macro_f1", "accuracy", "mask_f1", "gender_f1", "age_f1")


def macro_f1(y_true, y_pred) -> float:
    """Macro F1 over the classes present in either array (as the competition's scorer does)."""
    return float(f1_score(y_true, y_pred, average="macro", zero_division=0))


def task_scores(y_true, y_pred) -> dict[str, float]:
    """Macro F1 and accuracy over the 18 classes, and macro F1 of each task (mask, gender, age)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    tasks_true, tasks_pred = decode_class(y_true), decode_class(y_pred)
    return {
        "macro_f1": macro_f1(y_true, y_pred),
        "accuracy": float((y_true == y_pred).mean()),
        **{f"{task}_f1": macro_f1(t, p) for task, t, p in zip(("mask", "gender", "age"), tasks_true, tasks_pred)},
    }


def score_submission(submission: pd.DataFrame, answers: pd.DataFrame) -> dict:
    """Scores of a submission (ImageID, ans) against the true answers (ImageID, ans)."""
    merged = answers[["ImageID", "ans"]].merge(submission[["ImageID", "ans"]], on="ImageID", suffixes=("_true", "_pred"))
    if len(merged) != len(answers) or len(submission) != len(answers):
        raise ValueError(f"submission has {len(submission)} rows, {len(merged)} of the {len(answers)} answered photos")
    return {**task_scores(merged["ans_true"], merged["ans_pred"]), "n_images": len(merged)}



def cv_summary(oof_logits: dict[tuple[str, int], pd.DataFrame], model_weights: dict[str, float]) -> pd.DataFrame:
    """Out-of-fold scores per (model, fold), per model over all its folds (fold 'all'), and of
    the soft-voted ensemble of the models (model 'ensemble'). Each table holds the photos of one
    held-out fold: path, label and the logit columns."""
    rows, by_model = [], {}
    for (model, fold), table in sorted(oof_logits.items()):
        predicted = table[list(LOGIT_COLUMNS)].to_numpy().argmax(axis=1)
        rows.append({"model": model, "fold": str(fold), "n_photos": len(table), **task_scores(table["label"], predicted)})
        by_model.setdefault(model, []).append(table)
    for model, tables in by_model.items():
        by_model[model] = pd.concat(tables).set_index("path").sort_index()
        predicted = by_model[model][list(LOGIT_COLUMNS)].to_numpy().argmax(axis=1)
        rows.append({"model": model, "fold": "all", "n_photos": len(predicted),
                     **task_scores(by_model[model]["label"], predicted)})
    paths = next(iter(by_model.values())).index
    for model, table in by_model.items():
        if not table.index.equals(paths):
            raise ValueError(f"out-of-fold predictions of {model!r} cover other photos than the first model's")
    probabilities = soft_vote(
        [table[list(LOGIT_COLUMNS)].to_numpy() for table in by_model.values()],
        [model_weights[model] for model in by_model],
    )
    labels = next(iter(by_model.values()))["label"]
    rows.append({"model": "ensemble", "fold": "all", "n_photos": len(paths),
                 **task_scores(labels, probabilities.argmax(axis=1))})
    return pd.DataFrame(rows)
