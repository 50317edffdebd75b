"""The soft vote: the weighted mean of the members' softmax probabilities (or, as a Vote says, per
task, or stacked), and the classes decided from it, optionally matched to the training photos'
class shares; the submission it makes and its check. What a vote fits on out-of-fold
predictions is in facemask.oof_fit."""

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import softmax

from facemask.errors import PipelineError
from facemask.files import Member
from facemask.labels import LOGIT_COLUMNS, NUM_CLASSES, TASK_OF_CLASS, TASK_SIZES


def soft_vote(member_logits: Sequence[np.ndarray], weights: Sequence[float] | None = None) -> np.ndarray:
    """Weighted mean of softmax(logits) over members (equal weights by default); rows sum to 1."""
    if not member_logits:
        raise ValueError("soft vote needs at least one member")
    given = np.ones(len(member_logits)) if weights is None else np.asarray(weights, dtype=float)
    if len(given) != len(member_logits) or (given < 0).any() or given.sum() <= 0:
        raise ValueError(
            f"soft vote weights {list(given)} must be {len(member_logits)} non-negative numbers, not all 0"
        )
    return soft_vote_probabilities(
        [softmax(np.asarray(logits, dtype=np.float64), axis=1) for logits in member_logits], given
    )


def task_marginals(probabilities: np.ndarray, task: str) -> np.ndarray:
    """The probabilities of each value of `task` (mask, gender or age): sums over the 18 classes."""
    marginals = np.zeros((len(probabilities), TASK_SIZES[task]))
    np.add.at(marginals.T, TASK_OF_CLASS[task], probabilities.T)
    return marginals


@dataclass(frozen=True)
class Stacker:
    """A multinomial logistic regression on the models' log-probabilities, in `models` order (18
    columns each): coefficients (18 classes x 18 * models) and intercepts (18)."""

    models: tuple[str, ...]
    coef: np.ndarray
    intercept: np.ndarray

    def probabilities(self, model_votes: Mapping[str, np.ndarray]) -> np.ndarray:
        features = np.hstack([log_probabilities(model_votes[model]) for model in self.models])
        return softmax(features @ self.coef.T + self.intercept, axis=1)

    def as_config(self) -> dict:
        return {"models": list(self.models), "coef": self.coef.tolist(), "intercept": self.intercept.tolist()}


@dataclass(frozen=True)
class Vote:
    """How the members' logits become the vote's 18 probabilities. Each model's own vote first:
    the mean softmax of its folds' logits divided by its temperature (1 where none is given).
    Then, by `combine`: 'mean', the models' votes weighted by `weights`; 'tasks', per task (mask,
    gender, age) the task's probabilities weighted by that task's `task_weights`, multiplied back
    into 18 classes (so the argmax decides each task by its own vote); 'stack', `stacker` on
    the models' log-probabilities."""

    weights: Mapping[str, float]
    temperatures: Mapping[str, float] = dataclasses.field(default_factory=dict)
    combine: str = "mean"
    task_weights: Mapping[str, Mapping[str, float]] = dataclasses.field(default_factory=dict)
    stacker: Stacker | None = None

    def model_vote(self, model: str, member_logits: Sequence[np.ndarray]) -> np.ndarray:
        """One model's vote: the mean softmax of its members' logits at its temperature."""
        temperature = self.temperatures.get(model, 1.0)
        return soft_vote([np.asarray(logits, dtype=np.float64) / temperature for logits in member_logits])

    def probabilities(self, logits_of_model: Mapping[str, Sequence[np.ndarray]]) -> np.ndarray:
        """The vote's probabilities from each model's members' logits (rows: the same photos)."""
        votes = {model: self.model_vote(model, logits) for model, logits in logits_of_model.items()}
        if self.combine == "stack":
            return self.stacker.probabilities(votes)  # type: ignore[union-attr]  # fitted with 'stack'
        if self.combine == "tasks":
            joint = np.ones((len(next(iter(votes.values()))), NUM_CLASSES))
            for task, weights in self.task_weights.items():
                task_vote = soft_vote_probabilities(
                    [task_marginals(votes[model], task) for model in votes],
                    [weights[model] for model in votes],
                )
                joint *= task_vote[:, TASK_OF_CLASS[task]]
            return joint
        return soft_vote_probabilities(list(votes.values()), [self.weights[model] for model in votes])

    def as_config(self) -> dict:
        """Plain data for the ensemble bundle (see from_config)."""
        return {
            "weights": dict(self.weights),
            "temperatures": dict(self.temperatures),
            "combine": self.combine,
            "task_weights": {task: dict(weights) for task, weights in self.task_weights.items()},
            "stacker": None if self.stacker is None else self.stacker.as_config(),
        }

    @classmethod
    def from_config(cls, plain: Mapping) -> "Vote":
        stacker = plain.get("stacker")
        return cls(
            weights=dict(plain["weights"]),
            temperatures=dict(plain.get("temperatures", {})),
            combine=plain.get("combine", "mean"),
            task_weights=dict(plain.get("task_weights", {})),
            stacker=None
            if stacker is None
            else Stacker(
                tuple(stacker["models"]), np.asarray(stacker["coef"]), np.asarray(stacker["intercept"])
            ),
        )


def soft_vote_probabilities(
    probabilities: Sequence[np.ndarray], weights: Sequence[float] | np.ndarray
) -> np.ndarray:
    """The weighted mean of probability tables (weights non-negative, not all 0)."""
    given = np.asarray(weights, dtype=float)
    return np.tensordot(given / given.sum(), np.stack(probabilities), axes=1)


def class_shares(labels) -> np.ndarray:
    """The share of each of the 18 classes among `labels`."""
    labels = np.asarray(labels, dtype=int)
    return np.bincount(labels, minlength=NUM_CLASSES) / len(labels)


def class_counts(labels) -> np.ndarray:
    """How many of `labels` are of each of the 18 classes, as floats."""
    return np.bincount(np.asarray(labels, dtype=int), minlength=NUM_CLASSES).astype(float)


def read_class_shares(index_csv) -> np.ndarray:
    """The 18 class shares of the training photos listed in an index (its `label` column)."""
    return class_shares(pd.read_csv(index_csv, usecols=["label"])["label"])


def class_shares_to_match(index_csv, match_class_shares: bool) -> np.ndarray | None:
    """What decisions are matched to (see decide_classes): with `match_class_shares` (config
    ensemble.match_class_shares) the class counts of the training photos listed in the index
    `index_csv` (counts, not shares, so that out-of-fold decisions can take a fold's own photos
    out of them: facemask.oof_fit.other_folds_shares), else None (the plain argmax)."""
    return class_counts(pd.read_csv(index_csv, usecols=["label"])["label"]) if match_class_shares else None


def class_share_offsets(
    log_probabilities: np.ndarray, shares: np.ndarray, steps: int = 300, step_size: float = 0.2
) -> np.ndarray:
    """Log-probability offsets per class that make the argmax predict each class about as often as
    `shares` says (shares or counts: any scale): each step moves a class's offset by the log ratio
    of its wanted to its predicted share. Averaging many models pulls uncertain photos toward the
    common classes; this undoes that for the rare ones (e.g. age 60+), whose F1 counts as much as
    any other in the macro F1.
    Returns the offsets whose predicted shares came closest (L1) to `shares` (the first such; it
    stops at a gap of 0, which no later step can beat). The offsets use no labels: they are found
    on the very photos they decide (out-of-fold or eval), so scores of decisions matched this way
    need no cross-fitting.
    Each step decides again only the photos it can move: those whose lead (log-probability of their
    class at offsets 0 over their runner-up's) is at most the largest offset minus their class's
    (plus 1e-9 for rounding); the others keep that class, as the full argmax gives them."""
    floor, classes = 0.5 / len(log_probabilities), log_probabilities.shape[1]
    if not np.isclose(shares.sum(), 1.0):  # counts: their shares, as class_shares computes them
        shares = shares / shares.sum()
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
    return best  # type: ignore[return-value]  # the first step's gap beats inf (NaN shares aside)


def _lead(log_probabilities: np.ndarray) -> np.ndarray:
    """Each row's largest value minus its second largest (NaN for a row with a NaN)."""
    two = np.partition(log_probabilities, -2, axis=1)[:, -2:]
    return two[:, 1] - two[:, 0]


def log_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """The log of probabilities, floored at 1e-12."""
    return np.log(np.clip(probabilities, 1e-12, None))


def decide_classes(
    probabilities: np.ndarray, shares: np.ndarray | None = None, offsets: np.ndarray | None = None
) -> np.ndarray:
    """Each row's class: the argmax of the log-probabilities plus class offsets, either given
    (`offsets`, e.g. an ensemble bundle's) or fitted to the wanted class `shares`; the plain
    argmax with neither."""
    if shares is None and offsets is None:
        return probabilities.argmax(axis=1)
    log_p = log_probabilities(probabilities)
    if offsets is None:
        offsets = class_share_offsets(log_p, shares)  # type: ignore[arg-type]  # given when offsets are not
    return (log_p + offsets).argmax(axis=1)


def fold_weights(members: Sequence[Member], model_weights: Mapping[str, float]) -> list[float]:
    """Each (model, fold) member's weight: its model's weight shared equally among its folds."""
    folds_per_model = pd.Series([model for model, _ in members]).value_counts()
    return [model_weights[model] / folds_per_model[model] for model, _ in members]


def by_model(member_logits: Mapping[Member, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """The members' logits grouped by model, in the members' order."""
    grouped: dict[str, list[np.ndarray]] = {}
    for (model, _), logits in member_logits.items():
        grouped.setdefault(model, []).append(logits)
    return grouped


def vote_probabilities(
    eval_logits: dict[Member, pd.DataFrame],
    vote: Vote,
    image_ids: Sequence[str],
) -> np.ndarray:
    """The vote's 18 probabilities of every photo, in `image_ids` order, from every member's eval
    logit table (ImageID and the logit columns)."""
    aligned = {}
    for member, table in eval_logits.items():
        table = table.set_index("ImageID")
        if set(table.index) != set(image_ids) or len(table) != len(image_ids):
            raise PipelineError(f"eval logits of {member} do not cover exactly the ImageIDs of info.csv")
        aligned[member] = table.loc[list(image_ids), list(LOGIT_COLUMNS)].to_numpy()
    return vote.probabilities(by_model(aligned))


def vote_eval_predictions(
    eval_logits: dict[Member, pd.DataFrame],
    vote: Vote,
    image_ids: Sequence[str],
    shares: np.ndarray | None = None,
    offsets: np.ndarray | None = None,
) -> pd.DataFrame:
    """The submission (ImageID, ans) in `image_ids` order from every member's eval logit table,
    classes decided with the given `offsets` or matched to the class `shares` (see `decide_classes`)."""
    probabilities = vote_probabilities(eval_logits, vote, image_ids)
    return pd.DataFrame({"ImageID": list(image_ids), "ans": decide_classes(probabilities, shares, offsets)})


def vote_each_model_alone(
    eval_logits: dict[Member, pd.DataFrame],
    image_ids: Sequence[str],
    shares: np.ndarray | None = None,
) -> dict[str, pd.DataFrame]:
    """Each model's own submission: the vote of its folds alone, classes decided as the ensemble's are."""
    return {
        model: vote_eval_predictions(
            {member: table for member, table in eval_logits.items() if member[0] == model},
            Vote({model: 1.0}),
            image_ids,
            shares,
        )
        for model in sorted({model for model, _ in eval_logits})
    }


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
        bad = submission["ImageID"][
            answers.isna() | (answers % 1 != 0) | ~answers.between(0, NUM_CLASSES - 1)
        ]
        if len(bad):
            problems.append(
                f"{len(bad)} answer(s) not an integer 0..{NUM_CLASSES - 1}, e.g. for {bad.iloc[0]}"
            )
    if problems:
        raise PipelineError("submission not written: " + "; ".join(problems))
