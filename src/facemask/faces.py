"""Face boxes for the face crop: MTCNN (facenet-pytorch, whose three small networks ship inside
the package) finds masked faces, and OpenCV's bundled Haar cascade is the fallback where it finds
none, or the only detector with `face_detector: haar`. Neither downloads anything."""

import threading
from pathlib import Path

import cv2
import numpy as np

from facemask.errors import PipelineError

CASCADE = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"  # type: ignore[attr-defined]
DETECTORS = ("mtcnn", "haar")
#: border added around the photo, as a share of its short side, so that a face filling the frame is found
BORDER = 0.25
#: without a face, the crop is centred and this share of the photo's width
FALLBACK_WIDTH = 0.8
#: MTCNN's three stage thresholds, lower than facenet-pytorch's 0.6 / 0.7 / 0.7 so that a face
#: half hidden by a mask passes; set with its search side on 20 utkmask-dev people apart from those
#: measured in docs/benchmarks.md
MTCNN_THRESHOLDS = (0.3, 0.3, 0.2)
MTCNN_INSTALL = "pip install --no-deps facenet-pytorch==2.6.0"


class HaarCascade:
    """OpenCV's frontal-face Haar cascade: boxes (left, top, width, height) in an RGB search image."""

    search_side = 320  # the longest side photos are searched at (shrunk or enlarged to it)

    def __init__(self, min_face: float):
        self.cascade = cv2.CascadeClassifier(str(CASCADE))
        if self.cascade.empty():
            raise PipelineError(f"{CASCADE}: OpenCV's face cascade did not load")
        self.min_side = max(int(self.search_side * min_face), 20)

    def boxes(self, rgb: np.ndarray) -> list:
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        return list(
            self.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=3, minSize=(self.min_side,) * 2)
        )


class Mtcnn:
    """facenet-pytorch's MTCNN on the CPU: boxes (left, top, width, height) in an RGB search image."""

    search_side = 160

    def __init__(self, min_face: float):
        try:
            from facenet_pytorch import MTCNN
        except ImportError as error:
            raise PipelineError(
                f"face_detector mtcnn needs facenet-pytorch ({error}); install it with "
                f"`{MTCNN_INSTALL}` (./setup.sh does), or set cache.face_detector: haar"
            ) from None
        min_side = max(int(self.search_side * min_face), 20)
        self.mtcnn = MTCNN(min_face_size=min_side, thresholds=list(MTCNN_THRESHOLDS), device="cpu")

    def boxes(self, rgb: np.ndarray) -> list:
        found, _ = self.mtcnn.detect(rgb)
        if found is None:
            return []
        return [
            (left, top, right - left, bottom - top) for left, top, right, bottom in np.asarray(found, float)
        ]


class FaceFinder:
    """The largest face of a photo found by `detector`, or, with `fallback`, by the Haar cascade
    where MTCNN finds none. Each detector searches the photo with its longest side at the
    detector's search side, for faces at least `min_face` of that wide. Safe to share between
    threads: each thread searches with detectors of its own, as OpenCV's cascade classifier is not
    (one shared by 2 to 4 threads found other faces in 15 to 23 of 42 photos)."""

    def __init__(self, detector: str = "mtcnn", min_face: float = 0.15, fallback: bool = True):
        if detector not in DETECTORS:
            raise PipelineError(f"unknown face detector {detector!r}: one of {', '.join(DETECTORS)}")
        self.detector, self.min_face, self.fallback = detector, min_face, fallback
        self._local = threading.local()
        self.detectors()  # a detector that cannot load fails here, not in a worker thread

    def detectors(self) -> dict[str, Mtcnn | HaarCascade]:
        """This thread's detectors, by name, in the order they search."""
        if not hasattr(self._local, "detectors"):
            detectors: dict[str, Mtcnn | HaarCascade] = {}
            if self.detector == "mtcnn":
                detectors["mtcnn"] = Mtcnn(self.min_face)
            if self.detector == "haar" or self.fallback:
                detectors["haar"] = HaarCascade(self.min_face)
            self._local.detectors = detectors
        return self._local.detectors

    def find(self, rgb: np.ndarray) -> tuple[tuple[float, float, float, float] | None, str | None]:
        """(left, top, width, height) of the largest face in an RGB uint8 photo, in its pixels, and
        the name of the detector that found it; (None, None) when none does."""
        height, width = rgb.shape[:2]
        for name, detector in self.detectors().items():
            factor = detector.search_side / max(height, width)
            search = cv2.resize(
                rgb,
                (round(width * factor), round(height * factor)),
                interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR,
            )
            pad = int(min(search.shape[:2]) * BORDER)
            faces = detector.boxes(cv2.copyMakeBorder(search, pad, pad, pad, pad, cv2.BORDER_REPLICATE))
            if faces:
                left, top, w, h = max(faces, key=lambda box: box[2] * box[3])
                return ((left - pad) / factor, (top - pad) / factor, w / factor, h / factor), name
        return None, None


def crop_box(
    width: int, height: int, face, aspect: float, face_scale: float
) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) of the region to keep in a `width` x `height` photo: `face_scale`
    face sizes wide around `face` (its size: the geometric mean of its width and height, as the
    Haar cascade's square boxes and MTCNN's taller ones differ), or, when `face` is None, a centred
    box FALLBACK_WIDTH of the photo wide; `aspect` (height / width) as the model's input, moved and
    shrunk to fit inside."""
    if face is None:
        box_width, centre_x, centre_y = width * FALLBACK_WIDTH, width / 2, height / 2
    else:
        left, top, w, h = face
        box_width, centre_x, centre_y = (w * h) ** 0.5 * face_scale, left + w / 2, top + h / 2
    box_height = box_width * aspect
    shrink = min(1.0, width / box_width, height / box_height)
    box_width, box_height = box_width * shrink, box_height * shrink
    left = max(min(centre_x - box_width / 2, width - box_width), 0.0)
    top = max(min(centre_y - box_height / 2, height - box_height), 0.0)
    return left, top, min(left + box_width, width), min(top + box_height, height)
