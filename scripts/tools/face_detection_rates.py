"""Share of photos in which the face crop's detectors find a face, by photo kind (masked, incorrect
mask, bare), on a sample of a data set's training people, with the seconds each takes per photo:
OpenCV's Haar cascade alone (`face_detector: haar`), MTCNN alone, and the pipeline's default
(`face_detector: mtcnn`: MTCNN, then the cascade where MTCNN finds none); see facemask.faces.

    python scripts/tools/face_detection_rates.py ../shared/data/utkmask-dev --people 80
"""

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from facemask.dataset import read_photo
from facemask.faces import FaceFinder


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
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    folders = sorted((args.data_dir / "train" / "images").iterdir())
    finders = {
        "haar": FaceFinder("haar"),
        "mtcnn": FaceFinder("mtcnn", fallback=False),
        "mtcnn_then_haar": FaceFinder("mtcnn"),
    }
    rows, seconds = [], dict.fromkeys(finders, 0.0)
    for folder in rng.choice(folders, size=args.people, replace=False):
        for photo in sorted(folder.iterdir()):
            rgb = np.asarray(read_photo(photo))
            row = {"person": folder.name, "kind": "masked" if photo.stem.startswith("mask") else photo.stem}
            for name, finder in finders.items():
                started = time.perf_counter()
                row[name] = finder.find(rgb)[1] is not None
                seconds[name] += time.perf_counter() - started
            rows.append(row)
    found = pd.DataFrame(rows)
    print(found.groupby("kind")[list(finders)].mean().round(3).assign(photos=found.groupby("kind").size()))
    masked = found[found["kind"] == "masked"]
    for name in finders:
        low, high = person_interval(masked, name, rng)
        print(
            f"masked faces found by {name}: {masked[name].mean():.3f}, 95 % interval over people "
            f"[{low:.3f}, {high:.3f}]; {1000 * seconds[name] / len(found):.0f} ms a photo"
        )


if __name__ == "__main__":
    main()
