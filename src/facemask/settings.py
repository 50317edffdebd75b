"""The config as typed, frozen objects (Settings, and a ModelBlock per model block), built once
from the validated config: the JSON schema guards the YAML and holds every default; past that the
code reads fields, not keys. The free-form parts that go to timm's factories and ttach as keyword
arguments (optimizer, scheduler, model_kwargs, loss terms, TTA transforms) stay mappings. A rule's
params carry a slice as plain data (as_config), which the job's script turns back into its type."""

import dataclasses
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from facemask.errors import ConfigError

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
    """One model block of the config, all that a train job depends on. Its defaults are the
    schema's (tests/test_config.py proves it), for blocks built in code; a config's come filled in."""

    arch: str
    pretrained: bool | str = False
    model_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    image_size: tuple[int, int] = (224, 224)
    batch_size: int = 64
    epochs: int = 10
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
        """The block as the schema validated it (defaults filled in), less its vote-only keys; its
        precision the global `precision` where it sets none."""
        plain = {key: value for key, value in block.items() if key not in VOTE_ONLY_KEYS}
        if "task_losses" in plain:
            plain["task_losses"] = {task: tuple(terms) for task, terms in plain["task_losses"].items()}
        plain["precision"] = plain.get("precision") or precision
        return typed(cls, plain)

    def as_config(self) -> dict[str, Any]:
        """Plain data (lists and dicts), as from_config takes it: for logs, fingerprints and JSON."""
        return as_config(self)

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


@dataclass(frozen=True)
class Folds:
    """The profile-stratified folds: `k` of them drawn with `seed`; `run` the folds trained and
    voted (None: all)."""

    k: int
    seed: int
    run: tuple[int, ...] | None

    @property
    def chosen(self) -> list[int]:
        """The folds that are trained and voted."""
        return list(self.run or range(self.k))


@dataclass(frozen=True)
class Threads:
    """Each job's threads: a train job's, a predict job's, and the image cache's decoders."""

    train: int
    predict: int
    prepare: int


@dataclass(frozen=True)
class ImageCache:
    """The decoded-once image cache: photos stored `margin` times the model's input size: the
    whole photo, a centred crop (`centre_crop`), or a crop around the face (`face_crop`, found by
    `face_detector` in rule find_faces, `face_scale` face sizes wide)."""

    margin: float
    face_crop: bool
    face_scale: float
    face_detector: str
    centre_crop: bool = False

    def __post_init__(self):
        if self.face_crop and self.centre_crop:
            raise ConfigError(
                "config: cache: face_crop and centre_crop are both true: choose one "
                "(a face crop is already centred where no face is found)"
            )

    def size(self, image_size: Sequence[int]) -> tuple[int, int]:
        """The cache's (height, width) for a model input of `image_size`."""
        height, width = (round(side * self.margin) for side in image_size)
        return height, width

    @property
    def crop_settings(self) -> dict[str, Any]:
        """The crop's settings, as prepare_photos takes them."""
        return {
            "face_crop": self.face_crop,
            "face_scale": self.face_scale,
            "face_detector": self.face_detector,
            "centre_crop": self.centre_crop,
        }

    @property
    def pixel_settings(self) -> dict[str, Any]:
        """What the cached pixels depend on besides their size: the crop settings, the face's
        only with the face crop on."""
        crop = self.crop_settings
        if self.face_crop:
            return {key: crop[key] for key in ("face_crop", "face_scale", "face_detector")}
        return {key: crop[key] for key in ("face_crop", "centre_crop")}

    @property
    def runs_torch(self) -> bool:
        """Whether finding the faces runs torch (MTCNN's face crop)."""
        return self.face_crop and self.face_detector == "mtcnn"


@dataclass(frozen=True)
class TestTimeAugmentation:
    """ttach's `transforms` (names, or one-key maps of a name to its options), the `merge` of the
    views' probabilities, and the batch size of prediction."""

    __test__ = False  # not a test class, whatever its name says to pytest

    transforms: tuple[Any, ...]
    merge: str
    batch_size: int


@dataclass(frozen=True)
class Ensemble:
    """The vote: weights fitted on the out-of-fold predictions or each block's, classes matched
    to the training class shares or the plain argmax, how the models' votes combine (see
    vote.Vote) and whether each model's temperature is fitted."""

    fit_weights: bool
    match_class_shares: bool
    combine: str = "mean"
    temperature: bool = False

    @property
    def fitted(self) -> dict[str, Any]:
        """What the vote fits besides its weights, as oof_fit.fit_vote takes it."""
        return {"combine": self.combine, "temperature": self.temperature}


@dataclass(frozen=True)
class PseudoLabels:
    """The second round (see facemask.pseudo): the eval photos whose fold vote gives its most likely
    class at least `threshold`, added to the training photos of the `models` blocks (None: every
    block run)."""

    threshold: float = 0.7
    models: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Tracking:
    """MLflow tracking: on or off, the store's `uri` (None: MLFLOW_TRACKING_URI, else a SQLite
    file in the results folder) and the experiment (None: facemask.tracking's default)."""

    on: bool
    uri: str | None = None
    experiment: str | None = None

    @classmethod
    def from_config(cls, setting: bool | Mapping[str, Any]) -> "Tracking":
        """The config's `tracking`: false, true, or {uri, experiment}."""
        if isinstance(setting, bool):
            return cls(setting)
        return cls(True, setting.get("uri"), setting.get("experiment"))


@dataclass(frozen=True)
class DemoData:
    """The generated demo data set: people in training and eval, photo size, seed."""

    train_people: int
    eval_people: int
    width: int
    height: int
    seed: int


@dataclass(frozen=True)
class Settings:
    """The whole config as typed, frozen fields, built by from_config after the schema's check
    (which holds every default); the model blocks by name, less their vote weights, which are
    `ensemble_weights`."""

    data_dir: str
    results_dir: str
    eval_labels: str | None
    predict_sets: Mapping[str, str]
    predict_dir: str | None
    skip_unreadable_photos: bool
    min_photo_side: int
    seed: int
    device: str
    precision: str
    age_bins: tuple[int, int]
    folds: Folds
    threads: Threads
    cache: ImageCache
    tta: TestTimeAugmentation
    ensemble: Ensemble
    tracking: Tracking
    demo: DemoData
    run_models: tuple[str, ...] | None
    pseudo_labels: PseudoLabels | None
    models: Mapping[str, ModelBlock]
    ensemble_weights: Mapping[str, float]

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "Settings":
        """The settings of a config that the schema validated (defaults filled in)."""
        models = config["models"]
        pseudo = config.get("pseudo_labels")
        special = {
            "tracking": Tracking.from_config(config["tracking"]),
            "pseudo_labels": None if pseudo is None else typed(PseudoLabels, pseudo),
            "models": {
                name: ModelBlock.from_config(block, config["precision"]) for name, block in models.items()
            },
            "ensemble_weights": {name: block["ensemble_weight"] for name, block in models.items()},
        }
        return typed(cls, {**config, **special})

    @property
    def chosen_models(self) -> list[str]:
        """The model blocks that are trained and voted (`run_models`, else all)."""
        return list(self.run_models or self.models)

    @property
    def pseudo_models(self) -> list[str]:
        """The model blocks of the second round (pseudo_labels.models, else every block run);
        none when pseudo_labels is off."""
        if self.pseudo_labels is None:
            return []
        return list(self.pseudo_labels.models or self.chosen_models)


def typed(kind, data: Mapping[str, Any]):
    """The dataclass `kind` from `data` by field name (a missing field its default, an unknown one
    a TypeError): a field whose type is a dataclass built from its mapping, lists as tuples,
    values that are built already kept."""
    hints = typing.get_type_hints(kind)
    values = {}
    for name, value in data.items():
        hint = hints.get(name)
        nested = dataclasses.is_dataclass(hint) and isinstance(value, Mapping)
        values[name] = typed(hint, value) if nested else _frozen(value)
    return kind(**values)


def as_config(settings) -> dict[str, Any]:
    """A settings object as plain data (lists and dicts), as the config holds it: for a rule's
    params (Snakemake compares plain data only), logs and JSON."""
    return _plain(dataclasses.asdict(settings))
