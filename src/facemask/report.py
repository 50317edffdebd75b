"""Reports of scores: a submission and each model against the eval answers, and the cross-validation
summary."""

from collections.abc import Sequence

import numpy as np
import pandas as pd

from facemask.files import Member
from facemask.oof_fit import cross_fitted_vote, ensemble_oof, fit_vote, oof_by_model
from facemask.scores import task_scores
from facemask.vote import decide_classes, vote_each_model_alone


def score_submission(submission: pd.DataFrame, answers: pd.DataFrame) -> dict:
    """Scores of a submission (ImageID, ans) against the true answers (ImageID, ans)."""
    merged = answers[["ImageID", "ans"]].merge(
        submission[["ImageID", "ans"]], on="ImageID", suffixes=("_true", "_pred")
    )
    if len(merged) != len(answers) or len(submission) != len(answers):
        raise ValueError(
            f"submission has {len(submission)} rows, {len(merged)} of the {len(answers)} answered photos"
        )
    return {**task_scores(merged["ans_true"], merged["ans_pred"]), "n_images": len(merged)}


def eval_scores_by_model(
    eval_logits: dict[Member, pd.DataFrame],
    image_ids: list[str],
    answers: pd.DataFrame,
    submission: pd.DataFrame,
    shares: np.ndarray | None = None,
) -> pd.DataFrame:
    """Eval scores of each model alone (the soft vote of its own folds, classes decided as the
    submission's are) and of the submission (model 'ensemble'), so that the ensemble can be
    compared with its best member."""
    rows = [
        {"model": model, **score_submission(alone, answers)}
        for model, alone in vote_each_model_alone(eval_logits, image_ids, shares).items()
    ]
    rows.append({"model": "ensemble", **score_submission(submission, answers)})
    return pd.DataFrame(rows)


def best_epoch(history: pd.DataFrame) -> int:
    """The epoch whose checkpoint training kept: the first with the highest validation F1."""
    return int(history.loc[history["val_f1"].idxmax(), "epoch"])


def cv_summary(
    oof_logits: dict[Member, pd.DataFrame],
    model_weights: dict[str, float],
    histories: dict[Member, pd.DataFrame] | None = None,
    shares: np.ndarray | None = None,
    cut_models: Sequence[str] = (),
    fit_weights: bool = False,
) -> pd.DataFrame:
    """Out-of-fold scores per (model, fold) (with its best epoch when `histories` are given), per
    model over all its folds (fold 'all'), and of the soft-voted ensemble with the given weights
    (model 'ensemble') and, with `fit_weights` (the submission then votes with fitted weights), with
    weights fitted to the out-of-fold predictions ('ensemble_fitted'), every row's classes decided
    as the submission's are (matched to `shares` when given).
    What is fitted (the weights, the age cuts of the years heads in `cut_models`) is cross-fitted:
    each fold's photos are decided by a fit on the other folds only (see
    oof_fit.cross_fitted_vote); the weights and cuts shown are those fitted on all folds, which the
    submission uses.
    Each table holds the photos of one held-out fold: path, label and the logit columns."""
    by_model = oof_by_model(oof_logits)
    rows = _model_rows(by_model, histories, shares, cut_models)
    votes = {"ensemble": model_weights, **({"ensemble_fitted": None} if fit_weights else {})}
    rows += [_ensemble_row(name, by_model, weights, shares, cut_models) for name, weights in votes.items()]
    return (
        pd.DataFrame(rows)
        .fillna({"weights": "", "age_cuts": ""})
        .astype({"best_epoch": "Int64"} if histories else {})
    )


def _model_rows(
    by_model: dict[str, pd.DataFrame],
    histories: dict[Member, pd.DataFrame] | None,
    shares: np.ndarray | None,
    cut_models: Sequence[str],
) -> list[dict]:
    """cv_summary's rows of each model alone: one per (model, fold), then one per model (fold 'all')."""
    alone = {
        model: cross_fitted_vote({model: table}, shares, {model: 1.0}, cut_models)
        for model, table in by_model.items()
    }
    rows = []
    for model, table in by_model.items():
        for fold in sorted(set(table["fold"])):
            in_fold = (table["fold"] == fold).to_numpy()
            epoch = {"best_epoch": best_epoch(histories[Member(model, fold)])} if histories else {}
            rows.append(
                {
                    "model": model,
                    "fold": str(fold),
                    **epoch,
                    "n_photos": int(in_fold.sum()),
                    **task_scores(table["label"][in_fold], decide_classes(alone[model][in_fold], shares)),
                }
            )
    for model, table in by_model.items():
        cuts = fit_vote({model: table}, shares, {model: 1.0}, cut_models).age_cuts
        rows.append(
            {
                "model": model,
                "fold": "all",
                "n_photos": len(table),
                "age_cuts": _cuts_text(cuts),
                **task_scores(table["label"], decide_classes(alone[model], shares)),
            }
        )
    return rows


def _ensemble_row(
    name: str,
    by_model: dict[str, pd.DataFrame],
    weights: dict[str, float] | None,
    shares: np.ndarray | None,
    cut_models: Sequence[str],
) -> dict:
    """cv_summary's row of the ensemble voted with `weights` (fitted when None), cross-fitted."""
    ensemble, plan = (
        ensemble_oof(by_model, weights, shares, cut_models),
        fit_vote(by_model, shares, weights, cut_models),
    )
    return {
        "model": name,
        "fold": "all",
        "n_photos": len(ensemble),
        "age_cuts": _cuts_text(plan.age_cuts),
        "weights": " ".join(f"{model}={plan.weights[model]:.2f}" for model in by_model),
        **task_scores(ensemble["label"], ensemble["predicted"]),
    }


def _cuts_text(age_cuts: dict[str, tuple[int, int]]) -> str:
    return " ".join(f"{model}={first}/{second}" for model, (first, second) in age_cuts.items())
