"""The config's sections as typed, frozen objects (folds, threads, image cache, TTA, vote, second
round, tracking, demo data): a module apart from the whole config's loading
(facemask.config.settings), so that the jobs that read a section (train and predict jobs above all)
do not reach the sweeps' expansion, and an edit there reruns none of them."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from facemask.config.defaults import schema_field
from facemask.utils.errors import ConfigError


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
class Crop:
    """What of each photo the image cache keeps (see facemask.data.cache.crop_box): the `whole`
    photo, a `centre`d box, or a box `scale` face sizes wide around the face that `detector` finds
    (`face`; rule find_faces). The scale and detector mean something to a face crop only."""

    kind: Literal["whole", "centre", "face"]
    scale: float | None = None
    detector: str | None = None

    def __post_init__(self):
        if self.kind == "face" and (self.scale is None or self.detector is None):
            raise ConfigError(f"a face crop needs its scale and detector: {self}")

    @property
    def pixel_form(self) -> "Crop":
        """This crop without the settings its pixels do not depend on (a whole or centre crop's scale
        and detector): what the cache rule's param, the bundle and predict's caches are keyed by,
        so that reruns are exact."""
        return self if self.kind == "face" else Crop(self.kind)

    @property
    def runs_torch(self) -> bool:
        """Whether finding the faces runs torch (MTCNN's face crop)."""
        return self.kind == "face" and self.detector == "mtcnn"


#: the cache of the whole photos, uncropped
WHOLE_PHOTO = Crop("whole")
#: the flat cache settings that `crop` replaced (see crop_of_flat)
FLAT_CROP_KEYS = ("face_crop", "centre_crop", "face_scale", "face_detector")


def crop_of_flat(cache: Mapping[str, Any]) -> dict[str, Any]:
    """The `crop` mapping that a cache section's (or an older bundle's) flat settings `face_crop`,
    `centre_crop`, `face_scale` and `face_detector` stand for, over the section's own `crop`."""
    crop = dict(cache.get("crop") or {})
    if cache.get("face_crop") and cache.get("centre_crop"):
        raise ConfigError(
            "config: cache: face_crop and centre_crop are both true: choose one cache.crop.kind "
            "(a face crop is already centred where no face is found)"
        )
    for flag, kind in (("face_crop", "face"), ("centre_crop", "centre")):
        if cache.get(flag):
            crop["kind"] = kind
        elif flag in cache and crop.get("kind") == kind:
            crop["kind"] = "whole"
    for flat, field in (("face_scale", "scale"), ("face_detector", "detector")):
        if flat in cache:
            crop[field] = cache[flat]
    return crop


@dataclass(frozen=True)
class ImageCache:
    """The decoded-once image cache: photos stored `margin` times the model's input size, cropped
    as `crop` says."""

    margin: float
    crop: Crop

    def size(self, image_size: Sequence[int]) -> tuple[int, int]:
        """The cache's (height, width) for a model input of `image_size`."""
        height, width = (round(side * self.margin) for side in image_size)
        return height, width

    @property
    def pixel_form(self) -> "ImageCache":
        """These settings with the crop's pixel form (Crop.pixel_form): what a bundle records."""
        return replace(self, crop=self.crop.pixel_form)


@dataclass(frozen=True)
class TestTimeAugmentation:
    """ttach's `transforms` (names, or one-key maps of a name to its options), the `merge` of the
    views' probabilities, and the batch size of prediction (or 'auto': see batch_is_auto)."""

    __test__ = False  # not a test class, whatever its name says to pytest

    transforms: tuple[Any, ...]
    merge: str
    batch_size: int | Literal["auto"]

    @property
    def batch_is_auto(self) -> bool:
        """Whether each predict job finds its batch size (`batch_size: auto`: the largest that fits
        the GPU, see facemask.utils.memory.auto_batch_size)."""
        return self.batch_size == "auto"


@dataclass(frozen=True)
class Ensemble:
    """The vote: weights fitted on the out-of-fold predictions or each block's, classes matched
    to the training class shares or the plain argmax, how the models' votes combine (a key of
    ensemble.combiners.COMBINERS) and whether each model's temperature is fitted (see
    ensemble.spec.VoteSpec, the vote of a round's blocks)."""

    fit_weights: bool
    match_class_shares: bool
    combine: str = schema_field("ensemble.combine")
    temperature: bool = False


@dataclass(frozen=True)
class PseudoLabels:
    """The second round (see facemask.ensemble.pseudo_labels): the eval photos whose fold vote gives
    its most likely class at least `threshold`, added to the training photos of the `models` blocks
    (None: every block run)."""

    threshold: float = schema_field("pseudo_labels.threshold")
    models: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Tracking:
    """MLflow tracking: on or off, the store's `uri` (None: MLFLOW_TRACKING_URI, else a SQLite
    file in the results folder) and the experiment (None: facemask.tracking.store's default)."""

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
