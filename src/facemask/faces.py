"""Face boxes from OpenCV's bundled Haar cascade (ships inside opencv-python-headless: no download)."""

from pathlib import Path

import cv2
import numpy as np

CASCADE = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
#: the longest side photos are searched at (faster, and the cascade's windows suit it)
SEARCH_SIDE = 320
#: border added around the photo, as a share of its short side, so that a face filling the frame is found
BORDER = 0.25
#: without a face, the crop is centred and this share of the photo's width
FALLBACK_WIDTH = 0.8


class FaceFinder:
    """The largest frontal face of a photo, or None."""

    def __init__(self, min_face: float = 0.15):
        self.cascade = cv2.CascadeClassifier(str(CASCADE))
        if self.cascade.empty():
            raise RuntimeError(f"{CASCADE}: OpenCV's face cascade did not load")
        self.min_face = min_face

    def find(self, rgb: np.ndarray) -> tuple[float, float, float, float] | None:
        """(left, top, width, height) of the largest face in an RGB uint8 photo, in its pixels."""
        height, width = rgb.shape[:2]
        factor = min(1.0, SEARCH_SIDE / max(height, width))
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if factor < 1.0:
            gray = cv2.resize(gray, (round(width * factor), round(height * factor)), interpolation=cv2.INTER_AREA)
        side = max(int(min(gray.shape) * self.min_face), 20)
        pad = int(min(gray.shape) * BORDER)
        gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        faces = self.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=3, minSize=(side, side))
        if len(faces) == 0:
            return None
        left, top, w, h = max(faces, key=lambda box: box[2] * box[3])
        return (left - pad) / factor, (top - pad) / factor, w / factor, h / factor


def crop_box(width: int, height: int, face, aspect: float, face_scale: float) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) of the region to keep in a `width` x `height` photo: `face_scale`
    face widths wide around `face` (or, when `face` is None, a centred box FALLBACK_WIDTH of the
    photo wide), `aspect` (height / width) as the model's input, moved and shrunk to fit inside."""
    if face is None:
        box_width, centre_x, centre_y = width * FALLBACK_WIDTH, width / 2, height / 2
    else:
        left, top, w, h = face
        box_width, centre_x, centre_y = w * face_scale, left + w / 2, top + h / 2
    box_height = box_width * aspect
    shrink = min(1.0, width / box_width, height / box_height)
    box_width, box_height = box_width * shrink, box_height * shrink
    left = max(min(centre_x - box_width / 2, width - box_width), 0.0)
    top = max(min(centre_y - box_height / 2, height - box_height), 0.0)
    return left, top, min(left + box_width, width), min(top + box_height, height)
