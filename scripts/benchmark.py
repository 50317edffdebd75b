"""Speed of the pipeline against the peers' approach, side by side in one run (docs/benchmarks.md).

    python scripts/benchmark.py input [--source ../shared/data/utkmask-dev]   # input pipeline, CPU
    python scripts/benchmark.py tta                                           # batched / per-view vs ttach TTA
    python scripts/benchmark.py gpu                                           # model-only vs end to end, on a GPU

`input`: images/s delivered to the training loop from full-size 384 x 512 photos, by the peers'
baseline (PIL decode + torchvision Resize / ToTensor / Normalize per photo per epoch, DataLoader
workers) and by ours (uint8 batches sliced from the prepared-image cache; the training
augmentation, which runs on the GPU in a real run, is timed here on the CPU as well).
`gpu`: training images/s of each seed architecture on random tensors already on the GPU (the
physical limit) and end to end (cache, loader, augmentation on the GPU, Mixup, loss, step), the
latter with batches read by loader workers and with the cache held on the GPU (`cache_on_gpu`),
inference images/s (both flip-TTA views in one pass), all in `--precision` (default auto, as
the jobs), the first passes' warm-up (compiling, with `--compile`), and the wall time of the
default 3 models x 5 folds ensemble extrapolated from those;
with `--jobs-per-gpu 2`, all of these for two jobs sharing the GPU at once (Snakemake's
`--resources gpu=2` on one GPU), to see whether sharing pays.
Results print as a Markdown table and are written as JSON with `--json`.
"""

import argparse
import json
import platform
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import ttach
from PIL import Image
from torchvision import transforms

from facemask.augment import batch_transform
from facemask.cache import prepare_cache
from facemask.dataset import index_eval_photos, index_train_photos, read_photo
from facemask.loader import CachedPhotos, load_cache, photo_loader
from facemask.demo import make_demo_data
from facemask.devices import autocast, job_precision, pick_device
from facemask.inference import BatchedTTA, predict_logits, tta_transforms
from facemask.losses import create_loss
from facemask.models import create_classifier, model_data_config
from facemask.training import create_mixup, train_one_epoch

FULL_SIZE = (512, 384)  # the competition's photos, height x width
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
AUGMENT = {"scale": [0.8, 1.0], "ratio": [0.75, 1.3333], "hflip": 0.5, "color_jitter": 0.2}
TTA_VIEWS = 2  # the default TTA: the photo and its horizontal flip
_barrier = None  # in a concurrent job's process: where it waits for the other jobs (set by _start_job)
SEED_MODELS = {  # arch, batch size of the seed recipes; all at 224 x 224 for the GPU comparison
    "resnet34": ("resnet34", 128), "efficientnetv2_rw_t": ("efficientnetv2_rw_t", 128),
    "vit_small_r26": ("vit_small_r26_s32_224", 64),
}


class PeersDataset(torch.utils.data.Dataset):
    """The course baseline's dataset: every photo decoded with PIL and transformed per sample."""

    def __init__(self, root: Path, paths: list[str], size: tuple[int, int]):
        self.root, self.paths = root, paths
        self.transform = transforms.Compose([transforms.Resize(size), transforms.ToTensor(), transforms.Normalize(MEAN, STD)])

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        return self.transform(Image.open(self.root / self.paths[i]).convert("RGB")), 0


def full_size_data(folder: Path, source: Path | None, people: int) -> Path:
    """A data set of 384 x 512 photos in the competition layout: `source` resized, or the demo generator."""
    if source is None:
        make_demo_data(folder, train_people=people, eval_people=max(people // 4, 1), width=FULL_SIZE[1], height=FULL_SIZE[0], seed=0)
        return folder
    for csv in ("train/train.csv", "eval/info.csv"):
        (folder / csv).parent.mkdir(parents=True, exist_ok=True)
        (folder / csv).write_bytes((source / csv).read_bytes())
    for photo in list((source / "train/images").glob("*/*")) + list((source / "eval/images").glob("*")):
        target = folder / photo.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        read_photo(photo).resize(FULL_SIZE[::-1], Image.Resampling.BICUBIC).save(target, quality=95)
    return folder


def images_per_second(batches, limit: int, work=lambda images: images) -> float:
    """Images/s over up to `limit` batches, after one warm-up batch (workers starting)."""
    iterator = iter(batches)
    work(next(iterator)[0])
    seen, started = 0, time.perf_counter()
    for step, (images, _) in enumerate(iterator, start=1):
        work(images)
        seen += len(images)
        if step >= limit:
            break
    return seen / (time.perf_counter() - started)


def bench_input(args) -> list[dict]:
    """Peers' per-photo decoding vs slices of the prepared-image cache, same photos, same size."""
    size = tuple(int(s) for s in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        data = full_size_data(Path(tmp) / "data", Path(args.source) if args.source else None, args.people)
        index, eval_index = index_train_photos(data, (30, 60)), index_eval_photos(data)
        cache_shape = tuple(round(s * 1.125) for s in size)
        cache = {"train": Path(tmp) / "train.npy", "eval": Path(tmp) / "eval.npy"}
        _, report = prepare_cache(data, {"train": index, "eval": eval_index}, cache_shape, cache, threads=args.workers)
        limit = len(index) // args.batch_size - 1
        peers = torch.utils.data.DataLoader(PeersDataset(data, list(index["path"]), size), batch_size=args.batch_size,
                                            shuffle=True, num_workers=args.workers, drop_last=True)
        ours = photo_loader(CachedPhotos(cache["train"], np.arange(len(index)), index["label"]), args.batch_size,
                            args.workers, shuffle=True)
        augment = batch_transform({"input_size": (3, *size), "mean": MEAN, "std": STD, "interpolation": "bilinear"}, AUGMENT)
        rows = []
        for _ in range(args.repeats):  # alternate, so both see the same machine load
            rows.append({"baseline": images_per_second(peers, limit), "ours": images_per_second(ours, limit),
                         "ours_augmented_on_cpu": images_per_second(ours, limit, augment)})
    best = {key: max(row[key] for row in rows) for key in rows[0]}
    return [{
        "benchmark": "input pipeline", "photos": len(index), "source": args.source or "demo generator, 384 x 512",
        "size": args.size, "batch_size": args.batch_size, "workers": args.workers,
        "baseline_images_per_s": round(best["baseline"], 1), "ours_images_per_s": round(best["ours"], 1),
        "ratio": round(best["ours"] / best["baseline"], 1),
        "ours_augmented_on_cpu_images_per_s": round(best["ours_augmented_on_cpu"], 1),
        "ratio_augmented_on_cpu": round(best["ours_augmented_on_cpu"] / best["baseline"], 1),
        "cache_build_photos_per_s": report["photos_per_s"], "runs": rows,
    }]


def synchronize(device: torch.device) -> None:
    """Wait for the GPU's queued work, so that a timing covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_tta(args) -> list[dict]:
    """ttach's one forward pass per view vs BatchedTTA's one pass of all views and its pass per
    view (what jobs on the CPU run): images/s, the best of `repeats` alternating rounds (so that
    each sees the same machine load), and the largest difference from ttach's output."""
    device = pick_device()
    precision = job_precision("auto", device)
    model = create_classifier(args.arch).to(device).eval()
    images = torch.randn(args.batch_size, 3, args.tta_size, args.tta_size, device=device)
    rows = []
    for spec in (["HorizontalFlip"], ["HorizontalFlip", {"Multiply": {"factors": [0.9, 1.1]}}]):
        runs = {"ttach": ttach.ClassificationTTAWrapper(torch.nn.Sequential(model, torch.nn.Softmax(1)), tta_transforms(spec)),
                "batched": BatchedTTA(model, spec), "per_view": BatchedTTA(model, spec, one_pass=False)}
        with torch.no_grad(), autocast(device, precision):
            probabilities = {name: run(images).float() for name, run in runs.items()}  # also the warm-up
            rates = {name: 0.0 for name in runs}
            for _ in range(args.repeats):
                for name, run in runs.items():
                    started = time.perf_counter()
                    run(images)
                    synchronize(device)
                    rates[name] = max(rates[name], len(images) / (time.perf_counter() - started))
        differences = [float((probabilities["ttach"] - probabilities[name].exp()).abs().max()) for name in ("batched", "per_view")]
        rows.append({"benchmark": "TTA", "arch": args.arch, "device": str(device), "precision": precision,
                     "views": len(tta_transforms(spec)), "transforms": json.dumps(spec),
                     **{f"{name}_images_per_s": round(rate, 1) for name, rate in rates.items()},
                     "ratio": round(rates["batched"] / rates["ttach"], 2), "per_view_ratio": round(rates["per_view"] / rates["ttach"], 2),
                     "jobs_run": "batched" if device.type == "cuda" else "per_view", "max_abs_difference": max(differences)})
    return rows


def timed_passes(run, device: torch.device, together=lambda: None) -> dict:
    """Two passes of `run()`: the seconds the first took beyond the second (compiling, cuDNN and
    allocator warm-up), and when the second started and ended (time.monotonic, the same clock in
    every process). `together()` waits for the jobs running beside this one before each pass."""
    spans = []
    for _ in range(2):
        synchronize(device)
        together()
        started = time.monotonic()
        run()
        synchronize(device)
        spans.append((started, time.monotonic()))
    (first_start, first_end), (started, ended) = spans
    return {"warmup_s": max((first_end - first_start) - (ended - started), 0.0), "started": started, "ended": ended}


def measure_model(name: str, args, cache_file: Path, device: torch.device, together=lambda: None) -> dict:
    """One job's passes for a seed architecture: the CPU loader alone (images/s), and the timed
    passes of training on random tensors already on the GPU (the limit), end to end from loader
    workers and from the cache held on the GPU, and flip-TTA inference, each with its images."""
    arch, batch_size = SEED_MODELS[name][0], args.batch_size or SEED_MODELS[name][1]
    precision = job_precision(args.precision, device)
    photos = args.gpu_photos
    labels = np.random.default_rng(1).integers(0, 18, photos)
    model = create_classifier(arch).to(device, memory_format=torch.channels_last)
    if args.compile:
        model.compile()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = create_loss({"head": "single", "loss": [{"name": "cross_entropy", "weight": 1.0}], "task_losses": {}}, torch.tensor(labels))
    augment = batch_transform(model_data_config(model, (224, 224)), AUGMENT).to(device)
    mixup = create_mixup({"mixup_alpha": 1.0, "cutmix_alpha": 1.0, "prob": 0.5, "switch_prob": 0.5})
    images = torch.randn(batch_size, 3, 224, 224, device=device).contiguous(memory_format=torch.channels_last)
    targets = torch.randint(0, 18, (batch_size,), device=device)
    synthetic = [(images, targets)] * (photos // batch_size)
    views = [(torch.cat([images] * TTA_VIEWS), targets)] * (photos // batch_size)  # the flip TTA's one pass of both views
    loader = photo_loader(CachedPhotos(cache_file, np.arange(photos), labels), batch_size, args.workers, shuffle=True)
    on_gpu = photo_loader(CachedPhotos(cache_file, np.arange(photos), labels, load_cache(cache_file, device)),
                          batch_size, 0, shuffle=True)
    together()  # the jobs' loaders read at the same time, so that their rates add up
    job = {"batch_size": batch_size, "precision": precision,
           "loader_images_per_s": images_per_second(loader, len(loader))}  # no GPU work
    for run, (batches, transform) in {"limit": (synthetic, torch.nn.Identity()), "end_to_end": (loader, augment),
                                      "end_to_end_cache_on_gpu": (on_gpu, augment)}.items():
        job[run] = timed_passes(lambda: train_one_epoch(model, batches, transform, loss_fn, optimizer, device, 1, mixup,
                                                        precision=precision),
                                device, together) | {"images": len(batches) * batch_size}
    job["inference"] = (timed_passes(lambda: predict_logits(model, views, torch.nn.Identity(), device, precision), device, together)
                        | {"images": len(views) * batch_size * TTA_VIEWS})
    return job


def _start_job(barrier, threads: int) -> None:
    """In each concurrent job's process: the barrier shared by the jobs, and its share of the CPU threads."""
    global _barrier
    _barrier = barrier
    torch.set_num_threads(threads)


def _measure_in_job(*args) -> dict:
    """measure_model in a concurrent job; a job that fails breaks the barrier, so the others stop too."""
    try:
        return measure_model(*args, together=_barrier.wait)
    except BaseException:
        _barrier.abort()
        raise


def concurrent_jobs(name: str, args, cache_file: Path, device: torch.device) -> list[dict]:
    """`args.jobs_per_gpu` jobs measuring the same architecture at once on the one device, as
    Snakemake runs them with `--resources gpu=2` on one GPU: each in its own process, every pass
    started together."""
    jobs = args.jobs_per_gpu
    context = torch.multiprocessing.get_context("spawn")
    barrier = context.Barrier(jobs, timeout=1800)
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_job,
                             initargs=(barrier, max(torch.get_num_threads() // jobs, 1))) as pool:
        running = [pool.submit(_measure_in_job, name, args, cache_file, device) for _ in range(jobs)]
        return [job.result() for job in running]


def aggregate_rate(jobs: list[dict], run: str) -> float:
    """Images/s of the jobs' second passes of `run` together: their images over the time from the
    first start to the last end."""
    passes = [job[run] for job in jobs]
    return sum(p["images"] for p in passes) / (max(p["ended"] for p in passes) - min(p["started"] for p in passes))


def bench_gpu(args) -> list[dict]:
    """Model-only vs end-to-end training images/s per seed architecture at 224, inference images/s,
    and the ensemble's wall time; with `--jobs-per-gpu N`, of N jobs sharing the GPU."""
    device = torch.device(args.device) if args.device else pick_device()
    if device.type != "cuda" and not args.device:
        raise SystemExit("the gpu benchmark needs a GPU (torch.cuda.is_available() is False); --device cpu only checks the script")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cache_file = Path(tmp) / "train.npy"
        cache = np.lib.format.open_memmap(cache_file, mode="w+", dtype=np.uint8, shape=(args.gpu_photos, 252, 252, 3))
        cache[:] = np.random.default_rng(0).integers(0, 256, cache.shape, dtype=np.uint8)
        cache.flush()
        for name in args.models:
            jobs = (concurrent_jobs(name, args, cache_file, device) if args.jobs_per_gpu > 1
                    else [measure_model(name, args, cache_file, device)])
            rates = {run: aggregate_rate(jobs, run) for run in ("limit", "end_to_end", "end_to_end_cache_on_gpu", "inference")}
            rows.append({"benchmark": "GPU training", "model": name, "arch": SEED_MODELS[name][0],
                         "batch_size": jobs[0]["batch_size"], "precision": jobs[0]["precision"], "jobs_per_gpu": args.jobs_per_gpu,
                         "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "compile": args.compile,
                         "workers": args.workers, "loader_images_per_s": round(sum(j["loader_images_per_s"] for j in jobs), 1),
                         "limit_images_per_s": round(rates["limit"], 1), "end_to_end_images_per_s": round(rates["end_to_end"], 1),
                         "end_to_end_share_of_limit": round(rates["end_to_end"] / rates["limit"], 3),
                         "cache_on_gpu_images_per_s": round(rates["end_to_end_cache_on_gpu"], 1),
                         "cache_on_gpu_share_of_limit": round(rates["end_to_end_cache_on_gpu"] / rates["limit"], 3),
                         "inference_images_per_s": round(rates["inference"], 1),
                         "warmup_s": round(max(j["limit"]["warmup_s"] + j["inference"]["warmup_s"] for j in jobs), 1)})
    rows.append(extrapolate_ensemble(rows))
    return rows


def extrapolate_ensemble(rows: list[dict], train_photos: int = 18_900, eval_photos: int = 12_600, epochs: int = 10,
                         folds: int = 5) -> dict:
    """Minutes of the default ensemble from the measured rates: per model and fold, the epochs'
    training (at the better end-to-end rate) and validation, the flip-TTA prediction of the eval
    photos, and one first-pass warm-up of training and inference (compiling, with --compile).
    With N jobs per GPU the rates are those of N jobs together, and N warm-ups overlap."""
    seconds = 0.0
    for row in rows:
        training = epochs * train_photos * (folds - 1) / folds / max(row["end_to_end_images_per_s"], row["cache_on_gpu_images_per_s"])
        inference = (epochs * train_photos / folds + eval_photos * TTA_VIEWS) / row["inference_images_per_s"]
        seconds += folds * (training + inference + row["warmup_s"] / row["jobs_per_gpu"])
    return {"benchmark": "default ensemble (extrapolated)", "models": len(rows), "folds": folds, "epochs": epochs,
            "jobs_per_gpu": rows[0]["jobs_per_gpu"], "train_photos": train_photos, "minutes": round(seconds / 60, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("benchmark", choices=["input", "tta", "gpu"])
    parser.add_argument("--source", help="a data set in the competition layout to resize to 384 x 512 (default: generated)")
    parser.add_argument("--people", type=int, default=100, help="people of the generated data set")
    parser.add_argument("--size", default="256x192", help="model input, height x width")
    parser.add_argument("--batch-size", type=int, help="default: 64 (input, tta), the seed recipes' (gpu)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--arch", default="resnet18", help="TTA benchmark model")
    parser.add_argument("--tta-size", type=int, default=128)
    parser.add_argument("--gpu-photos", type=int, default=4096)
    parser.add_argument("--models", nargs="+", choices=list(SEED_MODELS), default=list(SEED_MODELS), help="gpu benchmark models")
    parser.add_argument("--device", help="gpu benchmark: default the GPU; 'cpu' only checks that the script runs")
    parser.add_argument("--compile", action="store_true", help="torch.compile the models of the gpu benchmark")
    parser.add_argument("--precision", choices=["auto", "bf16", "fp16", "fp32"], default="auto",
                        help="gpu benchmark: as a model block's precision (auto: bf16 from sm80, fp16 before)")
    parser.add_argument("--jobs-per-gpu", type=int, default=1,
                        help="gpu benchmark: this many jobs at once on the GPU, each in its own process (rates are all of theirs together)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.benchmark != "gpu":
        args.batch_size = args.batch_size or 64
    rows = {"input": bench_input, "tta": bench_tta, "gpu": bench_gpu}[args.benchmark](args)
    machine = {"machine": platform.node(), "cpus": torch.get_num_threads(), "torch": torch.__version__,
               "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}
    print(json.dumps(machine))
    print(pd.DataFrame([{k: v for k, v in row.items() if k != "runs"} for row in rows]).to_markdown(index=False))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, "results": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
