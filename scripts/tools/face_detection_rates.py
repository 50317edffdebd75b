"""Share of photos in which each face detector finds a face, by photo kind (masked, incorrect
mask, bare), on a sample of a data set's training people: OpenCV's Haar cascade (the face crop's,
facemask.faces), MTCNN (facenet-pytorch) and BlazeFace short range (mediapipe), whose weights ship
inside their packages. Neither package is a project requirement (facenet-pytorch pins an old torch,
mediapipe pulls opencv-contrib and jax), so install them beside the project without their
dependencies:

    pip install --no-deps --target /tmp/detectors facenet-pytorch==2.6.0 mediapipe==0.10.14
    pip install --target /tmp/detectors absl-py flatbuffers "protobuf<5" attrs
    PYTHONPATH=/tmp/detectors python scripts/tools/face_detection_rates.py ../shared/data/utkmask-dev --people 80
"""

import argparse
from pathlib import Path

import cv2
import mediapipe
import numpy as np
import pandas as pd
from facenet_pytorch import MTCNN
from PIL import Image

from facemask.faces import BORDER, FaceFinder


def detectors(mtcnn_thresholds: list[float], blaze_confidence: float) -> dict:
    """Each detector as a function of an RGB photo that says whether it finds a face; MTCNN and
    BlazeFace search the photo with the face crop's replicated border, as the Haar cascade does."""
    haar = FaceFinder()
    mtcnn = MTCNN(device="cpu", keep_all=True, thresholds=mtcnn_thresholds)
    blaze = mediapipe.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=blaze_confidence)

    def bordered(rgb):
        pad = int(BORDER * min(rgb.shape[:2]))
        return cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)

    return {"haar": lambda rgb: haar.find(rgb) is not None,
            "mtcnn": lambda rgb: mtcnn.detect(Image.fromarray(bordered(rgb)))[0] is not None,
            "blazeface": lambda rgb: bool(blaze.process(bordered(rgb)).detections)}


def person_interval(found: pd.DataFrame, column: str, rng, resamples: int = 2000) -> np.ndarray:
    """95 % interval of the share found, people resampled with replacement."""
    per_person = found.groupby("person")[column].agg(["sum", "count"]).to_numpy()
    shares = [(lambda s: s[:, 0].sum() / s[:, 1].sum())(per_person[rng.integers(len(per_person), size=len(per_person))])
              for _ in range(resamples)]
    return np.percentile(shares, [2.5, 97.5])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="a data set in the competition layout")
    parser.add_argument("--people", type=int, default=80)
    parser.add_argument("--mtcnn-thresholds", type=float, nargs=3, default=[0.5, 0.5, 0.3])
    parser.add_argument("--blaze-confidence", type=float, default=0.3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    folders = sorted((args.data_dir / "train" / "images").iterdir())
    finders = detectors(args.mtcnn_thresholds, args.blaze_confidence)
    rows = []
    for folder in rng.choice(folders, size=args.people, replace=False):
        for photo in sorted(folder.iterdir()):
            rgb = np.asarray(Image.open(photo).convert("RGB"))
            kind = "masked" if photo.stem.startswith("mask") else photo.stem
            rows.append({"person": folder.name, "kind": kind, **{name: find(rgb) for name, find in finders.items()}})
    found = pd.DataFrame(rows)
    found["mtcnn_or_blazeface"] = found["mtcnn"] | found["blazeface"]
    print(found.groupby("kind")[[*finders, "mtcnn_or_blazeface"]].mean().round(3).assign(photos=found.groupby("kind").size()))
    masked = found[found["kind"] == "masked"]
    for column in [*finders, "mtcnn_or_blazeface"]:
        low, high = person_interval(masked, column, rng)
        print(f"masked faces found by {column}: {masked[column].mean():.3f}, 95 % interval over people [{low:.3f}, {high:.3f}]")


if __name__ == "__main__":
    main()
