"""The class decision: the 18 classes decided from probabilities, by the plain argmax or matched to
the training photos' class shares (class-share offsets); what training's validation, the vote and
every score decide classes with."""

import numpy as np
import pandas as pd

from facemask.classes.labels import NUM_CLASSES


def class_shares(labels) -> np.ndarray:
    """The share of each of the 18 classes among `labels`."""
    labels = np.asarray(labels, dtype=int)
    return np.bincount(labels, minlength=NUM_CLASSES) / len(labels)


def class_counts(labels) -> np.ndarray:
    """How many of `labels` are of each of the 18 classes, as floats."""
    return np.bincount(np.asarray(labels, dtype=int), minlength=NUM_CLASSES).astype(float)


def class_counts_to_match(index_csv, match_class_shares: bool) -> np.ndarray | None:
    """What decisions are matched to (see decide_classes): with `match_class_shares` (config
    ensemble.match_class_shares) the class counts of the training photos listed in the index
    `index_csv` (counts, not shares, so that out-of-fold decisions can take a fold's own photos
    out of them: other_folds_shares), else None (the plain argmax)."""
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


def other_folds_shares(
    labels: np.ndarray, held_out: np.ndarray, shares: np.ndarray | None
) -> np.ndarray | None:
    """The class shares of the training photos outside the fold `held_out` (`labels`: the
    out-of-fold rows), None when classes are not matched (`shares` None). Given the class counts of
    every training photo (class_counts_to_match), those less the fold's own: exact also where
    the out-of-fold rows hold only some folds (a run of one fold has no other fold's rows). Given
    shares, those of the other folds' out-of-fold rows."""
    if shares is None:
        return None
    others = shares - np.bincount(labels[held_out], minlength=len(shares))
    if np.isclose(shares.sum(), 1.0) or (others < 0).any():
        others = np.bincount(labels[~held_out], minlength=len(shares)).astype(float)
    return others / others.sum()


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
