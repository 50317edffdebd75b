"""Face boxes for the face crop: MTCNN (facenet-pytorch, whose three small networks ship inside
the package) finds masked faces, and OpenCV's bundled Haar cascade is the fallback where it finds
none, or the only detector with `crop.detector: haar`. Neither downloads anything. Photos are
searched in batches: MTCNN runs its three networks once per batch of photos of one size, not once
per photo (the competition's photos are all 384 x 512)."""

from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from facemask.data.cache import FACE_COLUMNS, PLACED, Box
from facemask.data.photo_index import read_photo
from facemask.utils.errors import PipelineError
from facemask.utils.logs import Progress

CASCADE = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"  # type: ignore[attr-defined]
DETECTORS = ("mtcnn", "haar")
#: border added around the photo, as a share of its short side, so that a face filling the frame is found
BORDER = 0.25
#: MTCNN's three stage thresholds, lower than facenet-pytorch's 0.6 / 0.7 / 0.7 so that a face
#: half hidden by a mask passes; set with its search side on 20 utkmask-dev people apart from those
#: measured in docs/benchmarks.md
MTCNN_THRESHOLDS = (0.3, 0.3, 0.2)
MTCNN_INSTALL = "pip install --no-deps facenet-pytorch==2.6.0"
#: the smallest face searched for, as a share of the search side (a face in a portrait is 40-50 %
#: of its width, in a face chip most of it)
MIN_FACE = 0.2
#: photos decoded and searched together
BATCH = 64


class HaarCascade:
    """OpenCV's frontal-face Haar cascade: boxes (left, top, width, height) in RGB search images."""

    search_side = 320  # the longest side photos are searched at (shrunk or enlarged to it)

    def __init__(self):
        self.cascade = cv2.CascadeClassifier(str(CASCADE))
        if self.cascade.empty():
            raise PipelineError(f"{CASCADE}: OpenCV's face cascade did not load")
        self.min_side = max(int(self.search_side * MIN_FACE), 20)

    def boxes(self, images: Sequence[np.ndarray]) -> list[list[Box]]:
        return [
            list(
                self.cascade.detectMultiScale(
                    cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY),
                    scaleFactor=1.1,
                    minNeighbors=3,
                    minSize=(self.min_side,) * 2,
                )
            )
            for rgb in images
        ]


class Mtcnn:
    """facenet-pytorch's MTCNN: boxes (left, top, width, height) in RGB search images, each run of
    its networks over every image of one size at once (channels-last, which its max pooling runs
    1.5 times faster in on the CPU), on `threads` torch threads, on `device` ('cpu' or 'cuda':
    resolved by the caller, see facemask.utils.devices.pick_device; its boxes may differ by
    device in the last bits, so the pipeline records the device and predict uses the same)."""

    search_side = 128

    def __init__(self, threads: int = 1, device: str = "cpu"):
        self.threads = threads
        try:
            import torch
            from facenet_pytorch import MTCNN
        except ImportError as error:
            raise PipelineError(
                f"face_detector mtcnn needs facenet-pytorch ({error}); install it with "
                f"`{MTCNN_INSTALL}` (./setup.sh does), or set cache.crop.detector: haar"
            ) from None
        min_side = max(int(self.search_side * MIN_FACE), 20)
        self.mtcnn = MTCNN(min_face_size=min_side, thresholds=list(MTCNN_THRESHOLDS), device=device)
        for net in (self.mtcnn.pnet, self.mtcnn.rnet, self.mtcnn.onet):
            net.to(memory_format=torch.channels_last)

    def boxes(self, images: Sequence[np.ndarray]) -> list[list[Box]]:
        found: list[list[Box]] = [[] for _ in images]
        by_shape: dict[tuple, list[int]] = {}
        for row, image in enumerate(images):
            by_shape.setdefault(image.shape, []).append(row)
        for rows in by_shape.values():
            with torch_threads(self.threads):
                batch, _ = self.mtcnn.detect(np.stack([images[row] for row in rows]))
            for row, boxes in zip(rows, batch, strict=True):
                if boxes is not None:
                    found[row] = [
                        (left, top, right - left, bottom - top) for left, top, right, bottom in boxes
                    ]
        return found


class FaceFinder:
    """The largest face of each photo found by `detector`, or, with `fallback`, by the Haar cascade
    where MTCNN finds none. Each detector searches the photos with their longest side at the
    detector's search side and a replicated border, for faces at least MIN_FACE of that wide."""

    def __init__(self, detector: str, fallback: bool = True, threads: int = 1, device: str = "cpu"):
        if detector not in DETECTORS:
            raise PipelineError(f"unknown face detector {detector!r}: one of {', '.join(DETECTORS)}")
        self.detectors: dict[str, Mtcnn | HaarCascade] = {}
        if detector == "mtcnn":
            self.detectors["mtcnn"] = Mtcnn(threads, device)
        if detector == "haar" or fallback:
            self.detectors["haar"] = HaarCascade()

    def find_many(self, photos: Sequence[np.ndarray]) -> list[tuple[Box | None, str | None]]:
        """(left, top, width, height) of the largest face in each RGB uint8 photo, in its pixels,
        and the name of the detector that found it; (None, None) where none does."""
        found: list[tuple[Box | None, str | None]] = [(None, None)] * len(photos)
        for name, detector in self.detectors.items():
            missing = [row for row, (face, _) in enumerate(found) if face is None]
            if not missing:
                break
            searches = [search_image(photos[row], detector.search_side) for row in missing]
            boxes = detector.boxes([image for image, _, _ in searches])
            for row, (_, factor, pad), faces in zip(missing, searches, boxes, strict=True):
                if faces:
                    left, top, w, h = max(faces, key=lambda box: box[2] * box[3])
                    found[row] = ((left - pad) / factor, (top - pad) / factor, w / factor, h / factor), name
        return found

    def find(self, rgb: np.ndarray) -> tuple[Box | None, str | None]:
        """The largest face of one photo and its detector (see find_many)."""
        return self.find_many([rgb])[0]


def search_image(rgb: np.ndarray, side: int) -> tuple[np.ndarray, float, int]:
    """`rgb` resized so that its longest side is `side`, with a replicated border of BORDER of its
    short side; the resize factor and the border's width."""
    height, width = rgb.shape[:2]
    factor = side / max(height, width)
    search = cv2.resize(
        rgb,
        (round(width * factor), round(height * factor)),
        interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR,
    )
    pad = int(min(search.shape[:2]) * BORDER)
    return cv2.copyMakeBorder(search, pad, pad, pad, pad, cv2.BORDER_REPLICATE), factor, pad


def find_faces(
    data_dir: str | Path,
    paths: Sequence[str],
    detector: str,
    threads: int = 1,
    fallback: bool = True,
    device: str = "cpu",
) -> pd.DataFrame:
    """The face of each photo at `paths` (relative to `data_dir`), one row per photo in order (see
    FACE_COLUMNS; the box in the upright photo's whole pixels, empty and detector "" where no face
    is found; MTCNN's misses searched again by the Haar cascade with `fallback`): photos decoded by
    `threads` threads and searched BATCH at a time on as many torch threads, MTCNN on `device`
    ('cpu' or 'cuda'); each row's `device` says where its face was found ('cpu' for the Haar
    cascade, "" where none was)."""
    finder = FaceFinder(detector, fallback, max(threads, 1), device)
    rows: list[tuple] = []
    sizes: list[tuple[int, int]] = []
    progress = Progress(len(paths), "finding faces")
    batches = [list(paths[start : start + BATCH]) for start in range(0, len(paths), BATCH)]
    with ThreadPoolExecutor(max(threads, 1)) as pool:

        def decoded(batch: list[str]) -> list[Future]:
            return [pool.submit(lambda path: np.asarray(read_photo(Path(data_dir) / path)), p) for p in batch]

        coming = decoded(batches[0]) if batches else []
        for number, batch in enumerate(batches):
            photos = [future.result() for future in coming]
            sizes += [photo.shape[:2] for photo in photos]
            coming = decoded(batches[number + 1]) if number + 1 < len(batches) else []  # while searching
            for path, (face, name) in zip(batch, finder.find_many(photos), strict=True):
                # whole pixels: MTCNN's boxes move by a fraction of one with the number of threads
                where = device if name == "mtcnn" else "cpu" if name else ""
                rows.append((path, *(np.round(face) if face else (None,) * 4), name or "", where))
            progress.update(len(rows), len(batch))
    return place_missed_faces(pd.DataFrame(rows, columns=FACE_COLUMNS), sizes)


def found_on(faces: pd.DataFrame) -> str:
    """The device that MTCNN found the faces of a find_faces table on: 'cuda' or 'cpu' (also for
    the Haar cascade, and for a table from before the device was recorded)."""
    devices = set(faces.get("device", pd.Series(dtype=str)).dropna())
    return "cuda" if "cuda" in devices else "cpu"


def place_missed_faces(faces: pd.DataFrame, sizes: Sequence[tuple[int, int]]) -> pd.DataFrame:
    """`faces` with a box for each photo in which no face was found: the median box of the faces
    found in the photos of its folder that have its size (in the competition's layout, the same
    person's other photos of training; the eval folder's photos), detector PLACED; a photo whose
    folder has none stays without (a centre crop). A masked face is the one a detector misses
    most, and the person's bare face beside it is rarely missed."""
    group = pd.Series(
        [f"{Path(path).parent}|{size}" for path, size in zip(faces["path"], sizes, strict=True)], faces.index
    )
    found = faces["detector"] != ""
    medians = faces.loc[found, FACE_COLUMNS[1:5]].groupby(group[found]).median()
    missed = ~found & group.isin(medians.index)
    faces.loc[missed, FACE_COLUMNS[1:5]] = medians.loc[group[missed]].round().to_numpy()
    faces.loc[missed, "detector"] = PLACED
    return faces


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Torch on `count` threads, without autograd, inside the block; its threads as before after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        with torch.inference_mode():
            yield
    finally:
        torch.set_num_threads(before)
