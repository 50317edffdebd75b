"""What MLflow tracking costs a train job: the demo's ResNet34 block trained on the demo data for a
few epochs twice, untracked and tracked (the default local SQLite store), side by side, with the
tracking calls timed on their own (opening the run, each epoch's metrics, closing it).

    python scripts/tools/tracking_cost.py [--epochs 4] [--folder /tmp/tracking-cost]
"""

import argparse
import time
from pathlib import Path

import yaml

from facemask.config.blocks import ModelBlock
from facemask.config.schema import validated
from facemask.config.sections import WHOLE_PHOTO, Tracking
from facemask.data.cache import prepare_cache
from facemask.data.demo import make_demo_data
from facemask.data.folds import make_folds
from facemask.data.photo_index import index_eval_photos, index_train_photos
from facemask.tracking.store import TrackingTarget
from facemask.tracking.train_runs import TrainTracking
from facemask.train.fold import TrainOutputs, train_fold

ROOT = Path(__file__).parents[2]


class TimedTracking(TrainTracking):
    """TrainTracking that adds up the seconds of each of its calls by name."""

    seconds: dict[str, list[float]]

    def timed(self, name: str, call, *args) -> None:
        started = time.perf_counter()
        call(*args)
        self.seconds.setdefault(name, []).append(time.perf_counter() - started)

    def start(self, *args) -> None:
        self.timed(
            "open the run (import MLflow, make the store, parent and child runs, params)",
            super().start,
            *args,
        )

    def log_epoch(self, row: dict) -> None:
        self.timed("log one epoch's metrics", super().log_epoch, row)

    def end(self, *args) -> None:
        self.timed("close the run (tags, checkpoint SHA-256)", super().end, *args)


def demo_block() -> ModelBlock:
    """The demo config's resnet34 block, the schema's defaults filled in."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    demo = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    block = config["models"]["resnet34"] | demo["models"]["resnet34"]
    checked = validated({"models": {"resnet34": block}})
    return ModelBlock.from_config(checked["models"]["resnet34"], "fp32")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/tracking-cost"))
    args = parser.parse_args()
    data = args.folder / "data"
    make_demo_data(data, train_people=60, eval_people=1, width=96, height=128, seed=0)
    index = index_train_photos(data, (30, 60))
    block = demo_block()
    block = type(block).from_config(block.as_config() | {"epochs": args.epochs, "pretrained": False}, "fp32")
    size = (round(block.image_size[0] * 1.125), round(block.image_size[1] * 1.125))
    cache = {"train": args.folder / "train.npy", "eval": args.folder / "eval.npy"}
    prepare_cache(data, {"train": index, "eval": index_eval_photos(data)}, size, cache, WHOLE_PHOTO)
    folds = make_folds(index, k=3, seed=0)
    seconds = {}
    for tracked in (False, True):
        name = "tracked" if tracked else "untracked"
        out = args.folder / name
        out.mkdir(parents=True, exist_ok=True)
        outputs = TrainOutputs(out / "checkpoint.pt", out / "oof.csv", out / "history.csv")
        target = TrackingTarget.of(Tracking(True), args.folder / "results") if tracked else None
        tracking = TimedTracking(target, outputs.tracking_record, "resnet34/fold0", {})
        tracking.seconds = {}
        started = time.perf_counter()
        train_fold(index, folds, 0, block, cache["train"], outputs, tracking, device="cpu", threads=2)
        seconds[name] = time.perf_counter() - started
    print(f"{args.epochs} epochs of the demo's resnet34 block, fold 0 of 3, 2 threads:")
    for name, total in seconds.items():
        print(f"  {name}: {total:.1f} s, {total / args.epochs:.2f} s an epoch")
    print(f"  tracked / untracked: {seconds['tracked'] / seconds['untracked']:.3f}")
    for call, times in tracking.seconds.items():
        print(f"  {call}: {sum(times) / len(times):.4f} s (mean of {len(times)})")


if __name__ == "__main__":
    main()
