"""A sweep's ranking (config `sweeps`): each block's out-of-fold scores on the sweep's folds, its
gain over the base block with a 95 % person-bootstrap interval (every block on the same resamples
of the same people), its training time, and whether it is clearly ahead (the interval above 0),
clearly behind, or indistinguishable. Eval is never read."""

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from facemask.classes.scores import person_bootstrap_gains, task_scores
from facemask.config.sweeps import Sweep, settings_text
from facemask.report.scores import decided_alone

#: the scores of a ranking, the first its order
RANK_SCORES = ("macro_f1", "mask_f1", "gender_f1", "age_f1")


def ranked_blocks(
    tables: Mapping[str, pd.DataFrame], shares: np.ndarray | None, cut_models: Sequence[str] = ()
) -> list[tuple[str, float]]:
    """The blocks of `tables` (each its out-of-fold rows of the sweep's folds) by out-of-fold macro
    F1, best first (ties by name), each decided alone as cv_summary decides it."""
    scores = {
        block: task_scores(table["label"], decided_alone(block, table, shares, cut_models))["macro_f1"]
        for block, table in tables.items()
    }
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def sweep_ranking(
    tables: Mapping[str, pd.DataFrame],
    base: str,
    settings: Mapping[str, str],
    seconds: Mapping[str, float],
    shares: np.ndarray | None,
    cut_models: Sequence[str] = (),
    resamples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per block of `tables` (the `base` block and the variants; `settings`: each variant's
    varied settings in words; `seconds`: its train jobs' time), best out-of-fold macro F1 first:
    the task scores, the gain over the base with its 95 % interval (the people resampled with
    `seed`), the verdict."""
    truth, person = (tables[base][column].to_numpy() for column in ("label", "person"))
    base_answers = decided_alone(base, tables[base], shares, cut_models)
    rows = []
    for block, table in tables.items():
        if not table.index.equals(tables[base].index):
            raise ValueError(f"the out-of-fold photos of {block!r} are not those of the base {base!r}")
        answers = decided_alone(block, table, shares, cut_models)
        gains = pd.DataFrame(person_bootstrap_gains(truth, answers, base_answers, person, resamples, seed))
        low, high = np.percentile(gains["macro_f1"], [2.5, 97.5])
        scores = task_scores(truth, answers)
        row: dict[str, str | float] = {"block": block, "settings": settings.get(block, "(the base)")}
        row |= {score: scores[score] for score in RANK_SCORES}
        row |= {
            "gain": scores["macro_f1"] - task_scores(truth, base_answers)["macro_f1"],
            "low": low,
            "high": high,
        }
        row |= {
            "verdict": verdict(block == base, low, high),
            "train_minutes": seconds.get(block, np.nan) / 60,
        }
        rows.append(row)
    table = pd.DataFrame(rows).sort_values(["macro_f1", "block"], ascending=[False, True], ignore_index=True)
    return table.assign(rank=np.arange(1, len(table) + 1))


def verdict(is_base: bool, low: float, high: float) -> str:
    """A gain's interval in words."""
    if is_base:
        return "base"
    return "ahead" if low > 0 else "behind" if high < 0 else "indistinguishable"


def stopped_rows(sweep: Sweep, rungs: Sequence[pd.DataFrame], seconds: Mapping[str, float]) -> pd.DataFrame:
    """The ranking's rows of the variants that successive halving stopped: each with its macro F1
    at the rung it stopped at (rung tables of sweep_rung, in rung order) and its train jobs' time
    (`seconds`, by variant)."""
    rows = [
        {
            "block": row["variant"],
            "settings": settings_text(sweep, row["variant"]),
            "macro_f1": row["macro_f1"],
            "verdict": f"stopped at rung {rung} ({sweep.budgets[rung]:.0%} of the epochs)",
            "train_minutes": seconds.get(row["variant"], np.nan) / 60,
        }
        for rung, table in enumerate(rungs)
        for row in table[~table["goes_on"]].to_dict("records")
    ]
    return pd.DataFrame(rows, columns=["block", "settings", "macro_f1", "verdict", "train_minutes"])
