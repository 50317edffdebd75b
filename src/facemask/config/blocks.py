"""A model block of the config as typed, frozen objects: all that a train job depends on (its
defaults are the schema's; tests/test_config.py proves it). The free-form parts that go to timm's
factories as keyword arguments (optimizer, scheduler, model_kwargs, loss terms) stay mappings."""

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from facemask.config.typed import as_config, typed
from facemask.utils.errors import ConfigError

#: the model-block keys that only the vote and the class decision read, which a train job does not
#: depend on (see ModelBlock.from_config): Settings holds them apart
EVAL_SIDE_KEYS = ("ensemble_weight", "age_years.fit_cuts")


@dataclass(frozen=True)
class Mixing:
    """timm's Mixup / CutMix: `prob` the share of mixed batches, `switch_prob` the share of those
    that use CutMix."""

    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    prob: float = 0.0
    switch_prob: float = 0.5

    @property
    def is_on(self) -> bool:
        return bool(self.prob and (self.mixup_alpha or self.cutmix_alpha))


@dataclass(frozen=True)
class AgeYears:
    """The age in years as a distribution (a years head when `sigma` is set)."""

    sigma: float | None = None
    weight: float = 0.5

    @property
    def is_on(self) -> bool:
        """Whether the block has a years head."""
        return self.sigma is not None


@dataclass(frozen=True)
class WeightAveraging:
    """timm's ModelEmaV3 of the weights (on when `decay` is set)."""

    decay: float | None = None
    warmup: bool = True


@dataclass(frozen=True)
class Augmentation:
    """The training augmentation (facemask.data.augment.BatchAugment)."""

    scale: tuple[float, float] = (0.8, 1.0)
    ratio: tuple[float, float] = (0.75, 1.3333)
    hflip: float = 0.5
    color_jitter: float = 0.2


@dataclass(frozen=True)
class ModelBlock:
    """One model block of the config, all that a train job depends on. Its defaults are the
    schema's (tests/test_config.py proves it), for blocks built in code; a config's come filled in."""

    arch: str
    pretrained: bool | str = False
    model_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    image_size: tuple[int, int] = (224, 224)
    batch_size: int | Literal["auto"] = 64
    epochs: int = 10
    stop_after: float = 1.0
    optimizer: Mapping[str, Any] = dataclasses.field(
        default_factory=lambda: {"name": "adamw", "lr": 3.0e-4, "weight_decay": 0.01}
    )
    scheduler: Mapping[str, Any] = dataclasses.field(
        default_factory=lambda: {"name": "cosine", "warmup_epochs": 1, "min_lr": 1.0e-6}
    )
    head: str = "single"
    loss: tuple[Mapping[str, Any], ...] = ({"name": "cross_entropy", "weight": 1.0},)
    task_losses: Mapping[str, tuple[Mapping[str, Any], ...]] = dataclasses.field(default_factory=dict)
    train_age_bins: tuple[int, int] | None = None
    sampler: str = "none"
    mix: Mixing = Mixing()
    age_years: AgeYears = AgeYears()
    ema: WeightAveraging = WeightAveraging()
    cache_on_gpu: bool = True
    precision: str = "auto"
    compile: bool | str = False
    accumulation_steps: int = 1
    clip_grad_norm: float | None = None
    keep: str = "last"
    early_stopping_patience: int = 0
    augment: Augmentation = Augmentation()

    @classmethod
    def from_config(cls, block: Mapping[str, Any], precision: str = "auto") -> "ModelBlock":
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
