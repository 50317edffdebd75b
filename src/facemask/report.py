"""Reports of scores: a submission and each model against the eval answers, and the cross-validation summary."""

import numpy as np
import pandas as pd

from facemask.ensemble import decide_classes, fit_weights, soft_vote, vote_each_model_alone
from facemask.labels import LOGIT_COLUMNS
from facemask.scores import task_scores


def score_submission(submission: pd.DataFrame, answers: pd.DataFrame) -> dict:
    """Scores of a submission (ImageID, ans) against the true answers (ImageID, ans)."""
    merged = answers[["ImageID", "ans"]].merge(submission[["ImageID", "ans"]], on="ImageID", suffixes=("_true", "_pred"))
    if len(merged) != len(answers) or len(submission) != len(answers):
        raise ValueError(f"submission has {len(submission)} rows, {len(merged)} of the {len(answers)} answered photos")
    return {**task_scores(merged["ans_true"], merged["ans_pred"]), "n_images": len(merged)}


def eval_scores_by_model(
    eval_logits: dict[tuple[str, int], pd.DataFrame], image_ids: list[str], answers: pd.DataFrame,
    submission: pd.DataFrame, shares: np.ndarray | None = None,
) -> pd.DataFrame:
    """Eval scores of each model alone (the soft vote of its own folds, classes decided as the
    submission's are) and of the submission (model 'ensemble'), so that the ensemble can be
    compared with its best member."""
    rows = [{"model": model, **score_submission(alone, answers)}
            for model, alone in vote_each_model_alone(eval_logits, image_ids, shares).items()]
    rows.append({"model": "ensemble", **score_submission(submission, answers)})
    return pd.DataFrame(rows)


def oof_by_model(oof_logits: dict[tuple[str, int], pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Each model's out-of-fold tables of all its folds in one, indexed by photo path; every model
    must cover the same photos."""
    by_model: dict[str, list] = {}
    for (model, _), table in sorted(oof_logits.items()):
        by_model.setdefault(model, []).append(table)
    joined = {model: pd.concat(tables).set_index("path").sort_index() for model, tables in by_model.items()}
    paths = next(iter(joined.values())).index
    for model, table in joined.items():
        if not table.index.equals(paths):
            raise ValueError(f"out-of-fold predictions of {model!r} cover other photos than the first model's")
    return joined


def ensemble_oof(
    by_model: dict[str, pd.DataFrame], model_weights: dict[str, float], shares: np.ndarray | None = None
) -> pd.DataFrame:
    """The soft-voted ensemble's out-of-fold answer for every photo: label and predicted class
    (decided as the submission's are, see ensemble.decide_classes)."""
    probabilities = soft_vote([table[list(LOGIT_COLUMNS)].to_numpy() for table in by_model.values()],
                              [model_weights[model] for model in by_model])
    first = next(iter(by_model.values()))
    return pd.DataFrame({"label": first["label"], "predicted": decide_classes(probabilities, shares)}, index=first.index)


def fitted_weights(by_model: dict[str, pd.DataFrame], shares: np.ndarray | None = None) -> dict[str, float]:
    """Model weights that maximise the soft vote's out-of-fold macro F1 (see ensemble.fit_weights)."""
    return fit_weights({model: table[list(LOGIT_COLUMNS)].to_numpy() for model, table in by_model.items()},
                       next(iter(by_model.values()))["label"].to_numpy(), shares)


def best_epoch(history: pd.DataFrame) -> int:
    """The epoch whose checkpoint training kept: the first with the highest validation F1."""
    return int(history.loc[history["val_f1"].idxmax(), "epoch"])


def cv_summary(
    oof_logits: dict[tuple[str, int], pd.DataFrame], model_weights: dict[str, float],
    histories: dict[tuple[str, int], pd.DataFrame] | None = None, shares: np.ndarray | None = None,
) -> pd.DataFrame:
    """Out-of-fold scores per (model, fold) (with its best epoch when `histories` are given), per
    model over all its folds (fold 'all'), and of the soft-voted ensemble with the given weights
    (model 'ensemble') and with weights fitted to the out-of-fold predictions ('ensemble_fitted'),
    every row's classes decided as the submission's are (matched to `shares` when given).
    Each table holds the photos of one held-out fold: path, label and the logit columns."""

    def decide(table: pd.DataFrame) -> np.ndarray:
        return decide_classes(soft_vote([table[list(LOGIT_COLUMNS)].to_numpy()]), shares)

    rows = []
    for (model, fold), table in sorted(oof_logits.items()):
        predicted = decide(table)
        epoch = {"best_epoch": best_epoch(histories[(model, fold)])} if histories else {}
        rows.append({"model": model, "fold": str(fold), **epoch, "n_photos": len(table), **task_scores(table["label"], predicted)})
    by_model = oof_by_model(oof_logits)
    for model, table in by_model.items():
        predicted = decide(table)
        rows.append({"model": model, "fold": "all", "n_photos": len(table), **task_scores(table["label"], predicted)})
    fitted = fitted_weights(by_model, shares)
    for name, weights in (("ensemble", model_weights), ("ensemble_fitted", fitted)):
        ensemble = ensemble_oof(by_model, weights, shares)
        rows.append({"model": name, "fold": "all", "n_photos": len(ensemble),
                     "weights": " ".join(f"{model}={weights[model]:.2f}" for model in by_model),
                     **task_scores(ensemble["label"], ensemble["predicted"])})
    return pd.DataFrame(rows).fillna({"weights": ""}).astype({"best_epoch": "Int64"} if histories else {})
