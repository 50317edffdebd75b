"""The ensemble bundle: one JSON file (`ensemble/ensemble.json` under the results folder) that holds
everything a prediction needs besides the member checkpoints it lists by path and digest: each
member's arch, input size, normalisation and image-cache settings, the vote weights, the TTA,
the age cuts and the class offsets of the decision. With it a trained ensemble predicts any photos
without Snakemake, the data set's layout or retraining (see facemask.prediction)."""

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from facemask.errors import PipelineError
from facemask.files import Member, write_json
from facemask.labels import GENDER_NAMES, MASK_NAMES, TASK_STRIDES, age_band_names
from facemask.settings import ImageCache, TestTimeAugmentation, as_config
from facemask.vote import Vote, decide_classes

BUNDLE_FORMAT = 1
BUNDLE_NAME = "ensemble/ensemble.json"


class BundleError(PipelineError):
    """An ensemble bundle that cannot be used as it is; the message names the file."""


def file_digest(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


class BundleMember(NamedTuple):
    """A trained (model, fold) as the bundle lists it: its checkpoint, what the checkpoint says of
    itself (models.checkpoint_meta) and its vote weight."""

    member: Member
    checkpoint: Path
    meta: dict
    weight: float


@dataclass(frozen=True)
class BundleSettings:
    """What a bundle holds besides its members: the vote (vote.Vote: weights by model and what
    else it fitted; whether the weights were fitted), the TTA, the image cache's settings, the
    config's age cuts, each years head's age cuts fitted out of fold (by model), and what the
    class offsets were fitted on."""

    vote: Vote
    weights_fitted: bool
    tta: TestTimeAugmentation
    cache: ImageCache
    age_bins: Sequence[int]
    age_cuts_of_models: Mapping[str, Sequence[int]]
    offsets_fitted_on: str


def member_entry(trained: BundleMember, bundle_dir: Path, cache: ImageCache, age_cuts=None) -> dict:
    """A bundle's record of one trained (model, fold): what its checkpoint says of itself, the image
    cache its inputs come from (`cache`: margin and the crop settings), its vote weight, a years
    head's age cuts fitted out of fold (None for other heads), and the checkpoint's path (relative
    to the bundle) and digest."""
    (model, fold), checkpoint, meta, weight = trained
    height, width = meta["data_config"]["input_size"][1:]
    return {
        "model": model,
        "fold": int(fold),
        "arch": meta["arch"],
        "head": meta["head"],
        "epoch": meta["epoch"],
        "image_size": [height, width],
        "data_config": meta["data_config"],
        "weight": weight,
        "age_cuts": age_cuts,
        "cache": {
            "size": list(cache.size((height, width))),
            **cache.crop_settings,
        },
        "checkpoint": Path(os.path.relpath(Path(checkpoint).resolve(), bundle_dir.resolve())).as_posix(),
        "sha256": file_digest(checkpoint),
    }


def write_bundle(
    path: str | Path,
    members: Sequence[BundleMember],
    settings: BundleSettings,
    offsets: Sequence[float] | None,
) -> dict:
    """Write the bundle of `members` to `path` with `settings`; `offsets`: the decision's class
    offsets, or None (plain argmax)."""
    bundle_dir = Path(path).parent
    bundle = {
        "format": BUNDLE_FORMAT,
        "classes": {
            "mask": list(MASK_NAMES),
            "gender": list(GENDER_NAMES),
            "age": age_band_names(settings.age_bins),
            "age_bins": list(settings.age_bins),
            "class": " + ".join(f"{stride} * {task}" for task, stride in TASK_STRIDES.items()),
        },
        "model_weights": dict(settings.vote.weights),
        "weights_fitted": settings.weights_fitted,
        "vote": settings.vote.as_config(),
        "tta": as_config(settings.tta),
        "class_offsets": None if offsets is None else [float(o) for o in offsets],
        "class_offsets_fitted_on": settings.offsets_fitted_on if offsets is not None else None,
        "members": [
            member_entry(
                trained,
                bundle_dir,
                settings.cache,
                settings.age_cuts_of_models.get(trained.member.model),
            )
            for trained in members
        ],
    }
    write_json(bundle, path)
    return bundle


def find_bundle(location: str | Path) -> Path:
    """The bundle file at `location`: the file itself, or a results folder holding ensemble/ensemble.json."""
    location = Path(location)
    path = location / BUNDLE_NAME if location.is_dir() else location
    if not path.is_file():
        raise BundleError(
            f"{path}: no ensemble bundle there; build one with `snakemake ensemble_bundle` "
            "(it is part of `snakemake submission`)"
        )
    return path


def read_bundle(location: str | Path, verify: bool = True) -> dict:
    """The bundle at `location` (see find_bundle) with each member's checkpoint as an absolute
    path; with `verify`, a checkpoint that is missing or whose digest changed since the bundle
    was written is refused (facemask.prediction.read_checked_bundle also checks each member's
    fields against its checkpoint)."""
    path = find_bundle(location)
    try:
        bundle = json.loads(path.read_text())
        members = bundle["members"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
        raise BundleError(f"{path}: not an ensemble bundle ({error})") from error
    if bundle.get("format") != BUNDLE_FORMAT or not members:
        raise BundleError(
            f"{path}: bundle format {bundle.get('format')!r} with {len(members)} members; "
            f"this version reads format {BUNDLE_FORMAT} with at least one member"
        )
    for member in members:
        member["checkpoint"] = str((path.parent / member["checkpoint"]).resolve())
        if verify and not Path(member["checkpoint"]).is_file():
            raise BundleError(f"{path}: member checkpoint {member['checkpoint']} not found")
        if verify and file_digest(member["checkpoint"]) != member["sha256"]:
            raise BundleError(
                f"{member['checkpoint']}: changed since the bundle {path} was written (SHA-256 differs); "
                "rebuild the bundle with Snakemake, or restore the checkpoint"
            )
    return bundle


def bundle_vote(bundle: dict) -> Vote:
    """The bundle's vote (a bundle from before the vote was stored: the mean with its model weights)."""
    return Vote.from_config(bundle.get("vote") or {"weights": bundle["model_weights"]})


def decide_as_bundle(bundle: dict, probabilities: np.ndarray) -> np.ndarray:
    """The classes of a vote's `probabilities` decided as `bundle` says: with its class offsets,
    or the plain argmax where it has none (see vote.decide_classes)."""
    offsets = None if bundle["class_offsets"] is None else np.asarray(bundle["class_offsets"])
    return decide_classes(probabilities, offsets=offsets)
