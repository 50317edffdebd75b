"""The ways the models' votes combine into the vote's 18 probabilities: one registered class each
(COMBINERS, whose keys are the schema's `ensemble.combine`), which owns what it fits on the
out-of-fold predictions, its probabilities, and its entry in the ensemble bundle. A new way to
combine is one class here and its name in the schema's enum."""

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.special import softmax

from facemask.classes.decision import decide_classes, log_probabilities
from facemask.classes.labels import NUM_CLASSES, TASK_OF_CLASS, TASK_SIZES, TASKS
from facemask.classes.scores import macro_f1
from facemask.ensemble.weights import greedy_weights
from facemask.utils.errors import PipelineError


def soft_vote_probabilities(
    probabilities: Sequence[np.ndarray], weights: Sequence[float] | np.ndarray
) -> np.ndarray:
    """The weighted mean of probability tables (weights non-negative, not all 0)."""
    given = np.asarray(weights, dtype=float)
    return np.tensordot(given / given.sum(), np.stack(probabilities), axes=1)


def task_marginals(probabilities: np.ndarray, task: str) -> np.ndarray:
    """The probabilities of each value of `task` (mask, gender or age): sums over the 18 classes."""
    marginals = np.zeros((len(probabilities), TASK_SIZES[task]))
    np.add.at(marginals.T, TASK_OF_CLASS[task], probabilities.T)
    return marginals


class Combiner(ABC):
    """How the models' votes (each model's 18 probabilities, by model) become the vote's."""

    #: the name of the way to combine: its key in COMBINERS and the config's `ensemble.combine`
    name: ClassVar[str]
    #: whether it fits something of its own on the out-of-fold predictions even at given weights
    fits_always: ClassVar[bool] = False

    @abstractmethod
    def probabilities(self, votes: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
        """The vote's 18 probabilities from the models' `votes`, with the vote's model `weights`."""

    @classmethod
    def fit(
        cls, votes: Mapping[str, np.ndarray], labels: np.ndarray, shares: np.ndarray | None, fit_weights: bool
    ) -> "Combiner":
        """The combiner fitted on out-of-fold `votes` and `labels`, classes decided as the submission
        decides them (`shares`); `fit_weights`: whether the vote fits its weights too."""
        return cls()

    def as_config(self) -> dict:
        """What the ensemble bundle stores of it besides its name (see from_config)."""
        return {}

    @classmethod
    def from_config(cls, plain: Mapping) -> "Combiner":
        return cls()


@dataclass(frozen=True)
class MeanVote(Combiner):
    """'mean': the models' votes weighted by the vote's weights."""

    name = "mean"

    def probabilities(self, votes: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
        return soft_vote_probabilities(list(votes.values()), [weights[model] for model in votes])


@dataclass(frozen=True)
class TaskVote(Combiner):
    """'tasks': per task (mask, gender, age) the task's probabilities weighted by that task's
    `task_weights` (fitted where the vote fits its weights; else the vote's weights for every
    task), multiplied back into 18 classes, so that the argmax decides each task by its own vote."""

    name = "tasks"
    task_weights: Mapping[str, Mapping[str, float]] = dataclasses.field(default_factory=dict)

    def probabilities(self, votes: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
        joint = np.ones((len(next(iter(votes.values()))), NUM_CLASSES))
        for task in TASKS:
            task_weights = self.task_weights.get(task, weights)
            task_vote = soft_vote_probabilities(
                [task_marginals(votes[model], task) for model in votes],
                [task_weights[model] for model in votes],
            )
            joint *= task_vote[:, TASK_OF_CLASS[task]]
        return joint

    @classmethod
    def fit(cls, votes, labels, shares, fit_weights) -> "TaskVote":
        return cls(fit_task_weights(votes, labels, shares)) if fit_weights else cls()

    def as_config(self) -> dict:
        return {"task_weights": {task: dict(weights) for task, weights in self.task_weights.items()}}

    @classmethod
    def from_config(cls, plain: Mapping) -> "TaskVote":
        return cls(dict(plain.get("task_weights") or {}))


@dataclass(frozen=True)
class StackVote(Combiner):
    """'stack': a multinomial logistic regression on the models' log-probabilities, in `models`
    order (18 columns each): coefficients (18 classes x 18 * models) and intercepts (18)."""

    name = "stack"
    fits_always = True
    models: tuple[str, ...]
    coef: np.ndarray
    intercept: np.ndarray

    def probabilities(self, votes: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
        features = np.hstack([log_probabilities(votes[model]) for model in self.models])
        return softmax(features @ self.coef.T + self.intercept, axis=1)

    @classmethod
    def fit(cls, votes, labels, shares, fit_weights) -> "StackVote":
        return fit_stacker(votes, labels)

    def as_config(self) -> dict:
        stacker = {
            "models": list(self.models),
            "coef": self.coef.tolist(),
            "intercept": self.intercept.tolist(),
        }
        return {"stacker": stacker}

    @classmethod
    def from_config(cls, plain: Mapping) -> "StackVote":
        stacker = plain["stacker"]
        return cls(tuple(stacker["models"]), np.asarray(stacker["coef"]), np.asarray(stacker["intercept"]))


#: every way to combine, by its name (the schema's enum of `ensemble.combine`)
COMBINERS: dict[str, type[Combiner]] = {kind.name: kind for kind in (MeanVote, TaskVote, StackVote)}


def combiner_named(name: str) -> type[Combiner]:
    """The way to combine called `name`, or a clear error listing them."""
    if name not in COMBINERS:
        raise PipelineError(
            f"ensemble.combine: {name!r} is not a way to combine (one of {', '.join(COMBINERS)})"
        )
    return COMBINERS[name]


def fit_task_weights(
    model_votes: Mapping[str, np.ndarray], labels: np.ndarray, shares: np.ndarray | None = None
) -> dict[str, dict[str, float]]:
    """Per task (mask, gender, age), the model weights that maximise that task's macro F1 of the
    vote of the models' task probabilities, each task decided on its own (matched to its share
    of `shares` when given); see weights.greedy_weights."""

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


def fit_stacker(
    model_votes: Mapping[str, np.ndarray], labels: np.ndarray, strength: float = 1.0
) -> StackVote:
    """scikit-learn's multinomial logistic regression (L2, C = `strength`) of the labels on the
    models' log-probabilities; classes absent from `labels` get no weights and an intercept of -30."""
    from sklearn.linear_model import LogisticRegression  # here: sklearn costs every Snakemake load 1 s

    models = tuple(model_votes)
    features = np.hstack([log_probabilities(model_votes[model]) for model in models])
    regression = LogisticRegression(C=strength, max_iter=2000).fit(features, labels)
    coef, intercept = np.zeros((NUM_CLASSES, features.shape[1])), np.full(NUM_CLASSES, -30.0)
    if len(regression.classes_) == 2:  # scikit-learn keeps one row for two classes
        coef[regression.classes_] = np.vstack([-regression.coef_, regression.coef_]) / 2
        intercept[regression.classes_] = np.r_[-regression.intercept_, regression.intercept_] / 2
    else:
        coef[regression.classes_], intercept[regression.classes_] = regression.coef_, regression.intercept_
    return StackVote(models, coef, intercept)
