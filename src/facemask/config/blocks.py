"""A model block of the config as typed, frozen objects: all that a train job depends on (its
defaults read from the schema). The free-form parts that go to timm's
factories as keyword arguments (optimizer, scheduler, model_kwargs, loss terms) stay mappings."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from facemask.config.defaults import schema_default, schema_field
from facemask.config.typed import as_config, typed
from facemask.utils.errors import ConfigError

#: the model-block keys that only the vote and the class decision read, which a train job does not
#: depend on (see ModelBlock.from_config): Settings holds them apart
EVAL_SIDE_KEYS = ("ensemble_weight", "age_years.fit_cuts")


@dataclass(frozen=True)
class Mixing:
    """timm's Mixup / CutMix: `prob` the share of mixed batches, `switch_prob` the share of those
    that use CutMix."""

    mixup_alpha: float = schema_field("models.*.mix.mixup_alpha")
    cutmix_alpha: float = schema_field("models.*.mix.cutmix_alpha")
    prob: float = schema_field("models.*.mix.prob")
    switch_prob: float = schema_field("models.*.mix.switch_prob")

    @property
    def is_on(self) -> bool:
        return bool(self.prob and (self.mixup_alpha or self.cutmix_alpha))


@dataclass(frozen=True)
class AgeYears:
    """The age in years as a distribution (a years head when `sigma` is set)."""

    sigma: float | None = None
    weight: float = schema_field("models.*.age_years.weight")

    @property
    def is_on(self) -> bool:
        """Whether the block has a years head."""
        return self.sigma is not None


@dataclass(frozen=True)
class WeightAveraging:
    """timm's ModelEmaV3 of the weights (on when `decay` is set)."""

    decay: float | None = None
    warmup: bool = schema_field("models.*.ema.warmup")


@dataclass(frozen=True)
class Augmentation:
    """The training augmentation (facemask.data.augment.BatchAugment)."""

    scale: tuple[float, float] = schema_field("models.*.augment.scale")
    ratio: tuple[float, float] = schema_field("models.*.augment.ratio")
    hflip: float = schema_field("models.*.augment.hflip")
    color_jitter: float = schema_field("models.*.augment.color_jitter")


@dataclass(frozen=True)
class ModelBlock:
    """One model block of the config, all that a train job depends on. Its defaults, for blocks
    built in code, are read from the schema; a config's come filled in."""

    arch: str
    pretrained: bool | str = schema_field("models.*.pretrained")
    model_kwargs: Mapping[str, Any] = schema_field("models.*.model_kwargs")
    image_size: tuple[int, int] = schema_field("models.*.image_size")
    batch_size: int | Literal["auto"] = schema_field("models.*.batch_size")
    epochs: int = schema_field("models.*.epochs")
    stop_after: float = schema_field("models.*.stop_after")
    optimizer: Mapping[str, Any] = schema_field("models.*.optimizer")
    scheduler: Mapping[str, Any] = schema_field("models.*.scheduler")
    head: str = schema_field("models.*.head")
    loss: tuple[Mapping[str, Any], ...] = schema_field("models.*.loss")
    task_losses: Mapping[str, tuple[Mapping[str, Any], ...]] = schema_field("models.*.task_losses")
    train_age_bins: tuple[int, int] | None = None
    sampler: str = schema_field("models.*.sampler")
    mix: Mixing = Mixing()
    age_years: AgeYears = AgeYears()
    ema: WeightAveraging = WeightAveraging()
    cache_on_gpu: bool = schema_field("models.*.cache_on_gpu")
    precision: str = schema_field("precision")  # the global one: a block built in code has no other
    compile: bool | str = schema_field("models.*.compile")
    accumulation_steps: int = schema_field("models.*.accumulation_steps")
    clip_grad_norm: float | None = None
    keep: str = schema_field("models.*.keep")
    early_stopping_patience: int = schema_field("models.*.early_stopping_patience")
    augment: Augmentation = Augmentation()

    @classmethod
    def from_config(
        cls, block: Mapping[str, Any], precision: str = schema_default("precision")
    ) -> "ModelBlock":
        """The block as the schema validated it (defaults filled in), less its EVAL_SIDE_KEYS and
        its optimizer and scheduler options set to null; its precision the global `precision`
        where it sets none."""
        plain = {key: value for key, value in block.items() if key not in EVAL_SIDE_KEYS}
        if "age_years" in plain:
            plain["age_years"] = {
                key: value for key, value in plain["age_years"].items() if key != "fit_cuts"
            }
        if "task_losses" in plain:
            plain["task_losses"] = {task: tuple(terms) for task, terms in plain["task_losses"].items()}
        for factory in ("optimizer", "scheduler"):  # null removes an option that a config below set
            if factory in plain:
                plain[factory] = {key: value for key, value in plain[factory].items() if value is not None}
        plain["precision"] = plain.get("precision") or precision
        return typed(cls, plain)

    @property
    def batch_is_auto(self) -> bool:
        """Whether the train job finds its batch size (`batch_size: auto`: the largest that fits
        the GPU, see facemask.utils.memory.auto_batch_size)."""
        return self.batch_size == "auto"

    def as_config(self) -> dict[str, Any]:
        """Plain data (lists and dicts), as from_config takes it: for logs, fingerprints and JSON."""
        return as_config(self)

    def training_age_cuts(self, age_bins: Sequence[int]) -> list[int]:
        """The age cuts of the training label: train_age_bins, else the config's `age_bins`."""
        return list(self.train_age_bins or age_bins)


def fitted_age_cuts(
    config: Mapping[str, Mapping[str, Any]], blocks: Mapping[str, ModelBlock]
) -> tuple[str, ...]:
    """The model blocks of the validated `config` whose age cuts are fitted on their out-of-fold
    predictions (age_years.fit_cuts), which only a years head has (`blocks`: them built)."""
    fitted = tuple(name for name, block in config.items() if block.get("age_years", {}).get("fit_cuts"))
    for name in fitted:
        if not blocks[name].age_years.is_on:
            raise ConfigError(
                f"config: models.{name}.age_years.fit_cuts: only a years head has age cuts to fit: "
                "give age_years a sigma, or remove fit_cuts"
            )
    return fitted
