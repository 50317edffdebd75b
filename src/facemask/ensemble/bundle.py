"""The ensemble bundle: one JSON file (`ensemble/ensemble.json` under the results folder) that holds
everything a prediction needs besides the member checkpoints it lists by path and digest: each
member's arch, input size, normalisation and image-cache settings, the vote, the TTA, the age cuts
and the class offsets of the decision. With it a trained ensemble predicts any photos without
Snakemake, the data set's layout or retraining (see facemask.predict.photos).

Bundle and BundleMember are the file as typed objects: Bundle.read and Bundle.write are the only
code that knows its JSON keys."""

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from facemask.classes.decision import decide_classes
from facemask.classes.labels import GENDER_NAMES, MASK_NAMES, TASK_STRIDES, age_band_names
from facemask.config.sections import FLAT_CROP_KEYS, Crop, ImageCache, TestTimeAugmentation, crop_of_flat
from facemask.config.typed import as_config, typed
from facemask.ensemble.vote import Vote
from facemask.utils.digests import file_digest
from facemask.utils.errors import PipelineError
from facemask.utils.files import Member, write_json

BUNDLE_FORMAT = 1
BUNDLE_NAME = "ensemble/ensemble.json"


class BundleError(PipelineError):
    """An ensemble bundle that cannot be used as it is; the message names the file."""


@dataclass(frozen=True)
class BundleMember:
    """A trained (model, fold) as the bundle lists it: what its checkpoint says of itself (arch,
    head, epoch, input size, data_config), its vote weight, a years head's age cuts fitted out of
    fold (None: the checkpoint's own, if any), the image cache its inputs come from (its
    settings and the cached size), its checkpoint (an absolute path) and the checkpoint's digest,
    and the batch size it trained with (found by `batch_size: auto` or set; None in a bundle or
    checkpoint from before it was recorded). `extra`: any other fields of its entry (e.g. added by
    hand), checked against the checkpoint as the others are
    (facemask.predict.photos.check_member_fields)."""

    model: str
    fold: int
    arch: str
    head: str
    epoch: int
    image_size: tuple[int, ...]
    data_config: Mapping[str, Any]
    weight: float
    age_cuts: tuple[int, ...] | None
    cache: ImageCache
    cache_size: tuple[int, int]
    checkpoint: Path
    sha256: str
    train_batch_size: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> Member:
        """The (model, fold) that the vote and the member tables key it by."""
        return Member(self.model, self.fold)

    @classmethod
    def of(
        cls, member: Member, checkpoint: Path, meta: Mapping, weight: float, cache: ImageCache, age_cuts=None
    ) -> "BundleMember":
        """`member` trained: its `checkpoint`, what the checkpoint says of itself (`meta`, see
        classifier.checkpoint_meta), its vote `weight`, the image `cache` its inputs come from, and a
        years head's `age_cuts` fitted out of fold (None for other heads)."""
        image_size = tuple(meta["data_config"]["input_size"][1:])
        return cls(
            model=member.model,
            fold=int(member.fold),
            arch=meta["arch"],
            head=meta["head"],
            epoch=meta["epoch"],
            image_size=image_size,
            data_config=meta["data_config"],
            weight=weight,
            age_cuts=None if age_cuts is None else tuple(age_cuts),
            cache=cache,
            cache_size=cache.size(image_size),
            checkpoint=Path(checkpoint).resolve(),
            sha256=file_digest(checkpoint),
            train_batch_size=meta.get("train_batch_size"),
        )

    @classmethod
    def from_json(cls, entry: Mapping[str, Any], folder: Path) -> "BundleMember":
        """A member from its entry in the bundle in `folder` (its checkpoint's path is relative to
        it). Bundles from before the cache's margin, its crop block or face_detector were stored: the
        cached height over the input height (the stored size is what is used), the flat crop
        settings, and the Haar cascade."""
        image_size = tuple(entry["image_size"])
        cache = dict(entry["cache"])
        height, width = cache.pop("size")
        if "crop" not in cache:
            flat = {"face_detector": "haar"} | cache
            cache = {key: value for key, value in cache.items() if key not in FLAT_CROP_KEYS}
            cache["crop"] = Crop(**{"kind": "whole"} | crop_of_flat(flat)).pixel_form
        cache = {"margin": height / image_size[0]} | cache
        age_cuts = entry.get("age_cuts")
        member = cls(
            model=entry["model"],
            fold=entry["fold"],
            arch=entry["arch"],
            head=entry["head"],
            epoch=entry["epoch"],
            image_size=image_size,
            data_config=entry["data_config"],
            weight=entry["weight"],
            age_cuts=None if age_cuts is None else tuple(age_cuts),
            cache=typed(ImageCache, cache),
            cache_size=(height, width),
            checkpoint=(folder / entry["checkpoint"]).resolve(),
            sha256=entry["sha256"],
            train_batch_size=entry.get("train_batch_size"),
        )
        typed_keys = member.as_json(folder)
        return replace(member, extra={key: value for key, value in entry.items() if key not in typed_keys})

    def as_json(self, folder: Path) -> dict[str, Any]:
        """The member's entry in a bundle in `folder` (its checkpoint's path relative to it): its typed
        fields, then `extra`."""
        typed_fields = {
            "model": self.model,
            "fold": self.fold,
            "arch": self.arch,
            "head": self.head,
            "epoch": self.epoch,
            "image_size": list(self.image_size),
            "data_config": self.data_config,
            "weight": self.weight,
            "age_cuts": None if self.age_cuts is None else list(self.age_cuts),
            "cache": {
                "size": list(self.cache_size),
                "margin": self.cache.margin,
                "crop": as_config(self.cache.crop.pixel_form),
            },
            "checkpoint": Path(os.path.relpath(self.checkpoint, folder.resolve())).as_posix(),
            "sha256": self.sha256,
            "train_batch_size": self.train_batch_size,
        }
        return typed_fields | dict(self.extra)


@dataclass(frozen=True)
class Bundle:
    """A trained ensemble: its `members`, the `vote` (ensemble.vote.Vote: the weights by model and what
    else it fitted) and whether its weights were fitted, the TTA, the config's age bins, the class
    offsets of the decision (None: the plain argmax) with what they were fitted on (written only
    with offsets), and the device the face detector ran on for the submission's photos (MTCNN's
    boxes may differ by device: predict finds faces there too)."""

    members: tuple[BundleMember, ...]
    vote: Vote
    weights_fitted: bool
    tta: TestTimeAugmentation
    age_bins: tuple[int, ...]
    class_offsets: tuple[float, ...] | None = None
    offsets_fitted_on: str | None = None
    face_device: str = "cpu"

    @property
    def age_names(self) -> list[str]:
        """The age bands in words, e.g. ['<30', '30-59', '>=60']."""
        return age_band_names(self.age_bins)

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        """The classes of a vote's `probabilities` decided as the bundle says: with its class
        offsets, or the plain argmax where it has none (see classes.decision.decide_classes)."""
        offsets = None if self.class_offsets is None else np.asarray(self.class_offsets)
        return decide_classes(probabilities, offsets=offsets)

    def as_json(self, folder: Path) -> dict[str, Any]:
        """The bundle as the JSON of a file in `folder` holds it."""
        offsets = self.class_offsets
        return {
            "format": BUNDLE_FORMAT,
            "classes": {
                "mask": list(MASK_NAMES),
                "gender": list(GENDER_NAMES),
                "age": self.age_names,
                "age_bins": list(self.age_bins),
                "class": " + ".join(f"{stride} * {task}" for task, stride in TASK_STRIDES.items()),
            },
            "model_weights": dict(self.vote.weights),
            "weights_fitted": self.weights_fitted,
            "vote": self.vote.as_config(),
            "tta": as_config(self.tta),
            "class_offsets": None if offsets is None else [float(o) for o in offsets],
            "class_offsets_fitted_on": None if offsets is None else self.offsets_fitted_on,
            "face_device": self.face_device,
            "members": [member.as_json(folder) for member in self.members],
        }

    def write(self, path: str | Path) -> None:
        """Write the bundle to the JSON file `path`."""
        write_json(self.as_json(Path(path).parent), path)

    @classmethod
    def from_json(cls, plain: Mapping[str, Any], folder: Path) -> "Bundle":
        """A bundle from the JSON of a file in `folder`; a bundle from before the vote was stored
        votes the mean with its model weights, and one from before the face detector's device was
        stored found faces on the CPU."""
        offsets = plain["class_offsets"]
        return cls(
            members=tuple(BundleMember.from_json(entry, folder) for entry in plain["members"]),
            vote=Vote.from_config(plain.get("vote") or {"weights": plain["model_weights"]}),
            weights_fitted=plain["weights_fitted"],
            tta=typed(TestTimeAugmentation, plain["tta"]),
            age_bins=tuple(plain["classes"]["age_bins"]),
            class_offsets=None if offsets is None else tuple(offsets),
            offsets_fitted_on=plain.get("class_offsets_fitted_on"),
            face_device=plain.get("face_device", "cpu"),
        )

    @staticmethod
    def find(location: str | Path) -> Path:
        """The bundle file at `location`: the file itself, or a results folder holding
        ensemble/ensemble.json."""
        location = Path(location)
        path = location / BUNDLE_NAME if location.is_dir() else location
        if not path.is_file():
            raise BundleError(
                f"{path}: no ensemble bundle there; build one with `snakemake ensemble_bundle` "
                "(it is part of `snakemake submission`)"
            )
        return path

    @classmethod
    def read(cls, location: str | Path, verify: bool = True) -> "Bundle":
        """The bundle at `location` (see find), each member's checkpoint an absolute path; with
        `verify`, a checkpoint that is missing or whose digest changed since the bundle was
        written is refused (facemask.predict.photos.read_checked_bundle also checks each member's
        fields against its checkpoint)."""
        path = cls.find(location)
        try:
            plain = json.loads(path.read_text())
            entries = plain["members"]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
            raise BundleError(f"{path}: not an ensemble bundle ({error})") from error
        if plain.get("format") != BUNDLE_FORMAT or not entries:
            raise BundleError(
                f"{path}: bundle format {plain.get('format')!r} with {len(entries)} members; "
                f"this version reads format {BUNDLE_FORMAT} with at least one member"
            )
        try:
            bundle = cls.from_json(plain, path.parent)
        except (LookupError, TypeError, ValueError, ArithmeticError, AttributeError, PipelineError) as error:
            raise BundleError(f"{path}: not an ensemble bundle ({type(error).__name__}: {error})") from error
        for member in bundle.members if verify else ():
            if not member.checkpoint.is_file():
                raise BundleError(f"{path}: member checkpoint {member.checkpoint} not found")
            if file_digest(member.checkpoint) != member.sha256:
                raise BundleError(
                    f"{member.checkpoint}: changed since the bundle {path} was written (SHA-256 differs); "
                    "rebuild the bundle with Snakemake, or restore the checkpoint"
                )
        return bundle
