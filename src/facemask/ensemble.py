"""Soft vote: the weighted mean of the members' softmax probabilities, with weights given or
fitted on out-of-fold predictions, and the classes decided from it, optionally matched to the
training photos' class shares. What is fitted on out-of-fold predictions (model weights, a years
head's age cuts) is scored cross-fitted: each fold by a fit on the other folds only."""

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pandas as pd
from scipy.special import log_softmax, logsumexp, softmax

from facemask.errors import PipelineError
from facemask.labels import DEFAULT_AGE_BINS, LOGIT_COLUMNS, NUM_CLASSES, YEAR_COLUMNS
from facemask.scores import macro_f1

#: the age cuts a years head's fit chooses from: first cut, second cut (years)
AGE_CUT_CANDIDATES = (range(25, 36), range(55, 63))


def soft_vote(member_logits: Sequence[np.ndarray], weights: Sequence[float] | None = None) -> np.ndarray:
    """Weighted mean of softmax(logits) over members (equal weights by default); rows sum to 1."""
    if not member_logits:
        raise ValueError("soft vote needs at least one member")
    weights = np.ones(len(member_logits)) if weights is None else np.asarray(weights, dtype=float)
    if len(weights) != len(member_logits) or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"soft vote weights {list(weights)} must be {len(member_logits)} non-negative numbers, not all 0")
    probabilities = np.stack([softmax(np.asarray(l, dtype=np.float64), axis=1) for l in member_logits])
    return np.tensordot(weights / weights.sum(), probabilities, axes=1)


def class_shares(labels) -> np.ndarray:
    """The share of each of the 18 classes among `labels`."""
    labels = np.asarray(labels, dtype=int)
    return np.bincount(labels, minlength=NUM_CLASSES) / len(labels)


def read_class_shares(index_csv) -> np.ndarray:
    """The 18 class shares of the training photos listed in an index (its `label` column)."""
    return class_shares(pd.read_csv(index_csv, usecols=["label"])["label"])


def class_share_offsets(log_probabilities: np.ndarray, shares: np.ndarray, steps: int = 300, step_size: float = 0.2) -> np.ndarray:
    """Log-probability offsets per class that make the argmax predict each class about as often as
    `shares` says: each step moves a class's offset by the log ratio of its wanted to its predicted
    share. Averaging many models pulls uncertain photos toward the common classes; this undoes that
    for the rare ones (e.g. age 60+), whose F1 counts as much as any other in the macro F1.
    Returns the offsets whose predicted shares came closest (L1) to `shares` (the first such; it
    stops at a gap of 0, which no later step can beat). The offsets use no labels: they are found
    on the very photos they decide (out-of-fold or eval), so scores of decisions matched this way
    need no cross-fitting.
    Each step decides again only the photos it can move: those whose lead (log-probability of their
    class at offsets 0 over their runner-up's) is at most the largest offset minus their class's
    (plus 1e-9 for rounding); the others keep that class, as the full argmax gives them."""
    floor, classes = 0.5 / len(log_probabilities), log_probabilities.shape[1]
    wanted = np.log(np.maximum(shares, floor))
    top, lead = log_probabilities.argmax(axis=1), _lead(log_probabilities)
    offsets, best, best_gap = np.zeros(classes), None, np.inf
    for _ in range(steps):
        movable = lead <= (offsets.max() - offsets + 1e-9)[top]
        decided = (log_probabilities[movable] + offsets).argmax(axis=1)
        counts = np.bincount(top[~movable], minlength=classes) + np.bincount(decided, minlength=classes)
        predicted = counts / len(log_probabilities)
        gap = np.abs(predicted - shares).sum()
        if gap < best_gap:
            best, best_gap = offsets.copy(), gap
            if gap == 0:
                break
        offsets += step_size * (wanted - np.log(np.maximum(predicted, floor)))
    return best


def _lead(log_probabilities: np.ndarray) -> np.ndarray:
    """Each row's largest value minus its second largest (NaN for a row with a NaN)."""
    two = np.partition(log_probabilities, -2, axis=1)[:, -2:]
    return two[:, 1] - two[:, 0]


def log_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """The log of probabilities, floored at 1e-12."""
    return np.log(np.clip(probabilities, 1e-12, None))


def decide_classes(probabilities: np.ndarray, shares: np.ndarray | None = None, offsets: np.ndarray | None = None) -> np.ndarray:
    """Each row's class: the argmax of the log-probabilities plus class offsets, either given
    (`offsets`, e.g. an ensemble bundle's) or fitted to the wanted class `shares`; the plain
    argmax with neither."""
    if shares is None and offsets is None:
        return probabilities.argmax(axis=1)
    log_p = log_probabilities(probabilities)
    return (log_p + (class_share_offsets(log_p, shares) if offsets is None else offsets)).argmax(axis=1)


def fold_weights(members: Sequence[tuple[str, int]], model_weights: dict[str, float]) -> list[float]:
    """Each (model, fold) member's weight: its model's weight shared equally among its folds."""
    folds_per_model = pd.Series([model for model, _ in members]).value_counts()
    return [model_weights[model] / folds_per_model[model] for model, _ in members]


def vote_probabilities(
    eval_logits: dict[tuple[str, int], pd.DataFrame], model_weights: dict[str, float], image_ids: Sequence[str]
) -> np.ndarray:
    """The soft vote's 18 probabilities of every photo, in `image_ids` order, from every member's
    eval logit table (ImageID and the logit columns)."""
    aligned = []
    for member, table in eval_logits.items():
        table = table.set_index("ImageID")
        if set(table.index) != set(image_ids) or len(table) != len(image_ids):
            raise PipelineError(f"eval logits of {member} do not cover exactly the ImageIDs of info.csv")
        aligned.append(table.loc[list(image_ids), list(LOGIT_COLUMNS)].to_numpy())
    return soft_vote(aligned, fold_weights(list(eval_logits), model_weights))


def vote_eval_predictions(
    eval_logits: dict[tuple[str, int], pd.DataFrame], model_weights: dict[str, float], image_ids: Sequence[str],
    shares: np.ndarray | None = None, offsets: np.ndarray | None = None,
) -> pd.DataFrame:
    """The submission (ImageID, ans) in `image_ids` order from every member's eval logit table,
    classes decided with the given `offsets` or matched to the class `shares` (see `decide_classes`)."""
    probabilities = vote_probabilities(eval_logits, model_weights, image_ids)
    return pd.DataFrame({"ImageID": list(image_ids), "ans": decide_classes(probabilities, shares, offsets)})


def vote_each_model_alone(
    eval_logits: dict[tuple[str, int], pd.DataFrame], image_ids: Sequence[str], shares: np.ndarray | None = None,
) -> dict[str, pd.DataFrame]:
    """Each model's own submission: the vote of its folds alone, classes decided as the ensemble's are."""
    return {model: vote_eval_predictions({member: table for member, table in eval_logits.items() if member[0] == model},
                                         {model: 1.0}, image_ids, shares)
            for model in sorted({model for model, _ in eval_logits})}


def check_submission(submission: pd.DataFrame, image_ids: Sequence[str]) -> None:
    """Raise unless `submission` has the columns ImageID,ans, exactly `image_ids` in that order,
    and an integer class 0..17 in every row."""
    problems = []
    if list(submission.columns) != ["ImageID", "ans"]:
        problems.append(f"columns are {list(submission.columns)}, not ['ImageID', 'ans']")
    elif list(submission["ImageID"]) != list(image_ids):
        problems.append(f"ImageIDs differ from info.csv's {len(image_ids)} rows in order or content")
    else:
        answers = pd.to_numeric(submission["ans"], errors="coerce")
        bad = submission["ImageID"][answers.isna() | (answers % 1 != 0) | ~answers.between(0, NUM_CLASSES - 1)]
        if len(bad):
            problems.append(f"{len(bad)} answer(s) not an integer 0..{NUM_CLASSES - 1}, e.g. for {bad.iloc[0]}")
    if problems:
        raise PipelineError("submission not written: " + "; ".join(problems))


def fit_weights(member_logits: dict[str, np.ndarray], labels: np.ndarray, shares: np.ndarray | None = None,
                rounds: int = 20) -> dict[str, float]:
    """Model weights that maximise the soft vote's macro F1 on out-of-fold logits, classes decided
    as the submission decides them (`shares`), by greedy ensemble selection with replacement
    (Caruana et al. 2004): the best model alone, then `rounds` rounds each adding one more copy of
    the model whose addition scores best. The weights are the copy counts of the best-scoring of
    these votes over their total; ties go to the most even weights, then the earlier round and
    model. At most (rounds + 1) x models votes are scored, each set of weights once."""
    names = list(member_logits)
    probabilities = np.stack([softmax(np.asarray(member_logits[name], dtype=np.float64), axis=1) for name in names])
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
    return {name: float(count / best.sum()) for name, count in zip(names, best)}


def oof_by_model(oof_logits: dict[tuple[str, int], pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Each model's out-of-fold tables of all its folds in one (with their `fold`), indexed by
    photo path; every model must cover the same photos."""
    by_model: dict[str, list] = {}
    for (model, fold), table in sorted(oof_logits.items()):
        by_model.setdefault(model, []).append(table.assign(fold=fold))
    joined = {model: pd.concat(tables).set_index("path").sort_index() for model, tables in by_model.items()}
    paths = next(iter(joined.values())).index
    for model, table in joined.items():
        if not table.index.equals(paths):
            raise ValueError(f"out-of-fold predictions of {model!r} cover other photos than the first model's")
    return joined


def with_age_cuts(logits: np.ndarray, year_probabilities: np.ndarray, cuts: Sequence[int]) -> np.ndarray:
    """A years head's 18-class log-probabilities with its age bands cut at `cuts`: log p(mask,
    gender) from `logits` plus log P(band), the sum of the years' probabilities within the band
    (as models.AgeYearsClassifier computes them)."""
    pairs = logsumexp(log_softmax(np.asarray(logits, dtype=np.float64), axis=1).reshape(-1, 6, 3), axis=2)
    below = np.cumsum(year_probabilities, axis=1)[:, [cuts[0] - 1, cuts[1] - 1]]
    bands = np.stack([below[:, 0], below[:, 1] - below[:, 0], 1 - below[:, 1]], axis=1)
    return (pairs[:, :, None] + log_probabilities(bands)[:, None, :]).reshape(-1, NUM_CLASSES)


def fit_age_cuts(table: pd.DataFrame, shares: np.ndarray | None = None, rounds: int = 4) -> tuple[int, int]:
    """The age cuts (from AGE_CUT_CANDIDATES) at which a years head's out-of-fold predictions score
    the best macro F1, classes decided as the submission decides them (`shares`). Coordinate
    ascent from the competition's cuts: the best first cut at the current second, then the best
    second at that first, until neither moves (the first cut splits bands 0/1, the second 1/2)."""
    logits, years, labels = table[list(LOGIT_COLUMNS)].to_numpy(), table[list(YEAR_COLUMNS)].to_numpy(), table["label"].to_numpy()
    scores: dict[tuple[int, int], float] = {}

    def score(cuts: tuple[int, int]) -> float:
        if cuts not in scores:
            scores[cuts] = macro_f1(labels, decide_classes(softmax(with_age_cuts(logits, years, cuts), axis=1), shares))
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
        return {model: with_age_cuts(table[list(LOGIT_COLUMNS)].to_numpy(), table[list(YEAR_COLUMNS)].to_numpy(), self.age_cuts[model])
                if model in self.age_cuts else table[list(LOGIT_COLUMNS)].to_numpy() for model, table in by_model.items()}

    def vote(self, by_model: dict[str, pd.DataFrame]) -> np.ndarray:
        """The soft vote's probabilities for the photos of `by_model` (tables in the same photo order)."""
        logits = self.member_logits(by_model)
        return soft_vote(list(logits.values()), [self.weights[model] for model in logits])


def fit_vote(by_model: dict[str, pd.DataFrame], shares: np.ndarray | None = None,
             weights: dict[str, float] | None = None, cut_models: Sequence[str] = ()) -> VotePlan:
    """The vote fitted on out-of-fold tables: the age cuts of the years heads in `cut_models` (each
    on its own predictions; the others keep their training cuts), then the model weights (see
    fit_weights) unless `weights` are given. On no photos (a single fold's cross-fit) nothing is
    fitted: the training cuts, and the given or equal weights."""
    if not len(next(iter(by_model.values()))):
        return VotePlan(weights or dict.fromkeys(by_model, 1.0), {})
    cuts = {model: fit_age_cuts(by_model[model], shares) for model in cut_models if model in by_model}
    if weights is None:
        plan = VotePlan(dict.fromkeys(by_model, 1.0), cuts)
        weights = fit_weights(plan.member_logits(by_model), next(iter(by_model.values()))["label"].to_numpy(), shares)
    return VotePlan(weights, cuts)


def cross_fitted_vote(by_model: dict[str, pd.DataFrame], shares: np.ndarray | None = None,
                      weights: dict[str, float] | None = None, cut_models: Sequence[str] = ()) -> np.ndarray:
    """The vote's out-of-fold probabilities, each fold's from a plan fitted on the other folds only
    (see fit_vote): honest estimates of a vote fitted on all of them, as the submission's is."""
    folds = next(iter(by_model.values()))["fold"].to_numpy()
    probabilities = np.zeros((len(folds), NUM_CLASSES))
    for fold in np.unique(folds):
        held_out = folds == fold
        plan = fit_vote({model: table[~held_out] for model, table in by_model.items()}, shares, weights, cut_models)
        probabilities[held_out] = plan.vote({model: table[held_out] for model, table in by_model.items()})
    return probabilities


def ensemble_oof(
    by_model: dict[str, pd.DataFrame], model_weights: dict[str, float] | None, shares: np.ndarray | None = None,
    cut_models: Sequence[str] = (),
) -> pd.DataFrame:
    """The soft-voted ensemble's out-of-fold answer for every photo: label and predicted class,
    cross-fitted (see cross_fitted_vote; weights fitted when `model_weights` is None) and decided
    as the submission's are (see decide_classes)."""
    first = next(iter(by_model.values()))
    predicted = decide_classes(cross_fitted_vote(by_model, shares, model_weights, cut_models), shares)
    return pd.DataFrame({"label": first["label"], "predicted": predicted}, index=first.index)
