"""What a vote fits on out-of-fold predictions, and how it is scored: the model weights (greedy
ensemble selection), per task or stacked, each model's temperature and a years head's age cuts,
fitted on all folds for the submission and cross-fitted for its scores (each fold's photos voted
by a fit on the other folds only, its classes matched to the other folds' class shares). The
train jobs' own choice (the last epoch by default) is fixed in advance; with a block's `keep:
best` it is made on the fold whose logits become its out-of-fold predictions (optimistic). The
vote itself and its decision are in facemask.vote."""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, logsumexp, softmax
from sklearn.linear_model import LogisticRegression

from facemask.files import Member
from facemask.labels import (
    BAND_OF_CLASS,
    DEFAULT_AGE_BINS,
    LOGIT_COLUMNS,
    NUM_CLASSES,
    NUM_PAIRS,
    PAIR_OF_CLASS,
    TASK_OF_CLASS,
    TASK_SIZES,
    TASKS,
    YEAR_COLUMNS,
    band_of_year,
)
from facemask.scores import macro_f1
from facemask.vote import Stacker, Vote, decide_classes, log_probabilities, task_marginals

#: the age cuts a years head's fit chooses from: first cut, second cut (years)
AGE_CUT_CANDIDATES = (range(25, 36), range(55, 63))


def greedy_weights(
    member_probabilities: Mapping[str, np.ndarray], score: Callable[[np.ndarray], float], rounds: int = 20
) -> dict[str, float]:
    """Weights of the members' probability tables that maximise `score` of their weighted mean, by
    greedy ensemble selection with replacement (Caruana et al. 2004): the best member alone, then
    `rounds` rounds each adding one more copy of the member whose addition scores best. The
    weights are the copy counts of the best-scoring of these votes over their total; ties go to
    the most even weights, then the earlier round and member. At most (rounds + 1) x members
    votes are scored, each set of weights once."""
    names = list(member_probabilities)
    probabilities = np.stack([member_probabilities[name] for name in names])
    scores: dict[tuple[int, ...], float] = {}

    def key(counts: np.ndarray) -> tuple[float, Fraction]:
        """The vote's score, then minus the L1 distance of its weights to equal weights (exact)."""
        total, reduced = int(counts.sum()), tuple(int(c) for c in counts // np.gcd.reduce(counts))
        if reduced not in scores:  # counts in proportion are the same weights: scored once
            scores[reduced] = score(np.tensordot(counts / total, probabilities, axes=1))
        return scores[reduced], -Fraction(int(np.abs(counts * len(names) - total).sum()), len(names) * total)

    steps = np.eye(len(names), dtype=np.int64)
    counts = max(steps, key=key)  # max: the first of equal keys
    best = counts
    for _ in range(rounds):
        counts = max((counts + step for step in steps), key=key)
        if key(counts) > key(best):
            best = counts
    return {name: float(count / best.sum()) for name, count in zip(names, best, strict=True)}


def fit_weights(
    member_logits: Mapping[str, np.ndarray],
    labels: np.ndarray,
    shares: np.ndarray | None = None,
    rounds: int = 20,
) -> dict[str, float]:
    """Model weights that maximise the soft vote's macro F1 on out-of-fold logits, classes decided
    as the submission decides them (`shares`); see greedy_weights."""
    probabilities = {
        name: softmax(np.asarray(logits, dtype=np.float64), axis=1) for name, logits in member_logits.items()
    }
    return greedy_weights(probabilities, lambda vote: macro_f1(labels, decide_classes(vote, shares)), rounds)


def fit_task_weights(
    model_votes: Mapping[str, np.ndarray], labels: np.ndarray, shares: np.ndarray | None = None
) -> dict[str, dict[str, float]]:
    """Per task (mask, gender, age), the model weights that maximise that task's macro F1 of the
    vote of the models' task probabilities, each task decided on its own (matched to its share
    of `shares` when given); see greedy_weights."""

    def task_f1(task: str) -> Callable[[np.ndarray], float]:
        truth = TASK_OF_CLASS[task][labels]
        task_shares = None if shares is None else np.bincount(TASK_OF_CLASS[task], shares, TASK_SIZES[task])
        return lambda vote: macro_f1(truth, decide_classes(vote, task_shares))

    return {
        task: greedy_weights(
            {model: task_marginals(vote, task) for model, vote in model_votes.items()}, task_f1(task)
        )
        for task in TASKS
    }


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T (0.1 to 10) that minimises the cross-entropy of softmax(logits / T) on
    out-of-fold `labels` (Guo et al. 2017)."""
    logits = np.asarray(logits, dtype=np.float64)

    def loss(log_t: float) -> float:
        return -log_softmax(logits / np.exp(log_t), axis=1)[np.arange(len(labels)), labels].mean()

    return float(np.exp(minimize_scalar(loss, bounds=(-np.log(10), np.log(10)), method="bounded").x))


def fit_stacker(model_votes: Mapping[str, np.ndarray], labels: np.ndarray, strength: float = 1.0) -> Stacker:
    """scikit-learn's multinomial logistic regression (L2, C = `strength`) of the labels on the
    models' log-probabilities; classes absent from `labels` get no weights and an intercept of -30."""
    models = tuple(model_votes)
    features = np.hstack([log_probabilities(model_votes[model]) for model in models])
    regression = LogisticRegression(C=strength, max_iter=2000).fit(features, labels)
    coef, intercept = np.zeros((NUM_CLASSES, features.shape[1])), np.full(NUM_CLASSES, -30.0)
    if len(regression.classes_) == 2:  # scikit-learn keeps one row for two classes
        coef[regression.classes_] = np.vstack([-regression.coef_, regression.coef_]) / 2
        intercept[regression.classes_] = np.r_[-regression.intercept_, regression.intercept_] / 2
    else:
        coef[regression.classes_], intercept[regression.classes_] = regression.coef_, regression.intercept_
    return Stacker(models, coef, intercept)


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


def fit_vote(
    by_model: dict[str, pd.DataFrame],
    shares: np.ndarray | None = None,
    weights: dict[str, float] | None = None,
    cut_models: Sequence[str] = (),
    combine: str = "mean",
    temperature: bool = False,
) -> VotePlan:
    """The vote fitted on out-of-fold tables, in this order: the age cuts of the years heads in
    `cut_models` (each on its own predictions; the others keep their training cuts), with
    `temperature` each model's temperature, then the model weights (see fit_weights) unless
    `weights` are given, and what `combine` needs (see vote.Vote): per task the weights of each
    task (fitted where the weights are, else the same for each task), or the stacker. Classes are
    decided as the submission decides them (`shares`). On no photos (a single fold's cross-fit)
    nothing is fitted: the training cuts, and the given or equal weights in a plain mean."""
    table = next(iter(by_model.values()))
    if not len(table):
        return VotePlan(Vote(weights or dict.fromkeys(by_model, 1.0)), {})
    labels = table["label"].to_numpy()
    cuts = {model: fit_age_cuts(by_model[model], shares) for model in cut_models if model in by_model}
    logits = VotePlan(Vote({}), cuts).member_logits(by_model)
    temperatures = {model: fit_temperature(logits[model], labels) for model in logits} if temperature else {}
    tempered = {model: logits[model] / temperatures.get(model, 1.0) for model in logits}
    votes = {model: softmax(tempered[model], axis=1) for model in logits}  # each model's vote (see Vote)
    fitted = weights is None
    used = weights or fit_weights(tempered, labels, shares)
    task_weights: dict[str, dict[str, float]] = {}
    stacker = None
    if combine == "tasks":
        task_weights = fit_task_weights(votes, labels, shares) if fitted else dict.fromkeys(TASKS, used)
    if combine == "stack":
        stacker = fit_stacker(votes, labels)
    return VotePlan(Vote(used, temperatures, combine, task_weights, stacker), cuts)


def other_folds_shares(
    labels: np.ndarray, held_out: np.ndarray, shares: np.ndarray | None
) -> np.ndarray | None:
    """The class shares of the training photos outside the fold `held_out` (`labels`: the
    out-of-fold rows), None when classes are not matched (`shares` None). Given the class counts of
    every training photo (vote.class_shares_to_match), those less the fold's own: exact also where
    the out-of-fold rows hold only some folds (a run of one fold has no other fold's rows). Given
    shares, those of the other folds' out-of-fold rows."""
    if shares is None:
        return None
    others = shares - np.bincount(labels[held_out], minlength=len(shares))
    if np.isclose(shares.sum(), 1.0) or (others < 0).any():
        others = np.bincount(labels[~held_out], minlength=len(shares)).astype(float)
    return others / others.sum()


def cross_fitted_vote(
    by_model: dict[str, pd.DataFrame], shares: np.ndarray | None = None, **fit
) -> np.ndarray:
    """The vote's out-of-fold probabilities, each fold's from a plan fitted on the other folds only
    (see fit_vote and its options `fit`; classes matched to the other folds' shares when `shares`
    are given): estimates of a vote fitted on all of them, as the submission's is."""
    folds, labels = (next(iter(by_model.values()))[column].to_numpy() for column in ("fold", "label"))
    probabilities = np.zeros((len(folds), NUM_CLASSES))
    for fold in np.unique(folds):
        held_out = folds == fold
        plan = fit_vote(
            {model: table[~held_out] for model, table in by_model.items()},
            other_folds_shares(labels, held_out, shares),
            **fit,
        )
        probabilities[held_out] = plan.probabilities(
            {model: table[held_out] for model, table in by_model.items()}
        )
    return probabilities


def decide_out_of_fold(
    probabilities: np.ndarray, labels: np.ndarray, folds: np.ndarray, shares: np.ndarray | None = None
) -> np.ndarray:
    """Out-of-fold classes decided as the submission's are, each fold on its own: matched to the
    class shares of the other folds when `shares` are given (so no fold's decision sees its own
    labels), else the plain argmax."""
    decided = np.zeros(len(labels), dtype=int)
    for fold in np.unique(folds):
        held_out = folds == fold
        decided[held_out] = decide_classes(
            probabilities[held_out], other_folds_shares(labels, held_out, shares)
        )
    return decided


def ensemble_oof(by_model: dict[str, pd.DataFrame], shares: np.ndarray | None = None, **fit) -> pd.DataFrame:
    """The vote's out-of-fold answer for every photo: label and predicted class, cross-fitted (see
    cross_fitted_vote; `fit`: fit_vote's options) and decided as the submission's are (see
    decide_out_of_fold)."""
    first = next(iter(by_model.values()))
    labels, folds = first["label"].to_numpy(), first["fold"].to_numpy()
    predicted = decide_out_of_fold(cross_fitted_vote(by_model, shares, **fit), labels, folds, shares)
    return pd.DataFrame({"label": first["label"], "predicted": predicted}, index=first.index)
