"""Write a copy of a framed data set (../shared/tools/frame_photos.py) in which every photo is cut
to the box where its face chip was placed (`meta/chip_boxes.csv`): the oracle crop, the ceiling
of any crop of the framed photos, for docs/benchmarks.md (l). CSVs are copied unchanged.

    python scripts/tools/oracle_crop.py data/utkmask-dev-framed data/utkmask-dev-oracle
"""

import argparse
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
from PIL import Image


def crop_one(source: Path, target: Path, box: tuple[int, int, int, int]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(source) as photo:
        photo.crop(box).save(target, quality=95)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("framed", type=Path, help="a framed data set, with meta/chip_boxes.csv")
    parser.add_argument("output", type=Path, help="where the cropped copy goes")
    args = parser.parse_args()
    boxes = pd.read_csv(args.framed / "meta" / "chip_boxes.csv")
    for csv in ("train/train.csv", "eval/info.csv", "eval/labels.csv"):
        if (args.framed / csv).is_file():
            (args.output / csv).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(args.framed / csv, args.output / csv)
    with ThreadPoolExecutor(4) as pool:
        list(
            pool.map(
                lambda row: crop_one(
                    args.framed / row.file, args.output / row.file, (row.left, row.top, row.right, row.bottom)
                ),
                boxes.itertuples(),
            )
        )
    print(f"cut {len(boxes)} photos to their chip boxes into {args.output}")


if __name__ == "__main__":
    main()
