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

from facemask.config.sections import Crop
from facemask.config.typed import as_config
from facemask.data.photo_index import read_photo
from facemask.utils.errors import PipelineError
from facemask.utils.files import DISK_FULL, atomic_output
from facemask.utils.logs import Progress, log

#: a centre crop, and a face crop without a face, is centred and this share of the photo's width
CENTRE_WIDTH = 0.8
#: a face box: left, top, width, height in the photo's pixels
Box = tuple[float, float, float, float]
#: the columns of a table of found faces (see facemask.data.faces.find_faces)
FACE_COLUMNS = ["path", "face_left", "face_top", "face_width", "face_height", "detector", "device"]
#: the detector name of a face placed where its folder's other faces are, not found (see
#: facemask.data.faces.place_missed_faces)
PLACED = "folder"


def load_prepared(path: Path, size: tuple[int, int], crop: Crop, face: Box | None):
    """One photo as uint8 (height, width, 3) pixels at `size`, and its `crop` box (see crop_box;
    none for the whole photo)."""
    height, width = size
    image = read_photo(path, at_least=max(size) if crop.kind == "whole" else None)
    box = crop_box(image.width, image.height, crop, face, height / width)
    return np.asarray(image.resize((width, height), Image.Resampling.BICUBIC, box=box)), box


def prepare_photos(
    data_dir: str | Path,
    paths: Sequence[str],
    size: tuple[int, int],
    output: str | Path,
    crop: Crop,
    threads: int = 1,
    faces: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Write the photos at `paths` (relative to `data_dir`) into the array `output`, in order,
    cropped as `crop` says, and return one row per photo: path, crop box (left, top, right, bottom
    in the upright photo; empty for the whole photo), whether a face was found and by which
    detector. A face crop's faces come from `faces`, a facemask.data.faces.find_faces table of
    these paths."""
    data_dir, height, width = Path(data_dir), *size
    face_crop = crop.kind == "face"
    if face_crop and faces is None:
        raise PipelineError("a face crop needs the faces of its photos (facemask.data.faces.find_faces)")
    found = face_boxes(faces, paths) if face_crop else [None] * len(paths)
    boxes = []
    with atomic_output(output) as partial, open(partial, "wb") as file:
        start_array_file(file, (len(paths), height, width, 3))
        progress = Progress(len(paths), f"preparing {height}x{width}")
        with ThreadPoolExecutor(max(threads, 1)) as pool:  # PIL releases the GIL
            photos = in_order(
                pool,
                lambda item: load_prepared(data_dir / item[0], size, crop, item[1]),
                zip(paths, found, strict=True),
                4 * max(threads, 1),
            )
            for row, (photo, box) in enumerate(photos):
                file.write(photo)  # the next row of the array; the job holds a few photos, never the array
                boxes.append(box or (None,) * 4)
                progress.update(row + 1, 1)
    crops = pd.DataFrame(boxes, columns=["left", "top", "right", "bottom"]).assign(path=list(paths))
    # a detector read back from CSV is NaN where none found a face
    detector = faces["detector"].fillna("").to_list() if faces is not None else [None] * len(paths)
    crops["face_found"] = [None if name is None else name not in ("", PLACED) for name in detector]
    crops["detector"] = detector
    return crops[["path", "left", "top", "right", "bottom", "face_found", "detector"]]


def face_boxes(faces: pd.DataFrame, paths: Sequence[str]) -> list[Box | None]:
    """The face box of each of `paths` in a find_faces table (None where no face was found); a
    table of other photos is an error naming the first photo it lacks."""
    if faces["path"].to_list() != list(paths):
        missing = next((p for p in paths if p not in set(faces["path"])), "(the order differs)")
        raise PipelineError(f"the face table does not list the photos of the index: {missing}")
    boxes = faces[FACE_COLUMNS[1:5]].to_numpy(float)
    return [None if np.isnan(box).any() else tuple(box) for box in boxes]


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
    crop: Crop,
    threads: int = 1,
    faces: dict[str, pd.DataFrame] | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Write the cache of each split's indexed `photos` (split name -> photo index) to its path
    in `outputs`, cropped as `crop` says (a face crop around each split's `faces`,
    facemask.data.faces.find_faces tables); return the crop table of all (see prepare_photos, with a
    split column) and a report: photos per split, size, megabytes, time, the crop, and with a face
    crop the faces found and the centre-crop fallbacks, by detector."""
    started = time.perf_counter()
    crops = pd.concat(
        [
            prepare_photos(
                data_dir, list(table["path"]), size, outputs[split], crop, threads, (faces or {}).get(split)
            ).assign(split=split)
            for split, table in photos.items()
        ],
        ignore_index=True,
    )
    seconds = time.perf_counter() - started
    report = cache_report(photos, size, outputs, seconds, len(crops))
    report |= {"crop": as_config(crop.pixel_form)}
    report |= crop_report(crops) if crop.kind == "face" else {}
    log.info(
        "prepared %d photos at %dx%d in %.0f s (%.0f photos/s), %.0f MB",
        len(crops),
        *size,
        seconds,
        report["photos_per_s"],
        report["megabytes"],
    )
    return crops, report


def cache_report(
    photos: dict[str, pd.DataFrame],
    size: tuple[int, int],
    outputs: dict[str, str | Path],
    seconds: float,
    done: int,
) -> dict[str, Any]:
    """What prepare_cache reports of every cache: size, photos per split, megabytes, time, rate."""
    return {
        "height": size[0],
        "width": size[1],
        **{f"{split}_photos": len(table) for split, table in photos.items()},
        "megabytes": round(sum(Path(outputs[split]).stat().st_size for split in photos) / 2**20, 1),
        "seconds": round(seconds, 1),
        "photos_per_s": round(done / seconds, 1),
    }


def crop_report(crops: pd.DataFrame) -> dict[str, Any]:
    """What the face crop found: the faces by detector, those placed where their folder's faces
    are, and the centre-crop fallbacks, by split."""
    found = crops["face_found"].astype(bool)
    placed, centred = crops["detector"] == PLACED, crops["detector"] == ""
    by_detector = crops.loc[found, "detector"].value_counts().to_dict()
    log.info(
        "faces found in %d of %d photos (%s); %d placed where their folder's faces are; %d centre crops",
        found.sum(),
        len(found),
        ", ".join(f"{count} by {name}" for name, count in by_detector.items()),
        placed.sum(),
        centred.sum(),
    )
    return {
        "faces_found": {"count": int(found.sum()), "by_detector": by_detector},
        "faces_placed": {
            "count": int(placed.sum()),
            "by_split": crops[placed]["split"].value_counts().to_dict(),
        },
        "centre_crop_fallbacks": {
            "count": int(centred.sum()),
            "by_split": crops[centred]["split"].value_counts().to_dict(),
        },
    }


def crop_box(width: int, height: int, crop: Crop, face: Box | None, aspect: float) -> Box | None:
    """(left, top, right, bottom) of the region of a `width` x `height` photo that `crop` keeps:
    None for the whole photo; for a face crop, `crop.scale` face sizes wide around `face` (its size:
    the geometric mean of its width and height, as the Haar cascade's square boxes and MTCNN's
    taller ones differ); for a centre crop, and a face crop without a face, a centred box
    CENTRE_WIDTH of the photo wide; `aspect` (height / width) as the model's input, moved and shrunk
    to fit inside."""
    if crop.kind == "whole":
        return None
    if crop.kind == "centre" or face is None:
        box_width, centre_x, centre_y = width * CENTRE_WIDTH, width / 2, height / 2
    else:
        assert crop.scale is not None  # a face crop has its scale (Crop.__post_init__)
        left, top, w, h = face
        box_width, centre_x, centre_y = (w * h) ** 0.5 * crop.scale, left + w / 2, top + h / 2
    box_height = box_width * aspect
    shrink = min(1.0, width / box_width, height / box_height)
    box_width, box_height = box_width * shrink, box_height * shrink
    left = max(min(centre_x - box_width / 2, width - box_width), 0.0)
    top = max(min(centre_y - box_height / 2, height - box_height), 0.0)
    return left, top, min(left + box_width, width), min(top + box_height, height)
