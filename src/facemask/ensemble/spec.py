"""A vote's specification, as the config gives it: one typed object, one rule param."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from facemask.config.defaults import schema_field
from facemask.config.settings import Settings
from facemask.config.typed import as_config, typed
from facemask.ensemble.combiners import combiner_named
from facemask.ensemble.vote import Vote
from facemask.utils.errors import PipelineError


@dataclass(frozen=True)
class VoteSpec:
    """What a vote is made of before anything is fitted: each model's weight (config
    ensemble_weight; fitted instead with `fit_weights`), the years heads whose age cuts are fitted
    (age_years.fit_cuts), whether classes are matched to the training class shares, how the
    models' votes combine (a key of combiners.COMBINERS) and whether each model's temperature is
    fitted."""

    weights: Mapping[str, float]
    age_cut_models: tuple[str, ...] = ()
    fit_weights: bool = False
    match_class_shares: bool = True
    combine: str = schema_field("ensemble.combine")
    temperature: bool = False

    @classmethod
    def of(cls, settings: Settings, models: Sequence[str], age_cut_models: Sequence[str] = ()) -> "VoteSpec":
        """The vote of the blocks `models` of `settings` (the years heads of `age_cut_models` fitting
        their cuts)."""
        ensemble = settings.ensemble
        return cls(
            {model: settings.ensemble_weights[model] for model in models},
            tuple(age_cut_models),
            ensemble.fit_weights,
            ensemble.match_class_shares,
            ensemble.combine,
            ensemble.temperature,
        )

    @classmethod
    def from_config(cls, plain: Mapping[str, Any]) -> "VoteSpec":
        """The spec from a rule's param (as_config)."""
        return typed(cls, plain)

    def as_config(self) -> dict[str, Any]:
        """Plain data, for a rule's params."""
        return as_config(self)

    @property
    def needs_fit(self) -> bool:
        """Whether the vote fits anything on the out-of-fold predictions (weights, temperatures, or
        what its way to combine fits)."""
        return self.fit_weights or self.temperature or combiner_named(self.combine).fits_always

    @property
    def fits_anything(self) -> bool:
        """Whether anything of the vote is fitted on the out-of-fold predictions: what needs_fit
        says, or the age cuts of a years head."""
        return self.needs_fit or bool(self.age_cut_models)

    def describe(self) -> str:
        """The vote in words, for the score tables' `vote` column: how the models combine, at
        which weights, what else is fitted, how classes are decided."""
        parts = [f"{self.combine} of {', '.join(self.weights)}"]
        parts.append("weights fitted" if self.fit_weights else "given weights")
        parts += ["temperatures fitted"] if self.temperature else []
        parts += ["stacker fitted"] if combiner_named(self.combine).fits_always else []
        parts += [f"age cuts fitted ({', '.join(self.age_cut_models)})"] if self.age_cut_models else []
        parts.append("classes matched to the training shares" if self.match_class_shares else "argmax")
        return "; ".join(parts)

    def fitted_on(self, folds: int) -> str:
        """Where what the vote fits comes from when it is scored out of fold over `folds` folds:
        nothing, the other folds (cross-fitted), or, with one fold, the very photos it scores."""
        if not self.fits_anything:
            return "nothing fitted"
        if folds > 1:
            return f"cross-fitted: each fold by a fit on the other {folds - 1}"
        return "in-sample: fitted on the photos it scores (one fold, optimistic)"

    def unfitted(self) -> Vote:
        """The vote at the given weights, without a fit (where it needs none)."""
        if self.needs_fit:
            raise PipelineError(f"the vote {self} is fitted on the out-of-fold predictions: see fit.fit_vote")
        return Vote(dict(self.weights), {}, combiner_named(self.combine)())
