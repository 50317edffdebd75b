"""The soft vote: each model's vote (the mean softmax of its folds' logits at its temperature),
combined as the vote's combiner says (facemask.ensemble.combiners), and the submission it makes
and its check. What a vote fits on out-of-fold predictions is in facemask.ensemble.fit; how
classes are decided from it, in facemask.classes.decision."""

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import softmax

from facemask.classes.decision import decide_classes
from facemask.classes.labels import LOGIT_COLUMNS, NUM_CLASSES
from facemask.config.defaults import schema_default
from facemask.ensemble.combiners import Combiner, MeanVote, combiner_named, soft_vote_probabilities
from facemask.utils.errors import PipelineError
from facemask.utils.files import Member


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


@dataclass(frozen=True)
class Vote:
    """How the members' logits become the vote's 18 probabilities: each model's own vote first
    (the mean softmax of its folds' logits divided by its temperature, 1 where none is given),
    then the models' votes combined by `combiner` (the plain mean weighted by `weights` by
    default)."""

    weights: Mapping[str, float]
    temperatures: Mapping[str, float] = dataclasses.field(default_factory=dict)
    combiner: Combiner = MeanVote()

    @property
    def combine(self) -> str:
        """The name of the way the models' votes combine (config ensemble.combine)."""
        return self.combiner.name

    def model_vote(self, model: str, member_logits: Sequence[np.ndarray]) -> np.ndarray:
        """One model's vote: the mean softmax of its members' logits at its temperature."""
        temperature = self.temperatures.get(model, 1.0)
        return soft_vote([np.asarray(logits, dtype=np.float64) / temperature for logits in member_logits])

    def probabilities(self, logits_of_model: Mapping[str, Sequence[np.ndarray]]) -> np.ndarray:
        """The vote's probabilities from each model's members' logits (rows: the same photos)."""
        votes = {model: self.model_vote(model, logits) for model, logits in logits_of_model.items()}
        return self.combiner.probabilities(votes, self.weights)

    def as_config(self) -> dict:
        """Plain data for the ensemble bundle (see from_config)."""
        plain = {
            "weights": dict(self.weights),
            "temperatures": dict(self.temperatures),
            "combine": self.combine,
        }
        return plain | self.combiner.as_config()

    @classmethod
    def from_config(cls, plain: Mapping) -> "Vote":
        combiner = combiner_named(plain.get("combine", schema_default("ensemble.combine"))).from_config(plain)
        return cls(dict(plain["weights"]), dict(plain.get("temperatures", {})), combiner)


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
