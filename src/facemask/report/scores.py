"""Reports of scores: a submission and each model against the eval answers, and the cross-validation
summary."""

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd

from facemask.classes.decision import decide_out_of_fold
from facemask.classes.scores import F1_SCORES, task_scores
from facemask.ensemble.fit import cross_fitted_vote, ensemble_oof, fit_vote, oof_by_model
from facemask.ensemble.spec import VoteSpec
from facemask.ensemble.vote import vote_each_model_alone
from facemask.utils.files import Member

#: the vote of a model's row that scores the model alone
MODEL_ALONE = "{model} alone: the soft vote of its folds"


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
    spec: VoteSpec,
    shares: np.ndarray | None = None,
) -> pd.DataFrame:
    """Eval scores of each model alone (the soft vote of its own folds, classes decided as the
    submission's are) and of the submission (model 'ensemble', the vote `spec` as the bundle
    fitted it), so that the ensemble can be compared with its best member; each row names the
    vote it scores (`vote`)."""
    rows = [
        {
            "model": model,
            "vote": MODEL_ALONE.format(model=model),
            **score_submission(alone, answers),
        }
        for model, alone in vote_each_model_alone(eval_logits, image_ids, shares).items()
    ]
    rows.append(
        {
            "model": "ensemble",
            "vote": f"the submission: {spec.describe()}",
            **score_submission(submission, answers),
        }
    )
    return pd.DataFrame(rows)


def kept_epoch(history: pd.DataFrame) -> int:
    """The epoch whose weights training kept: the last one marked kept."""
    return int(history.loc[history["kept"] == 1, "epoch"].iloc[-1])


def cv_summary(
    oof_logits: dict[Member, pd.DataFrame],
    spec: VoteSpec,
    histories: dict[Member, pd.DataFrame] | None = None,
    shares: np.ndarray | None = None,
) -> pd.DataFrame:
    """Out-of-fold scores per (model, fold) (with its kept epoch when `histories` are given), per
    model over all its folds (fold 'all'), and of the vote `spec` at its given weights (model
    'ensemble') and, with `spec.fit_weights` (the submission then votes with fitted weights), at
    weights fitted to the out-of-fold predictions ('ensemble_fitted'). Each row names the vote it
    scores (`vote`), where what it fits comes from (`fitted_on`: cross-fitted, nothing, or
    in-sample on a run of one fold) and whether the submission votes so (`submitted`). Every row's
    classes are
    decided as the submission's are: matched to the class shares of the other folds when `shares`
    are given (see classes.decision.decide_out_of_fold).
    What is fitted (the weights, temperatures, stacker, the age cuts of the spec's years heads) is
    cross-fitted: each fold's photos are decided by a fit on the other folds only (see
    ensemble.fit.cross_fitted_vote); the weights and cuts shown are those fitted on all folds,
    which the submission uses.
    Each table holds the photos of one held-out fold: path, label and the logit columns."""
    by_model = oof_by_model(oof_logits)
    rows = _model_rows(by_model, histories, shares, spec.age_cut_models)
    votes = {"ensemble": dataclasses.replace(spec, fit_weights=False)}
    votes |= {"ensemble_fitted": spec} if spec.fit_weights else {}
    rows += [_ensemble_row(name, by_model, shares, vote, vote == spec) for name, vote in votes.items()]
    return (
        pd.DataFrame(rows)
        .fillna({"weights": "", "age_cuts": "", "submitted": False})
        .astype({"kept_epoch": "Int64"} if histories else {})
    )


def _model_rows(
    by_model: dict[str, pd.DataFrame],
    histories: dict[Member, pd.DataFrame] | None,
    shares: np.ndarray | None,
    cut_models: Sequence[str],
) -> list[dict]:
    """cv_summary's rows of each model alone: one per (model, fold), then one per model (fold 'all')."""
    decided = {model: decided_alone(model, table, shares, cut_models) for model, table in by_model.items()}
    rows = []
    for model, table in by_model.items():
        alone = _alone(model, cut_models)
        named = {"vote": f"{model} alone", "fitted_on": alone.fitted_on(table["fold"].nunique())}
        for fold in sorted(set(table["fold"])):
            in_fold = (table["fold"] == fold).to_numpy()
            epoch = {"kept_epoch": kept_epoch(histories[Member(model, fold)])} if histories else {}
            rows.append(
                {
                    "model": model,
                    "fold": str(fold),
                    **named,
                    **epoch,
                    "n_photos": int(in_fold.sum()),
                    **task_scores(table["label"][in_fold], decided[model][in_fold]),
                }
            )
    for model, table in by_model.items():
        alone = _alone(model, cut_models)
        cuts = fit_vote({model: table}, alone, shares).age_cuts
        rows.append(
            {
                "model": model,
                "fold": "all",
                "vote": MODEL_ALONE.format(model=model),
                "fitted_on": alone.fitted_on(table["fold"].nunique()),
                "n_photos": len(table),
                "age_cuts": _cuts_text(cuts),
                **task_scores(table["label"], decided[model]),
            }
        )
    return rows


def decided_alone(
    model: str, table: pd.DataFrame, shares: np.ndarray | None, cut_models: Sequence[str] = ()
) -> np.ndarray:
    """A model's out-of-fold classes voted by its folds alone (cross-fitted: its age cuts, if in
    `cut_models`, fitted on the other folds), decided as the submission decides them."""
    labels, folds = table["label"].to_numpy(), table["fold"].to_numpy()
    probabilities = cross_fitted_vote({model: table}, _alone(model, cut_models), shares)
    return decide_out_of_fold(probabilities, labels, folds, shares)


def _alone(model: str, cut_models: Sequence[str]) -> VoteSpec:
    """The vote of one model's folds alone, its age cuts fitted if it is in `cut_models`."""
    return VoteSpec({model: 1.0}, tuple(cut_models) if model in cut_models else ())


def _ensemble_row(
    name: str, by_model: dict[str, pd.DataFrame], shares: np.ndarray | None, spec: VoteSpec, submitted: bool
) -> dict:
    """cv_summary's row of the vote `spec` (see ensemble.fit.fit_vote), cross-fitted where there
    are folds to cross-fit on."""
    ensemble, plan = ensemble_oof(by_model, spec, shares), fit_vote(by_model, spec, shares)
    return {
        "model": name,
        "fold": "all",
        "vote": spec.describe(),
        "fitted_on": spec.fitted_on(next(iter(by_model.values()))["fold"].nunique()),
        "submitted": submitted,
        "n_photos": len(ensemble),
        "age_cuts": _cuts_text(plan.age_cuts),
        "weights": " ".join(f"{model}={plan.weights[model]:.2f}" for model in by_model),
        **task_scores(ensemble["label"], ensemble["predicted"]),
    }


def _cuts_text(age_cuts: dict[str, tuple[int, int]]) -> str:
    return " ".join(f"{model}={first}/{second}" for model, (first, second) in age_cuts.items())


def rounds_table(
    cv_scores: Sequence[pd.DataFrame], eval_scores: Sequence[pd.DataFrame], pseudo_labels: pd.DataFrame
) -> pd.DataFrame:
    """The rounds side by side: per model (over all its folds) and ensemble, the out-of-fold scores
    of each round (cv_scores tables, first round first), its eval scores when `eval_scores` are
    given, and the second round's pseudo photos per fold (mean of `pseudo_labels`)."""
    rows = []
    for number, cv in enumerate(cv_scores, start=1):
        overall = cv[cv["fold"].astype(str) == "all"].set_index("model")
        scored = eval_scores[number - 1].set_index("model") if eval_scores else None
        for model, scores in overall.iterrows():
            row = {"model": model, "round": number}
            row |= {f"oof_{score}": scores[score] for score in F1_SCORES}
            if scored is not None:
                row |= {f"eval_{score}": scored.loc[model, score] for score in F1_SCORES}
            rows.append(row)
    table = pd.DataFrame(rows)
    per_fold = pseudo_labels.groupby("fold").size()
    table["pseudo_photos"] = np.where(table["round"] == 1, 0, round(per_fold.mean()) if len(per_fold) else 0)
    order = {model: place for place, model in enumerate(dict.fromkeys(table["model"]))}  # the ensemble last
    return table.sort_values(
        ["model", "round"], key=lambda column: column.map(order) if column.name == "model" else column
    ).reset_index(drop=True)
