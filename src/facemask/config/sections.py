"""The config's sections as typed, frozen objects (folds, threads, image cache, TTA, vote, second
round, tracking, demo data): a module apart from the whole config's loading
(facemask.config.settings), so that the jobs that read a section (train and predict jobs above all)
do not reach the sweeps' expansion, and an edit there reruns none of them."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

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
    combine: str = "mean"
    temperature: bool = False


@dataclass(frozen=True)
class PseudoLabels:
    """The second round (see facemask.ensemble.pseudo_labels): the eval photos whose fold vote gives
    its most likely class at least `threshold`, added to the training photos of the `models` blocks
    (None: every block run)."""

    threshold: float = 0.7
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
