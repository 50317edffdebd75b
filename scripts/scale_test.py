"""The data check and the image cache at the competition's full size: wall time and peak memory
(RSS) of each, each in a process of its own as Snakemake runs the jobs (figures: docs/benchmarks.md).

    python scripts/scale_test.py                    # 2,700 people x 7 photos + 12,600 eval photos, 384 x 512
    python scripts/scale_test.py --people 100 --eval-photos 300 --json out.json

The photos are generated (facemask.data.demo.make_full_size_data: JPEG, one person in 20 PNG) in a
temporary folder under --tmpdir, removed at the end: about 1.5 GB at full size, and the cache
beside them (photos x 252 x 252 x 3 bytes by default: 6 GB).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from facemask.config.sections import WHOLE_PHOTO
from facemask.data.cache import prepare_cache
from facemask.data.demo import make_full_size_data
from facemask.data.photo_index import DataReport, index_eval_photos, index_train_photos
from facemask.utils.files import write_csv, write_json


def check_stage(work: Path) -> None:
    """The index jobs (both sides): check every photo, write the indexes and the data report."""
    report = DataReport()
    train, evaluation = (
        index_train_photos(work / "data", (30, 60), report),
        index_eval_photos(work / "data", report),
    )
    write_csv(train, work / "train_photos.csv")
    write_csv(evaluation, work / "eval_photos.csv")
    write_json(report.to_dict(), work / "data_report.json")


def cache_stage(work: Path, size: tuple[int, int], threads: int) -> None:
    """The prepare_images jobs (both sides): every indexed photo decoded once into the cache at `size`."""
    photos = {split: pd.read_csv(work / f"{split}_photos.csv", dtype=str) for split in ("train", "eval")}
    outputs = {split: work / f"{split}.npy" for split in photos}
    prepare_cache(work / "data", photos, size, outputs, WHOLE_PHOTO, threads)


def measure(stage: str, args, work: Path) -> dict:
    """Run `stage` in a new process: its wall time, CPU time (less sensitive to other load) and peak
    resident memory (ru_maxrss)."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--stage",
            stage,
            str(work),
            "--size",
            args.size,
            "--threads",
            str(args.threads),
        ]
    )
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"the {stage} stage failed (exit status {child.returncode})")
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }


def run(args, work: Path) -> dict:
    """Generate the data set under `work`, then measure the check and the cache on it."""
    started = time.perf_counter()
    make_full_size_data(
        work / "data", args.people, args.eval_photos, drawn_people=min(args.drawn_people, args.people)
    )
    generated = time.perf_counter() - started
    photos = args.people * 7 + args.eval_photos
    data_mb = sum(f.stat().st_size for f in (work / "data").rglob("*") if f.is_file()) / 2**20
    result = {
        "photos": photos,
        "people": args.people,
        "eval_photos": args.eval_photos,
        "data_mb": round(data_mb),
        "generation_seconds": round(generated, 1),
        "cache_size": args.size,
        "threads": args.threads,
    }
    for stage in ("check", "cache"):
        result[stage] = measure(stage, args, work)
    result["cache_mb"] = round(sum((work / f"{s}.npy").stat().st_size for s in ("train", "eval")) / 2**20)
    return result


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=2700, help="training people (7 photos each)")
    parser.add_argument("--eval-photos", type=int, default=12_600)
    parser.add_argument(
        "--drawn-people", type=int, default=40, help="people drawn; the others are copies of them"
    )
    parser.add_argument(
        "--size", default="252x252", help="cache height x width (default: the ViT's 224 x 1.125 margin)"
    )
    parser.add_argument("--threads", type=int, default=2, help="threads of the cache job")
    parser.add_argument("--tmpdir", help="where the temporary folder goes (default: the system's)")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument(
        "--stage", nargs=2, help=argparse.SUPPRESS
    )  # in a child: the stage to run and its folder
    args = parser.parse_args()
    if args.stage:
        stage, work = args.stage[0], Path(args.stage[1])
        if stage == "check":
            check_stage(work)
        else:
            cache_stage(work, tuple(int(side) for side in args.size.split("x")), args.threads)
        return
    with tempfile.TemporaryDirectory(dir=args.tmpdir) as work:
        result = run(args, Path(work))
    result["machine"] = {"node": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version()}
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
