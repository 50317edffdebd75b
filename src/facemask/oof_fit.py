"""What a vote fits on out-of-fold predictions, and how it is scored: the model weights (greedy
ensemble selection) and a years head's age cuts, fitted on all folds for the submission and
cross-fitted for its scores (each fold's photos voted by a fit on the other folds only). Not
cross-fitted: each train job's choice of epoch and of raw or EMA weights, made on the very fold
whose logits become its out-of-fold predictions (a small optimistic bias; under 0.001 macro F1
measured with 3 epochs). The vote itself and its decision are in facemask.vote."""

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pandas as pd
from scipy.special import log_softmax, logsumexp, softmax

from facemask.files import Member
from facemask.labels import (
    BAND_OF_CLASS,
    DEFAULT_AGE_BINS,
    LOGIT_COLUMNS,
    NUM_CLASSES,
    NUM_PAIRS,
    PAIR_OF_CLASS,
    YEAR_COLUMNS,
    band_of_year,
)
from facemask.scores import macro_f1
from facemask.vote import decide_classes, log_probabilities, soft_vote

#: the age cuts a years head's fit chooses from: first cut, second cut (years)
AGE_CUT_CANDIDATES = (range(25, 36), range(55, 63))


def fit_weights(
    member_logits: dict[str, np.ndarray],
    labels: np.ndarray,
    shares: np.ndarray | None = None,
    rounds: int = 20,
) -> dict[str, float]:
    """Model weights that maximise the soft vote's macro F1 on out-of-fold logits, classes decided
    as the submission decides them (`shares`), by greedy ensemble selection with replacement
    (Caruana et al. 2004): the best model alone, then `rounds` rounds each adding one more copy of
    the model whose addition scores best. The weights are the copy counts of the best-scoring of
    these votes over their total; ties go to the most even weights, then the earlier round and
    model. At most (rounds + 1) x models votes are scored, each set of weights once."""
    names = list(member_logits)
    probabilities = np.stack(
        [softmax(np.asarray(member_logits[name], dtype=np.float64), axis=1) for name in names]
    )
    scores: dict[tuple[int, ...], float] = {}

    def key(counts: np.ndarray) -> tuple[float, Fraction]:
        """The vote's macro F1, then minus the L1 distance of its weights to equal weights (exact)."""
        total, reduced = int(counts.sum()), tuple(int(c) for c in counts // np.gcd.reduce(counts))
        if reduced not in scores:  # counts in proportion are the same weights: scored once
            vote = np.tensordot(counts / total, probabilities, axes=1)
            scores[reduced] = macro_f1(labels, decide_classes(vote, shares))
        return scores[reduced], -Fraction(int(np.abs(counts * len(names) - total).sum()), len(names) * total)

    steps = np.eye(len(names), dtype=np.int64)
    counts = max(steps, key=key)  # max: the first of equal keys
    best = counts
    for _ in range(rounds):
        counts = max((counts + step for step in steps), key=key)
        if key(counts) > key(best):
            best = counts
    return {name: float(count / best.sum()) for name, count in zip(names, best, strict=True)}


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


def with_age_cuts(logits: np.ndarray, year_probabilities: np.ndarray, cuts: Sequence[int]) -> np.ndarray:
    """A years head's 18-class log-probabilities with its age bands cut at `cuts`: log p(mask,
    gender) from `logits` plus log P(band), the sum of the years' probabilities within the band
    (as heads.AgeYearsClassifier computes them)."""
    class_log_probs = log_softmax(np.asarray(logits, dtype=np.float64), axis=1)
    pairs = logsumexp(
        class_log_probs.reshape(-1, NUM_PAIRS, NUM_CLASSES // NUM_PAIRS), axis=2
    )  # 3 * pair + band
    bands = log_probabilities(np.asarray(year_probabilities, dtype=np.float64) @ band_of_year(cuts))
    return pairs[:, PAIR_OF_CLASS] + bands[:, BAND_OF_CLASS]


def fit_age_cuts(table: pd.DataFrame, shares: np.ndarray | None = None, rounds: int = 4) -> tuple[int, int]:
    """The age cuts (from AGE_CUT_CANDIDATES) at which a years head's out-of-fold predictions score
    the best macro F1, classes decided as the submission decides them (`shares`). Coordinate
    ascent from the competition's cuts: the best first cut at the current second, then the best
    second at that first, until neither moves (the first cut splits bands 0/1, the second 1/2)."""
    logits, years, labels = (
        table[list(LOGIT_COLUMNS)].to_numpy(),
        table[list(YEAR_COLUMNS)].to_numpy(),
        table["label"].to_numpy(),
    )
    scores: dict[tuple[int, int], float] = {}

    def score(cuts: tuple[int, int]) -> float:
        if cuts not in scores:
            scores[cuts] = macro_f1(
                labels, decide_classes(softmax(with_age_cuts(logits, years, cuts), axis=1), shares)
            )
        return scores[cuts]

    cuts = DEFAULT_AGE_BINS
    for _ in range(rounds):
        first = max(AGE_CUT_CANDIDATES[0], key=lambda cut: score((cut, cuts[1])))
        moved = (first, max(AGE_CUT_CANDIDATES[1], key=lambda cut: score((first, cut))))
        if moved == cuts:
            break
        cuts = moved
    return cuts


@dataclass(frozen=True)
class VotePlan:
    """What a vote takes from out-of-fold predictions: the model weights and each years head's age cuts."""

    weights: dict[str, float]
    age_cuts: dict[str, tuple[int, int]]

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

    def vote(self, by_model: dict[str, pd.DataFrame]) -> np.ndarray:
        """The soft vote's probabilities for the photos of `by_model` (tables in the same photo order)."""
        logits = self.member_logits(by_model)
        return soft_vote(list(logits.values()), [self.weights[model] for model in logits])


def fit_vote(
    by_model: dict[str, pd.DataFrame],
    shares: np.ndarray | None = None,
    weights: dict[str, float] | None = None,
    cut_models: Sequence[str] = (),
) -> VotePlan:
    """The vote fitted on out-of-fold tables: the age cuts of the years heads in `cut_models` (each
    on its own predictions; the others keep their training cuts), then the model weights (see
    fit_weights) unless `weights` are given. On no photos (a single fold's cross-fit) nothing is
    fitted: the training cuts, and the given or equal weights."""
    if not len(next(iter(by_model.values()))):
        return VotePlan(weights or dict.fromkeys(by_model, 1.0), {})
    cuts = {model: fit_age_cuts(by_model[model], shares) for model in cut_models if model in by_model}
    if weights is None:
        plan = VotePlan(dict.fromkeys(by_model, 1.0), cuts)
        weights = fit_weights(
            plan.member_logits(by_model), next(iter(by_model.values()))["label"].to_numpy(), shares
        )
    return VotePlan(weights, cuts)


def cross_fitted_vote(
    by_model: dict[str, pd.DataFrame],
    shares: np.ndarray | None = None,
    weights: dict[str, float] | None = None,
    cut_models: Sequence[str] = (),
) -> np.ndarray:
    """The vote's out-of-fold probabilities, each fold's from a plan fitted on the other folds only
    (see fit_vote): estimates of a vote fitted on all of them, as the submission's is, honest but
    for each member's epoch and weights, chosen on its own fold (see the module's docstring)."""
    folds = next(iter(by_model.values()))["fold"].to_numpy()
    probabilities = np.zeros((len(folds), NUM_CLASSES))
    for fold in np.unique(folds):
        held_out = folds == fold
        plan = fit_vote(
            {model: table[~held_out] for model, table in by_model.items()}, shares, weights, cut_models
        )
        probabilities[held_out] = plan.vote({model: table[held_out] for model, table in by_model.items()})
    return probabilities


def ensemble_oof(
    by_model: dict[str, pd.DataFrame],
    model_weights: dict[str, float] | None,
    shares: np.ndarray | None = None,
    cut_models: Sequence[str] = (),
) -> pd.DataFrame:
    """The soft-voted ensemble's out-of-fold answer for every photo: label and predicted class,
    cross-fitted (see cross_fitted_vote; weights fitted when `model_weights` is None) and decided
    as the submission's are (see decide_classes)."""
    first = next(iter(by_model.values()))
    predicted = decide_classes(cross_fitted_vote(by_model, shares, model_weights, cut_models), shares)
    return pd.DataFrame({"label": first["label"], "predicted": predicted}, index=first.index)
