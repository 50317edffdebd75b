"""The prepared-image cache: every photo decoded once (turned upright, optionally cropped to the
face), resized to the model's input size plus a margin for random crops, and stored as uint8
pixels in one memory-mappable `.npy` array (photos x height x width x 3) whose rows follow the
photo index. Training and inference slice it instead of decoding JPEGs at every epoch."""

import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from facemask.dataset import read_photo
from facemask.faces import FaceFinder, crop_box
from facemask.files import DISK_FULL, atomic_output
from facemask.logs import Progress, log


def load_prepared(path: Path, size: tuple[int, int], finder: FaceFinder | None, face_scale: float):
    """One photo as uint8 (height, width, 3) pixels at `size`, its crop box and the detector that
    found its face (None without face crop, "" when no detector found one)."""
    height, width = size
    image = read_photo(path, at_least=None if finder else max(size))
    box, detector = None, None
    if finder is not None:
        face, detector = finder.find(np.asarray(image))
        box = crop_box(image.width, image.height, face, height / width, face_scale)
    pixels = np.asarray(image.resize((width, height), Image.Resampling.BICUBIC, box=box))
    return pixels, box, None if finder is None else detector or ""


def prepare_photos(
    data_dir: str | Path,
    paths: Sequence[str],
    size: tuple[int, int],
    output: str | Path,
    face_crop: bool = False,
    face_scale: float = 2.0,
    threads: int = 1,
    face_detector: str = "mtcnn",
) -> pd.DataFrame:
    """Write the photos at `paths` (relative to `data_dir`) into the array `output`, in order, and
    return one row per photo: path, crop box (left, top, right, bottom in the upright photo; empty
    without face crop), whether a face was found and by which detector (see facemask.faces)."""
    data_dir, height, width = Path(data_dir), *size
    finder = FaceFinder(face_detector) if face_crop else None
    boxes = []
    with atomic_output(output) as partial, open(partial, "wb") as file:
        start_array_file(file, (len(paths), height, width, 3))
        progress = Progress(len(paths), f"preparing {height}x{width}")
        with ThreadPoolExecutor(max(threads, 1)) as pool:  # PIL and OpenCV release the GIL
            photos = in_order(
                pool,
                lambda p: load_prepared(data_dir / p, size, finder, face_scale),
                paths,
                4 * max(threads, 1),
            )
            for row, (photo, box, detector) in enumerate(photos):
                file.write(photo)  # the next row of the array; the job holds a few photos, never the array
                boxes.append((*(box or (None,) * 4), None if detector is None else detector != "", detector))
                progress.update(row + 1, 1)
    columns = ["left", "top", "right", "bottom", "face_found", "detector"]
    return pd.DataFrame(boxes, columns=columns).assign(path=list(paths))[["path", *columns]]


def start_array_file(file, shape: tuple[int, ...]) -> None:
    """Write the `.npy` header of a uint8 array of `shape` (its rows follow, in order) and reserve
    the whole file on disk, so that a full disk fails at once rather than after hours of decoding."""
    np.lib.format.write_array_header_1_0(file, {"descr": "|u1", "fortran_order": False, "shape": shape})
    file.flush()
    try:
        os.posix_fallocate(file.fileno(), 0, file.tell() + math.prod(shape))
    except OSError as error:  # a file system that cannot reserve space: the writes will tell
        if error.errno in DISK_FULL:
            raise


def in_order(pool: ThreadPoolExecutor, function: Callable, items: Iterable, ahead: int) -> Iterator:
    """`function` of each item, in order, computed by `pool` at most `ahead` items before they are
    taken (pool.map submits every item at once, and keeps every result until it is taken)."""
    pending: deque[Future] = deque()
    for item in items:
        pending.append(pool.submit(function, item))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def prepare_cache(
    data_dir: str | Path,
    photos: dict[str, pd.DataFrame],
    size: tuple[int, int],
    outputs: dict[str, str | Path],
    face_crop: bool = False,
    face_scale: float = 2.0,
    threads: int = 1,
    face_detector: str = "mtcnn",
) -> tuple[pd.DataFrame, dict]:
    """Write the cache of each split's indexed `photos` (split name -> photo index) to its path
    in `outputs`; return the crop table of all (see prepare_photos, with a split column) and a
    report: photos per split, size, megabytes, time, and with face crop the faces found and the
    centre-crop fallbacks, by detector."""
    started = time.perf_counter()
    options: dict[str, Any] = {
        "face_crop": face_crop,
        "face_scale": face_scale,
        "threads": threads,
        "face_detector": face_detector,
    }
    crops = pd.concat(
        [
            prepare_photos(data_dir, list(table["path"]), size, outputs[split], **options).assign(split=split)
            for split, table in photos.items()
        ],
        ignore_index=True,
    )
    seconds = time.perf_counter() - started
    report: dict[str, Any] = {
        "height": size[0],
        "width": size[1],
        **{f"{split}_photos": len(table) for split, table in photos.items()},
        "megabytes": round(sum(Path(outputs[split]).stat().st_size for split in photos) / 2**20, 1),
        "seconds": round(seconds, 1),
        "photos_per_s": round(len(crops) / seconds, 1),
        "face_crop": face_crop,
    }
    if face_crop:
        report |= crop_report(crops, face_detector)
    log.info(
        "prepared %d photos at %dx%d in %.0f s (%.0f photos/s), %.0f MB",
        len(crops),
        *size,
        seconds,
        report["photos_per_s"],
        report["megabytes"],
    )
    return crops, report


def crop_report(crops: pd.DataFrame, face_detector: str) -> dict[str, Any]:
    """What the face crop found: the faces by detector, and the centre-crop fallbacks by split."""
    found = crops["face_found"].astype(bool)
    by_detector = crops.loc[found, "detector"].value_counts().to_dict()
    log.info(
        "faces found in %d of %d photos (%s); %d centre-crop fallbacks",
        found.sum(),
        len(found),
        ", ".join(f"{count} by {name}" for name, count in by_detector.items()),
        (~found).sum(),
    )
    return {
        "face_detector": face_detector,
        "faces_found": {"count": int(found.sum()), "by_detector": by_detector},
        "centre_crop_fallbacks": {
            "count": int((~found).sum()),
            "by_split": crops[~found]["split"].value_counts().to_dict(),
        },
    }
