"""What a vote fits on out-of-fold predictions, and how it is scored: the years heads' age cuts, each
model's temperature, the model weights (greedy ensemble selection) and what its way to combine
fits, on all folds for the submission and cross-fitted for its scores (each fold's photos voted by
a fit on the other folds only, its classes matched to the other folds' class shares; a run of one
fold has no other folds, and its scores are in-sample, as VoteSpec.fitted_on says). The train
jobs' own choice (the last epoch by default) is fixed in advance; with a block's `keep: best` it
is made on the fold whose logits become its out-of-fold predictions (optimistic)."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

from facemask.classes.decision import decide_out_of_fold, other_folds_shares
from facemask.classes.labels import LOGIT_COLUMNS, NUM_CLASSES, YEAR_COLUMNS
from facemask.ensemble.age_cuts import fit_age_cuts, with_age_cuts
from facemask.ensemble.combiners import combiner_named
from facemask.ensemble.spec import VoteSpec
from facemask.ensemble.vote import Vote
from facemask.ensemble.weights import select_weights
from facemask.utils.files import Member


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T (0.1 to 10) that minimises the cross-entropy of softmax(logits / T) on
    out-of-fold `labels` (Guo et al. 2017)."""
    logits = np.asarray(logits, dtype=np.float64)

    def loss(log_t: float) -> float:
        return -log_softmax(logits / np.exp(log_t), axis=1)[np.arange(len(labels)), labels].mean()

    return float(np.exp(minimize_scalar(loss, bounds=(-np.log(10), np.log(10)), method="bounded").x))


def oof_by_model(oof_logits: dict[Member, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Each model's out-of-fold tables of all its folds in one (with their `fold`), indexed by
    photo path; every model must cover the same photos."""
    by_model: dict[str, list] = {}
    for (model, fold), table in sorted(oof_logits.items()):
        by_model.setdefault(model, []).append(table.assign(fold=fold))
    joined = {model: pd.concat(tables).set_index("path").sort_index() for model, tables in by_model.items()}
    paths = next(iter(joined.values())).index
    for model, table in joined.items():
        if not table.index.equals(paths):
            raise ValueError(
                f"out-of-fold predictions of {model!r} cover other photos than the first model's"
            )
    return joined


@dataclass(frozen=True)
class VotePlan:
    """What a vote takes from out-of-fold predictions: the vote (weights, temperatures, how it
    combines; see vote.Vote) and each years head's age cuts."""

    vote: Vote
    age_cuts: dict[str, tuple[int, int]]

    @property
    def weights(self) -> dict[str, float]:
        return dict(self.vote.weights)

    def member_logits(self, by_model: dict[str, pd.DataFrame]) -> dict[str, np.ndarray]:
        """Each model's 18-class logits, a years head's with its bands cut at its age cuts."""
        return {
            model: with_age_cuts(
                table[list(LOGIT_COLUMNS)].to_numpy(),
                table[list(YEAR_COLUMNS)].to_numpy(),
                self.age_cuts[model],
            )
            if model in self.age_cuts
            else table[list(LOGIT_COLUMNS)].to_numpy()
            for model, table in by_model.items()
        }

    def probabilities(self, by_model: dict[str, pd.DataFrame]) -> np.ndarray:
        """The vote's probabilities for the photos of `by_model` (tables in the same photo order)."""
        return self.vote.probabilities(
            {model: [logits] for model, logits in self.member_logits(by_model).items()}
        )


def fit_vote(by_model: dict[str, pd.DataFrame], spec: VoteSpec, shares: np.ndarray | None = None) -> VotePlan:
    """The vote `spec` fitted on out-of-fold tables, in this order: the age cuts of its years heads
    that fit them (each on its own predictions; the others keep their training cuts), with
    `spec.temperature` each model's temperature, then the model weights (see select_weights) with
    `spec.fit_weights` (else the spec's, or equal ones), and what its way to combine fits (see
    combiners). Classes are decided as the submission decides them (`shares`)."""
    labels = next(iter(by_model.values()))["label"].to_numpy()
    given = {model: spec.weights.get(model, 1.0) for model in by_model}
    cuts = {
        model: fit_age_cuts(by_model[model], shares) for model in spec.age_cut_models if model in by_model
    }
    logits = VotePlan(Vote({}), cuts).member_logits(by_model)
    temperatures = (
        {model: fit_temperature(logits[model], labels) for model in logits} if spec.temperature else {}
    )
    tempered = {model: logits[model] / temperatures.get(model, 1.0) for model in logits}
    votes = {model: softmax(tempered[model], axis=1) for model in logits}  # each model's vote (see Vote)
    weights = select_weights(tempered, labels, shares) if spec.fit_weights else given
    combiner = combiner_named(spec.combine).fit(votes, labels, shares, spec.fit_weights)
    return VotePlan(Vote(weights, temperatures, combiner), cuts)


def cross_fitted_vote(
    by_model: dict[str, pd.DataFrame], spec: VoteSpec, shares: np.ndarray | None = None
) -> np.ndarray:
    """The vote's out-of-fold probabilities, each fold's from a plan fitted on the other folds only
    (see fit_vote; classes matched to the other folds' shares when `shares` are given): estimates
    of a vote fitted on all of them, as the submission's is. With a single fold there is nothing
    to cross-fit on: the plan is the submission's, fitted on that fold, and its scores are
    in-sample (VoteSpec.fitted_on says so)."""
    folds, labels = (next(iter(by_model.values()))[column].to_numpy() for column in ("fold", "label"))
    if len(np.unique(folds)) == 1:
        return fit_vote(by_model, spec, shares).probabilities(by_model)
    probabilities = np.zeros((len(folds), NUM_CLASSES))
    for fold in np.unique(folds):
        held_out = folds == fold
        plan = fit_vote(
            {model: table[~held_out] for model, table in by_model.items()},
            spec,
            other_folds_shares(labels, held_out, shares),
        )
        probabilities[held_out] = plan.probabilities(
            {model: table[held_out] for model, table in by_model.items()}
        )
    return probabilities


def ensemble_oof(
    by_model: dict[str, pd.DataFrame], spec: VoteSpec, shares: np.ndarray | None = None
) -> pd.DataFrame:
    """The vote's out-of-fold answer for every photo: label and predicted class, cross-fitted (see
    cross_fitted_vote) and decided as the submission's are (see decide_out_of_fold)."""
    first = next(iter(by_model.values()))
    labels, folds = first["label"].to_numpy(), first["fold"].to_numpy()
    predicted = decide_out_of_fold(cross_fitted_vote(by_model, spec, shares), labels, folds, shares)
    return pd.DataFrame({"label": first["label"], "predicted": predicted}, index=first.index)
