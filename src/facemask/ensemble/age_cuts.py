"""A years head's age bands cut anywhere: its 18-class log-probabilities at given cuts, and the cuts
fitted on its out-of-fold predictions (config age_years.fit_cuts)."""

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import log_softmax, logsumexp, softmax

from facemask.classes.decision import decide_classes, log_probabilities
from facemask.classes.labels import (
    BAND_OF_CLASS,
    DEFAULT_AGE_BINS,
    LOGIT_COLUMNS,
    NUM_CLASSES,
    NUM_PAIRS,
    PAIR_OF_CLASS,
    YEAR_COLUMNS,
    band_log_probabilities,
    log_band_of_year,
)
from facemask.classes.scores import macro_f1
from facemask.utils.files import write_json

#: the age cuts a years head's fit chooses from: first cut, second cut (years)
AGE_CUT_CANDIDATES = (range(25, 36), range(55, 63))


def with_age_cuts(logits: np.ndarray, year_probabilities: np.ndarray, cuts: Sequence[int]) -> np.ndarray:
    """A years head's 18-class log-probabilities with its age bands cut at `cuts`: log p(mask,
    gender) from `logits` plus log P(band), the sum of the years' probabilities within the band
    (labels.band_log_probabilities, as heads.AgeYearsClassifier computes it), floored at 1e-12."""
    class_log_probs = log_softmax(np.asarray(logits, dtype=np.float64), axis=1)
    pairs = logsumexp(
        class_log_probs.reshape(-1, NUM_PAIRS, NUM_CLASSES // NUM_PAIRS), axis=2
    )  # 3 * pair + band
    with np.errstate(divide="ignore"):  # log 0 = -inf: a band of no probability is floored below
        years = np.log(np.asarray(year_probabilities, dtype=np.float64))
        bands = log_probabilities(np.exp(band_log_probabilities(years, log_band_of_year(cuts))))
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


def write_age_cuts(cuts: Sequence[int], path: str | Path) -> None:
    """Write a years head's fitted age cuts (rule fit_age_cuts) to `path`."""
    write_json({"age_cuts": [int(cut) for cut in cuts]}, path)


def read_age_cuts(path: str | Path) -> list[int]:
    """The age cuts that write_age_cuts wrote to `path`."""
    return json.loads(Path(path).read_text())["age_cuts"]
