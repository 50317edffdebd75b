"""A sweep's ranking (config `sweeps`): each block's out-of-fold scores on the sweep's folds, its
gain over the base block with a 95 % person-bootstrap interval that holds for the whole family of
variants at once (max-|t| over the same resamples of the same people), its training time, and
whether it is clearly ahead (the interval above 0), clearly behind, or indistinguishable; and the
winner's gain on folds that did not pick it. Eval is never read."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from facemask.classes.scores import (
    F1_SCORES,
    macro_f1,
    person_bootstrap_macro_f1,
    studentised_intervals,
    task_scores,
)
from facemask.config.sweeps import Sweep, settings_text
from facemask.report.scores import decided_alone

#: the name of the cross-fitted winner's answers among the bootstrapped ones
CROSS_FITTED = "(the winner, cross-fitted)"


@dataclass(frozen=True)
class HonestGain:
    """The winner's gain over the base on folds that did not pick it: each fold's photos answered
    by the variant that the other folds' out-of-fold photos rank first (`picks`: fold -> variant),
    scored on all the photos, with its 95 % person-bootstrap interval (`low`, `high`)."""

    gain: float
    low: float
    high: float
    picks: Mapping[int, str]

    def text(self) -> str:
        picks = ", ".join(f"{variant} on fold {fold}" for fold, variant in self.picks.items())
        return f"{self.gain:+.4f} [{self.low:+.4f}, {self.high:+.4f}] (picked: {picks})"


@dataclass(frozen=True)
class SweepRanking:
    """A sweep's ranking: one row per block (see sweep_ranking), how many variants its intervals
    hold together over (`family`), on how many `resamples`, and the winner's gain on folds that did
    not pick it (`honest`; None with one fold, where the winner's gain is optimistic)."""

    table: pd.DataFrame
    family: int
    resamples: int
    honest: HonestGain | None

    def notes(self) -> list[str]:
        """What the ranking's intervals and winner's gain are, in words, for its header."""
        notes = [
            f"Gains over the base with 95 % intervals simultaneous over the {self.family} variants ranked "
            f"(studentised max-|t| over {self.resamples:,} person-bootstrap resamples, every block on the "
            "same ones): each verdict holds with the others, not only on its own."
        ]
        winners = self.table[self.table["verdict"] != "base"]
        if winners.empty:
            return notes
        winner = winners.iloc[0]
        notes.append(
            f"The winner {winner['block']}: {winner['gain']:+.4f} on the photos that picked it (optimistic); "
            + (
                f"on folds that did not pick it (each fold's photos answered by the variant the other folds "
                f"rank first): {self.honest.text()}."
                if self.honest
                else "one fold only, so no fold is left to score it honestly: rank on 2 folds or more."
            )
        )
        return notes


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
) -> SweepRanking:
    """One row per block of `tables` (the `base` block and the variants; `settings`: each variant's
    varied settings in words; `seconds`: its train jobs' time), best out-of-fold macro F1 first:
    the task scores, the gain over the base with its 95 % interval simultaneous over the variants
    (the people resampled with `seed`), the verdict; and the winner's gain on folds that did not
    pick it."""
    for block, table in tables.items():
        if not table.index.equals(tables[base].index):
            raise ValueError(f"the out-of-fold photos of {block!r} are not those of the base {base!r}")
    truth, person, folds = (tables[base][column].to_numpy() for column in ("label", "person", "fold"))
    decided = {block: decided_alone(block, table, shares, cut_models) for block, table in tables.items()}
    variants = [block for block in tables if block != base]
    crossed = cross_fitted_winner(truth, folds, {variant: decided[variant] for variant in variants})
    answers = decided | ({CROSS_FITTED: crossed[0]} if crossed else {})
    resampled = person_bootstrap_macro_f1(truth, answers, person, resamples, seed)
    scores = {block: task_scores(truth, decided[block]) for block in tables}
    gains = {block: scores[block]["macro_f1"] - scores[base]["macro_f1"] for block in tables}
    low, high = family_intervals(gains, resampled, base, variants)
    rows = [
        {"block": block, "settings": settings.get(block, "(the base)")}
        | {score: scores[block][score] for score in F1_SCORES}
        | {"gain": gains[block], "low": low[block], "high": high[block]}
        | {"verdict": verdict(block == base, low[block], high[block])}
        | {"train_minutes": seconds.get(block, np.nan) / 60}
        for block in tables
    ]
    table = pd.DataFrame(rows).sort_values(["macro_f1", "block"], ascending=[False, True], ignore_index=True)
    honest = None
    if crossed:
        gain = task_scores(truth, crossed[0])["macro_f1"] - scores[base]["macro_f1"]
        low, high = family_intervals(
            {CROSS_FITTED: gain}, resampled, base, [CROSS_FITTED], simultaneous=False
        )
        honest = HonestGain(gain, low[CROSS_FITTED], high[CROSS_FITTED], crossed[1])
    return SweepRanking(table.assign(rank=np.arange(1, len(table) + 1)), len(variants), resamples, honest)


def family_intervals(
    gains: Mapping[str, float],
    resampled: Mapping[str, np.ndarray],
    base: str,
    variants: Sequence[str],
    simultaneous: bool = True,
) -> tuple[dict[str, float], dict[str, float]]:
    """The 95 % intervals of the `variants`' gains over `base` (the base's own: 0), from the same
    person resamples (`resampled` macro F1 per block), simultaneous over the variants (see
    classes.scores.studentised_intervals)."""
    low, high = dict.fromkeys(gains, 0.0), dict.fromkeys(gains, 0.0)
    if variants:
        lows, highs = studentised_intervals(
            np.array([gains[variant] for variant in variants]),
            np.column_stack([resampled[variant] - resampled[base] for variant in variants]),
            simultaneous=simultaneous,
        )
        low |= dict(zip(variants, map(float, lows), strict=True))
        high |= dict(zip(variants, map(float, highs), strict=True))
    return low, high


def cross_fitted_winner(
    truth: np.ndarray, folds: np.ndarray, answers: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, dict[int, str]] | None:
    """The winner's answers on folds that did not pick it: each fold's photos answered by the
    variant (of `answers`) with the best macro F1 on the other folds' photos (ties by name), and
    each fold's pick; None with one fold, or no variant."""
    if len(np.unique(folds)) < 2 or not answers:
        return None
    crossed, picks = np.empty_like(truth), {}
    for fold in np.unique(folds):
        other, held = folds != fold, folds == fold
        pick = min(answers, key=lambda variant: (-macro_f1(truth[other], answers[variant][other]), variant))
        crossed[held], picks[int(fold)] = answers[pick][held], pick
    return crossed, picks


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
            "verdict": f"stopped at rung {rung} ({sweep.budgets[rung]:.0%} of its updates)",
            "train_minutes": seconds.get(row["variant"], np.nan) / 60,
        }
        for rung, table in enumerate(rungs)
        for row in table[~table["goes_on"]].to_dict("records")
    ]
    return pd.DataFrame(rows, columns=["block", "settings", "macro_f1", "verdict", "train_minutes"])
