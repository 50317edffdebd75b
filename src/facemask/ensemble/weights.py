"""Greedy ensemble selection (Caruana et al. 2004): the weights of probability tables that maximise
a score of their weighted mean, fitted on out-of-fold predictions."""

from collections.abc import Callable, Mapping
from fractions import Fraction

import numpy as np
from scipy.special import softmax

from facemask.classes.decision import decide_classes
from facemask.classes.scores import macro_f1


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


def select_weights(
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
