"""Predict any photos with a trained ensemble: the photos prepared as the image cache prepares
them, each member's TTA logits, the soft vote with the bundle's weights, and the classes decided
with the bundle's class offsets (see facemask.bundle)."""

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from facemask.bundle import decide_as_bundle
from facemask.cache import prepare_photos
from facemask.dataset import DataReport, check_photo, is_photo_file
from facemask.errors import DataError
from facemask.inference import PredictOptions, predict_cached_photos
from facemask.labels import GENDER_NAMES, MASK_NAMES, NUM_CLASSES, decode_class
from facemask.logs import log
from facemask.vote import soft_vote


def collect_photos(locations: Sequence[str | Path], report: DataReport | None = None) -> list[Path]:
    """The photos at `locations`: files as given, in order, and every photo file (.jpg, .jpeg,
    .png, any case) below a folder, recursively, sorted; other files in folders are ignored and
    counted in `report`. Each photo is decoded once to check it."""
    report = DataReport() if report is None else report
    photos = []
    for location in map(Path, locations):
        if location.is_dir():
            found = sorted(f for f in location.rglob("*") if f.is_file())
            report.ignored_files += [str(f) for f in found if not is_photo_file(f)]
            photos += [f for f in found if is_photo_file(f)]
        elif location.is_file():
            photos.append(location)
        else:
            raise DataError(f"{location}: no such file or folder")
    if not photos:
        raise DataError(f"no photos (.jpg, .jpeg, .png) in {', '.join(map(str, locations))}")
    for photo in photos:
        check_photo(photo, report)
    return photos


def predict_photos(
    bundle: dict,
    photos: Sequence[Path],
    threads: int = 1,
    batch_size: int | None = None,
    device: str = "auto",
) -> pd.DataFrame:
    """The bundle's answer for each photo, in order: path, the 18-class `ans`, the mask, gender
    and age band in words, and the 18 vote probabilities. Photos are prepared as the training
    pipeline's image cache prepares them (one temporary cache per member input size), each member
    predicts them with the bundle's TTA on the `device` setting's device, and the vote is decided
    with the bundle's class offsets."""
    tta = bundle["tta"] | ({"batch_size": batch_size} if batch_size else {})
    options = PredictOptions(tta, threads, device)
    logits = []
    with tempfile.TemporaryDirectory(prefix="facemask-predict-") as tmp:
        caches: dict[tuple, Path] = {}
        for member in bundle["members"]:
            size = tuple(member["cache"]["size"])
            # the crop settings; bundles written before face_detector used the Haar cascade
            crop = {"face_detector": "haar"} | {
                key: value for key, value in member["cache"].items() if key != "size"
            }
            key = (size, *sorted(crop.items()))
            if key not in caches:
                caches[key] = Path(tmp) / f"cache{len(caches)}.npy"
                prepare_photos(
                    Path.cwd(), [str(p) for p in photos], size, caches[key], threads=threads, **crop
                )
            log.info("member %s fold %d", member["model"], member["fold"])
            logits.append(
                predict_cached_photos(
                    member["checkpoint"], caches[key], len(photos), options, member["age_cuts"]
                )
            )
    probabilities = soft_vote(logits, [member["weight"] for member in bundle["members"]])
    return answer_table(
        photos, probabilities, decide_as_bundle(bundle, probabilities), bundle["classes"]["age"]
    )


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
