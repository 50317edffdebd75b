"""Share of photos in which the face crop's detectors find a face, by photo kind (masked, incorrect
mask, bare), on a sample of a data set's training people, and the photos per second of each as the
pipeline runs it (facemask.data.faces.find_faces: photos decoded on `--threads` threads and searched in
batches): OpenCV's Haar cascade alone (`crop.detector: haar`), MTCNN alone, and the pipeline's
default (`crop.detector: mtcnn`: MTCNN, then the cascade where MTCNN finds none).

    python scripts/tools/face_detection_rates.py ../shared/data/utkmask-dev --people 80
"""

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from facemask.data.faces import DETECTORS, find_faces


def person_interval(found: pd.DataFrame, column: str, rng, resamples: int = 2000) -> np.ndarray:
    """95 % interval of the share found, people resampled with replacement."""
    per_person = found.groupby("person")[column].agg(["sum", "count"]).to_numpy()
    shares = [
        (lambda s: s[:, 0].sum() / s[:, 1].sum())(
            per_person[rng.integers(len(per_person), size=len(per_person))]
        )
        for _ in range(resamples)
    ]
    return np.percentile(shares, [2.5, 97.5])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="a data set in the competition layout")
    parser.add_argument("--people", type=int, default=80, help="people drawn at random (seed 0)")
    parser.add_argument("--threads", type=int, default=2, help="decoding and torch threads")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    folders = sorted((args.data_dir / "train" / "images").iterdir())
    chosen = rng.choice(folders, size=min(args.people, len(folders)), replace=False)
    paths = [str(photo.relative_to(args.data_dir)) for folder in chosen for photo in sorted(folder.iterdir())]
    found = pd.DataFrame(
        {
            "person": [Path(path).parent.name for path in paths],
            "kind": [
                Path(path).stem if not Path(path).stem.startswith("mask") else "masked" for path in paths
            ],
        }
    )
    finders = {"haar": ("haar", True), "mtcnn": ("mtcnn", False), "mtcnn_then_haar": ("mtcnn", True)}
    for name, (detector, fallback) in finders.items():
        started = time.perf_counter()
        table = find_faces(args.data_dir, paths, detector, args.threads, fallback)
        seconds = time.perf_counter() - started
        found[name] = table["detector"].isin(DETECTORS).to_numpy()  # not those placed by their folder
        masked = found[found["kind"] == "masked"]
        low, high = person_interval(masked, name, rng)
        print(
            f"{name}: masked faces found {masked[name].mean():.3f} [{low:.3f}, {high:.3f}] (95 %, people "
            f"resampled); {len(paths) / seconds:.1f} photos/s on {args.threads} threads"
        )
    print(found.groupby("kind")[list(finders)].mean().round(3).assign(photos=found.groupby("kind").size()))


if __name__ == "__main__":
    main()
