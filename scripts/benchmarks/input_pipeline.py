"""The input pipeline: images/s delivered to the training loop from full-size 384 x 512 photos, by
the peers' baseline (PIL decode + torchvision Resize / ToTensor / Normalize per photo per epoch,
DataLoader workers) and by ours (uint8 batches sliced from the prepared-image cache; the training
augmentation, which runs on the GPU in a real run, timed here on the CPU as well)."""

import tempfile
from pathlib import Path

import numpy as np
import torch
from benchmarks.common import FULL_SIZE, images_per_second, model_defaults
from PIL import Image
from torchvision import transforms

from facemask.config.blocks import ModelBlock
from facemask.config.sections import WHOLE_PHOTO
from facemask.data.augment import batch_transform
from facemask.data.cache import prepare_cache
from facemask.data.demo import make_demo_data
from facemask.data.loader import CachedPhotos, photo_loader
from facemask.data.photo_index import index_eval_photos, index_train_photos, read_photo

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # ImageNet's, as the peers normalised


class PeersDataset(torch.utils.data.Dataset):
    """The course baseline's dataset: every photo decoded with PIL and transformed per sample."""

    def __init__(self, root: Path, paths: list[str], size: tuple[int, int]):
        self.root, self.paths = root, paths
        self.transform = transforms.Compose(
            [transforms.Resize(size), transforms.ToTensor(), transforms.Normalize(MEAN, STD)]
        )

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        return self.transform(Image.open(self.root / self.paths[i]).convert("RGB")), 0


def full_size_data(folder: Path, source: Path | None, people: int) -> Path:
    """A data set of 384 x 512 photos in the competition layout: `source` resized, or the demo generator."""
    if source is None:
        make_demo_data(
            folder,
            train_people=people,
            eval_people=max(people // 4, 1),
            width=FULL_SIZE[1],
            height=FULL_SIZE[0],
            seed=0,
        )
        return folder
    for csv in ("train/train.csv", "eval/info.csv"):
        (folder / csv).parent.mkdir(parents=True, exist_ok=True)
        (folder / csv).write_bytes((source / csv).read_bytes())
    for photo in list((source / "train/images").glob("*/*")) + list((source / "eval/images").glob("*")):
        target = folder / photo.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        read_photo(photo).resize(FULL_SIZE[::-1], Image.Resampling.BICUBIC).save(target, quality=95)
    return folder


def bench_input(args) -> list[dict]:
    """Peers' per-photo decoding vs slices of the prepared-image cache, same photos, same size."""
    size = tuple(int(s) for s in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        data = full_size_data(Path(tmp) / "data", Path(args.source) if args.source else None, args.people)
        index, eval_index = index_train_photos(data, (30, 60)), index_eval_photos(data)
        cache_shape = tuple(round(s * 1.125) for s in size)
        cache = {"train": Path(tmp) / "train.npy", "eval": Path(tmp) / "eval.npy"}
        _, report = prepare_cache(
            data, {"train": index, "eval": eval_index}, cache_shape, cache, WHOLE_PHOTO, args.workers
        )
        limit = len(index) // args.batch_size - 1
        peers = torch.utils.data.DataLoader(
            PeersDataset(data, list(index["path"]), size),
            batch_size=args.batch_size,
            shuffle=True,
            num_workers=args.workers,
            drop_last=True,
        )
        ours = photo_loader(
            CachedPhotos(cache["train"], np.arange(len(index)), index["label"]),
            args.batch_size,
            args.workers,
            shuffle=True,
        )
        augment = batch_transform(
            {"input_size": (3, *size), "mean": MEAN, "std": STD, "interpolation": "bilinear"},
            ModelBlock.from_config(model_defaults(arch="resnet18")).augment,
        )
        rows = []
        for _ in range(args.repeats):  # alternate, so both see the same machine load
            rows.append(
                {
                    "baseline": images_per_second(peers, limit),
                    "ours": images_per_second(ours, limit),
                    "ours_augmented_on_cpu": images_per_second(ours, limit, augment),
                }
            )
    best = {key: max(row[key] for row in rows) for key in rows[0]}
    return [
        {
            "benchmark": "input pipeline",
            "photos": len(index),
            "source": args.source or "demo generator, 384 x 512",
            "size": args.size,
            "batch_size": args.batch_size,
            "workers": args.workers,
            "baseline_images_per_s": round(best["baseline"], 1),
            "ours_images_per_s": round(best["ours"], 1),
            "ratio": round(best["ours"] / best["baseline"], 1),
            "ours_augmented_on_cpu_images_per_s": round(best["ours_augmented_on_cpu"], 1),
            "ratio_augmented_on_cpu": round(best["ours_augmented_on_cpu"] / best["baseline"], 1),
            "cache_build_photos_per_s": report["photos_per_s"],
            "runs": rows,
        }
    ]
