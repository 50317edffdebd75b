"""Predict any photos with a trained ensemble: the photos prepared as the image cache prepares
them, each member's TTA logits, the soft vote with the bundle's weights, and the classes decided
with the bundle's class offsets (see facemask.ensemble.bundle)."""

import dataclasses
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageFile

from facemask.classes.labels import GENDER_NAMES, MASK_NAMES, NUM_CLASSES, decode_class
from facemask.config.defaults import schema_default
from facemask.data.cache import prepare_photos
from facemask.data.faces import find_faces
from facemask.data.photo_index import DataReport, check_photo
from facemask.ensemble.bundle import Bundle, BundleError, BundleMember
from facemask.ensemble.vote import by_model
from facemask.model.classifier import checkpoint_meta
from facemask.model.inference import PredictOptions, predict_cached_photos
from facemask.utils.devices import pick_device
from facemask.utils.errors import DataError
from facemask.utils.logs import log
from facemask.utils.memory import BatchSetting

#: how many ignored files a message names (it counts them all)
NAMED_FILES = 10
#: the batch of `facemask predict` as an out-of-memory message names it
COMMAND_BATCH = BatchSetting("facemask predict", "--batch-size")


def image_suffixes() -> set[str]:
    """The file extensions (lower case) of the image formats PIL opens (its registered_extensions),
    less its stub formats (BUFR, GRIB, HDF5, WMF), whose data PIL cannot decode itself."""
    suffixes = set()
    for suffix, name in Image.registered_extensions().items():
        factory = Image.OPEN.get(name, (None,))[0]
        if factory and not (isinstance(factory, type) and issubclass(factory, ImageFile.StubImageFile)):
            suffixes.add(suffix)
    return suffixes


def read_checked_bundle(location: str | Path) -> Bundle:
    """The bundle at `location` (see facemask.ensemble.bundle.Bundle.read), each member's fields checked
    against its checkpoint (see check_member_fields)."""
    path = Bundle.find(location)
    bundle = Bundle.read(path)
    for member in bundle.members:
        check_member_fields(path, member)
    return bundle


def check_member_fields(path: Path, member: BundleMember) -> None:
    """Refuse a member of the bundle at `path` (edited by hand) whose own fields disagree with what
    its checkpoint says of itself: each field both hold (arch, head, epoch, fold, data_config, and
    any other the checkpoint's meta has, e.g. precision; not age_cuts, which the bundle may hold
    fitted out of fold) and the input size (image_size)."""
    meta = {key: value for key, value in checkpoint_meta(member.checkpoint).items() if key != "age_cuts"}
    meta["image_size"] = meta["data_config"]["input_size"][1:]
    fields = member.as_json(path.parent)
    for field in (field for field in fields if field in meta):
        in_bundle, in_checkpoint = (json.loads(json.dumps(value)) for value in (fields[field], meta[field]))
        if in_bundle != in_checkpoint:
            raise BundleError(
                f"{path}: member {member.model} fold {member.fold}: {field} is {in_bundle!r} "
                f"in the bundle but {in_checkpoint!r} in its checkpoint {member.checkpoint}; rebuild "
                "the bundle with Snakemake, or undo the edit"
            )


def collect_photos(locations: Sequence[str | Path], report: DataReport | None = None) -> list[Path]:
    """The photos at `locations`: files as given, in order, and every file below a folder,
    recursively, sorted, whose extension (any case) is an image format's (see image_suffixes);
    the folders' other files are ignored and listed in `report`. Each photo is decoded once to
    check it (see check_photo_file)."""
    report = DataReport() if report is None else report
    suffixes = image_suffixes()
    photos = []
    for location in map(Path, locations):
        if location.is_dir():
            found = sorted(f for f in location.rglob("*") if not f.is_dir())
            report.ignored_files += [str(f) for f in found if f.suffix.lower() not in suffixes]
            photos += [f for f in found if f.suffix.lower() in suffixes]
        elif location.exists() or location.is_symlink():
            photos.append(location)
        else:
            raise DataError(f"{location}: no such file or folder")
    if not photos:
        ignored = f"; {ignored_files_message(report.ignored_files)}" if report.ignored_files else ""
        raise DataError(
            f"no photos (.jpg, .jpeg, .png) in {', '.join(map(str, locations))}, nor images of another "
            f"format PIL opens (.webp, .bmp, .gif, .tif, ...){ignored}"
        )
    for photo in photos:
        check_photo_file(photo, report)
    return photos


def check_photo_file(path: Path, report: DataReport) -> None:
    """check_photo, after a DataError naming `path` if it is a broken symbolic link (and its
    target) or not a file (a folder, a pipe)."""
    if path.is_symlink() and not path.exists():
        raise DataError(f"{path}: a broken symbolic link (to {os.readlink(path)})")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    check_photo(path, report)


def ignored_files_message(files: Sequence[str]) -> str:
    """The ignored `files` counted, and the first NAMED_FILES of them named."""
    more = f" and {len(files) - NAMED_FILES} more" if len(files) > NAMED_FILES else ""
    return f"ignored {len(files)} files that are not images: {', '.join(files[:NAMED_FILES])}{more}"


def predict_photos(
    bundle: Bundle,
    photos: Sequence[Path],
    threads: int = 1,
    batch_size: int | Literal["auto"] | None = None,
    device: str | torch.device = schema_default("device"),
    memory: BatchSetting = COMMAND_BATCH,
) -> pd.DataFrame:
    """The bundle's answer for each photo, in order: path, the 18-class `ans`, the mask, gender
    and age band in words, and the 18 vote probabilities. Photos are prepared as the training
    pipeline's image cache prepares them (one temporary cache per member input size), each member
    predicts them with the bundle's TTA on `device` (a device, or the `device` setting, resolved
    here once for all members), and the bundle's vote is decided with its class offsets. `memory`:
    the job and the key of `batch_size` (None: the bundle's TTA's), as an out-of-memory message
    names them (each member named after the job)."""
    on = device if isinstance(device, torch.device) else pick_device(device)
    tta = dataclasses.replace(bundle.tta, batch_size=batch_size) if batch_size else bundle.tta
    options = PredictOptions(tta, threads, on.type)  # the setting of `on`: no second warning
    face_device = detector_device(bundle.face_device)
    logits = []
    with tempfile.TemporaryDirectory(prefix="facemask-predict-") as tmp:
        caches: dict[tuple, Path] = {}
        for member in bundle.members:
            log.debug(
                "member %s: %s, weight %.4g, checkpoint %s",
                member.key,
                member.arch,
                member.weight,
                member.checkpoint,
            )
            cache = member_cache(member, photos, caches, Path(tmp), threads, face_device)
            job = f"{memory.job}: member {member.model} fold {member.fold}"
            member_options = dataclasses.replace(options, memory=dataclasses.replace(memory, job=job))
            logits.append(
                predict_cached_photos(member.checkpoint, cache, len(photos), member_options, member.age_cuts)
            )
    members = (member.key for member in bundle.members)
    probabilities = bundle.vote.probabilities(by_model(dict(zip(members, logits, strict=True))))
    return answer_table(photos, probabilities, bundle.decide(probabilities), bundle.age_names)


def detector_device(recorded: str) -> str:
    """Where to find faces: on the device the bundle's faces were found on (`recorded`), so that
    the crops are the submission's; on the CPU, with a warning, where that is a GPU and torch sees
    none here."""
    if recorded == "cuda" and not torch.cuda.is_available():
        log.warning(
            "the bundle's faces were found by MTCNN on a GPU and torch sees none here: on the CPU its "
            "boxes may differ from the submission's in the last pixel, and so a few answers may"
        )
        return "cpu"
    return recorded


def member_cache(
    member: BundleMember,
    photos: Sequence[Path],
    caches: dict[tuple, Path],
    tmp: Path,
    threads: int,
    face_device: str = "cpu",
) -> Path:
    """The temporary image cache of `photos` at a member's cached size and crop: one of `caches` (by
    size and crop), or one prepared now in `tmp` and added to them (faces found on `face_device`)."""
    size, crop = member.cache_size, member.cache.crop.pixel_form
    key = (size, crop)
    if key not in caches:
        caches[key] = tmp / f"cache{len(caches)}.npy"
        paths = [str(p) for p in photos]
        faces = (
            find_faces(Path.cwd(), paths, str(crop.detector), threads, device=face_device)
            if crop.kind == "face"
            else None
        )
        prepare_photos(Path.cwd(), paths, size, caches[key], crop, threads, faces)
    return caches[key]


def answer_table(
    photos: Sequence[Path],
    probabilities: np.ndarray,
    classes: np.ndarray,
    age_names: Sequence[str],
) -> pd.DataFrame:
    """One row per photo: path, ans, mask, gender, age (words) and prob_00..prob_17."""
    mask, gender, age = decode_class(classes)
    table = pd.DataFrame(
        {
            "path": [str(p) for p in photos],
            "ans": classes,
            "mask": np.take(MASK_NAMES, mask),
            "gender": np.take(GENDER_NAMES, gender),
            "age": np.take(list(age_names), age),
        }
    )
    table[[f"prob_{c:02d}" for c in range(NUM_CLASSES)]] = probabilities
    return table
