"""A model block's settings as typed, frozen objects, built once from the validated config (the JSON
schema guards the YAML and fills in the defaults; past that the code reads fields, not keys). The
free-form parts that go to timm's factories as keyword arguments (optimizer, scheduler,
model_kwargs, loss terms) stay mappings."""

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from facemask.labels import MAX_AGE, NUM_CLASSES

#: the model-block keys a train job does not depend on (see ModelBlock.from_config)
VOTE_ONLY_KEYS = ("ensemble_weight",)


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
    fit_cuts: bool = False


@dataclass(frozen=True)
class WeightAveraging:
    """timm's ModelEmaV3 of the weights (on when `decay` is set)."""

    decay: float | None = None
    warmup: bool = True


@dataclass(frozen=True)
class Augmentation:
    """The training augmentation (facemask.augment.BatchAugment)."""

    scale: tuple[float, float] = (0.8, 1.0)
    ratio: tuple[float, float] = (0.75, 1.3333)
    hflip: float = 0.5
    color_jitter: float = 0.2


@dataclass(frozen=True)
class ModelBlock:
    """One model block of the config, all that a train job depends on."""

    arch: str
    pretrained: bool | str = False
    model_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    image_size: tuple[int, int] = (224, 224)
    batch_size: int = 64
    epochs: int = 10
    optimizer: Mapping[str, Any] = dataclasses.field(default_factory=lambda: {"name": "adamw"})
    scheduler: Mapping[str, Any] = dataclasses.field(default_factory=lambda: {"name": "cosine"})
    head: str = "single"
    loss: tuple[Mapping[str, Any], ...] = ({"name": "cross_entropy"},)
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
    early_stopping_patience: int = 0
    augment: Augmentation = Augmentation()

    @classmethod
    def from_config(cls, block: Mapping[str, Any], precision: str = "auto") -> "ModelBlock":
        """The block as the schema validated it (defaults filled in), less its vote-only keys; its
        precision the global `precision` where it sets none."""
        plain = {key: value for key, value in block.items() if key not in VOTE_ONLY_KEYS}
        nested = {"mix": Mixing, "age_years": AgeYears, "ema": WeightAveraging, "augment": Augmentation}
        for key, kind in nested.items():
            if key in plain:
                plain[key] = kind(**{name: _frozen(value) for name, value in plain[key].items()})
        for key in ("image_size", "train_age_bins", "loss"):
            if plain.get(key) is not None:
                plain[key] = tuple(plain[key])
        if "task_losses" in plain:
            plain["task_losses"] = {task: tuple(terms) for task, terms in plain["task_losses"].items()}
        plain["precision"] = plain.get("precision") or precision
        return cls(**plain)

    def as_config(self) -> dict[str, Any]:
        """Plain data (lists and dicts), as from_config takes it: for logs, fingerprints and JSON."""
        return _plain(dataclasses.asdict(self))

    @property
    def is_years_head(self) -> bool:
        """Whether the head learns the age in years (age_years.sigma set)."""
        return self.age_years.sigma is not None

    @property
    def num_targets(self) -> int:
        """The one-hot targets of a training photo: the 18 classes, or (year, class) pairs of a years head."""
        return NUM_CLASSES * (MAX_AGE + 1) if self.is_years_head else NUM_CLASSES

    def training_age_cuts(self, age_bins: Sequence[int]) -> list[int]:
        """The age cuts of the training label: train_age_bins, else the config's `age_bins`."""
        return list(self.train_age_bins or age_bins)


def _frozen(value):
    """Lists as tuples, so that nested settings compare and hash as values."""
    return tuple(value) if isinstance(value, list) else value


def _plain(value):
    """Tuples as lists, recursively."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
