"""Training on a GPU: images/s of each seed architecture on random tensors already on the GPU (the
physical limit) and end to end (cache, loader, augmentation on the GPU, Mixup, loss, step), from
loader workers and from the cache held on the GPU, inference images/s (both flip-TTA views in one
pass), the first passes' warm-up, and the default ensemble's wall time extrapolated from those;
with N jobs per GPU, all of these for N jobs sharing the GPU at once."""

import dataclasses
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from benchmarks.common import images_per_second, seed_models, timed_passes, workflow_defaults

from facemask.classes.labels import NUM_CLASSES
from facemask.config.blocks import ModelBlock
from facemask.config.defaults import schema_default
from facemask.config.settings import Settings
from facemask.data.loader import CachedPhotos, load_cache, photo_loader
from facemask.model.heads import head_of
from facemask.model.inference import predict_logits, tta_transforms
from facemask.train.auto_batch import training_batch_size
from facemask.train.epoch import train_one_epoch
from facemask.train.job import TrainJob, TrainOutputs
from facemask.train.recipe import build_training
from facemask.utils.devices import job_precision, pick_device

DEFAULTS = Settings.from_config(workflow_defaults())  # the schema's defaults, typed
TTA_VIEWS = len(tta_transforms(list(DEFAULTS.tta.transforms)))  # the default TTA's views (photo and flip)
#: where a TrainJob built only to find a batch size (batch_size: auto) would write: nowhere
NO_OUTPUTS = TrainOutputs(Path("-"), Path("-"), Path("-"))
_barrier = None  # in a concurrent job's process: where it waits for the other jobs (set by _start_job)


def measure_model(name: str, args, cache_file: Path, device: torch.device, together=lambda: None) -> dict:
    """One job's passes for a seed model of config.yaml (its arch, head, years, batch size, loss,
    mixing, augmentation and weight average, at args.gpu_size, 224 by default): the CPU loader
    alone (images/s), and the timed passes of training on random tensors already on the GPU (the
    limit), end to end from loader workers and from the cache held on the GPU, and flip-TTA
    inference, each with its images."""
    block = ModelBlock.from_config(seed_models()[name])
    precision = job_precision(args.precision, device)
    photos, side = args.gpu_photos, args.gpu_size
    rng = np.random.default_rng(1)
    classes = rng.integers(0, NUM_CLASSES, photos)
    head = head_of(block, DEFAULTS.age_bins)
    sized = TrainJob(dataclasses.replace(block, image_size=(side, side)), 0, cache_file, NO_OUTPUTS)
    batch_size = args.batch_size or training_batch_size(sized, head, device, precision, torch.tensor(classes))
    parts = build_training(
        block,
        head,
        device,
        torch.tensor(classes),
        photos // batch_size,
        precision,
        pretrained=False,
        compile=args.compile,
        image_size=(side, side),
    )  # as a train job builds it: head, loss, Mixup, augmentation, optimizer, weight average
    model = parts.model
    labels = parts.head.targets(pd.DataFrame({"age": rng.integers(18, 80, photos)}), classes)
    images = torch.randn(batch_size, 3, side, side, device=device).contiguous(
        memory_format=torch.channels_last
    )
    targets = torch.from_numpy(labels[:batch_size]).to(device)
    synthetic = [(images, targets)] * (photos // batch_size)
    views = [(torch.cat([images] * TTA_VIEWS), targets)] * (
        photos // batch_size
    )  # the flip TTA's one pass of both views
    loader = photo_loader(
        CachedPhotos(cache_file, np.arange(photos), labels), batch_size, args.workers, shuffle=True
    )
    on_gpu = photo_loader(
        CachedPhotos(cache_file, np.arange(photos), labels, load_cache(cache_file, device)),
        batch_size,
        0,
        shuffle=True,
    )
    together()  # the jobs' loaders read at the same time, so that their rates add up
    job = {
        "batch_size": batch_size,
        "precision": precision,
        "loader_images_per_s": images_per_second(loader, len(loader)),
    }  # no GPU work
    for run, (batches, transform) in {
        "limit": (synthetic, torch.nn.Identity()),
        "end_to_end": (loader, parts.step.transform),
        "end_to_end_cache_on_gpu": (on_gpu, parts.step.transform),
    }.items():
        step = dataclasses.replace(parts.step, transform=transform)
        job[run] = timed_passes(
            lambda batches=batches, step=step: train_one_epoch(step, batches, 1), device, together
        ) | {"images": len(batches) * batch_size}
    job["inference"] = timed_passes(
        lambda: predict_logits(model, views, torch.nn.Identity(), device, precision), device, together
    ) | {"images": len(views) * batch_size * TTA_VIEWS}
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
    with ProcessPoolExecutor(
        jobs,
        mp_context=context,
        initializer=_start_job,
        initargs=(barrier, max(torch.get_num_threads() // jobs, 1)),
    ) as pool:
        running = [pool.submit(_measure_in_job, name, args, cache_file, device) for _ in range(jobs)]
        return [job.result() for job in running]


def aggregate_rate(jobs: list[dict], run: str) -> float:
    """Images/s of the jobs' second passes of `run` together: their images over the time from the
    first start to the last end."""
    passes = [job[run] for job in jobs]
    return sum(p["images"] for p in passes) / (
        max(p["ended"] for p in passes) - min(p["started"] for p in passes)
    )


def bench_gpu(args) -> list[dict]:
    """Model-only vs end-to-end training images/s per seed architecture at 224, inference images/s,
    and the ensemble's wall time; with `--jobs-per-gpu N`, of N jobs sharing the GPU."""
    device = torch.device(args.device) if args.device else pick_device()
    if device.type != "cuda" and not args.device:
        raise SystemExit(
            "the gpu benchmark needs a GPU (torch.cuda.is_available() is False); "
            "--device cpu only checks the script"
        )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cache_file = Path(tmp) / "train.npy"
        cache = np.lib.format.open_memmap(
            cache_file,
            mode="w+",
            dtype=np.uint8,
            shape=(args.gpu_photos, *DEFAULTS.cache.size((args.gpu_size, args.gpu_size)), 3),
        )
        cache[:] = np.random.default_rng(0).integers(0, 256, cache.shape, dtype=np.uint8)
        cache.flush()
        for name in args.models:
            jobs = (
                concurrent_jobs(name, args, cache_file, device)
                if args.jobs_per_gpu > 1
                else [measure_model(name, args, cache_file, device)]
            )
            rates = {
                run: aggregate_rate(jobs, run)
                for run in ("limit", "end_to_end", "end_to_end_cache_on_gpu", "inference")
            }
            rows.append(
                {
                    "benchmark": "GPU training",
                    "model": name,
                    "arch": seed_models()[name]["arch"],
                    "batch_size": jobs[0]["batch_size"],
                    "precision": jobs[0]["precision"],
                    "jobs_per_gpu": args.jobs_per_gpu,
                    "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                    "compile": args.compile,
                    "workers": args.workers,
                    "loader_images_per_s": round(sum(j["loader_images_per_s"] for j in jobs), 1),
                    "limit_images_per_s": round(rates["limit"], 1),
                    "end_to_end_images_per_s": round(rates["end_to_end"], 1),
                    "end_to_end_share_of_limit": round(rates["end_to_end"] / rates["limit"], 3),
                    "cache_on_gpu_images_per_s": round(rates["end_to_end_cache_on_gpu"], 1),
                    "cache_on_gpu_share_of_limit": round(
                        rates["end_to_end_cache_on_gpu"] / rates["limit"], 3
                    ),
                    "inference_images_per_s": round(rates["inference"], 1),
                    "warmup_s": round(
                        max(j["limit"]["warmup_s"] + j["inference"]["warmup_s"] for j in jobs), 1
                    ),
                }
            )
    rows.append(extrapolate_ensemble(rows))
    return rows


def extrapolate_ensemble(
    rows: list[dict],
    train_photos: int = 18_900,
    eval_photos: int = 12_600,
    epochs: int = schema_default("models.*.epochs"),
    folds: int = 5,
) -> dict:
    """Minutes of the default ensemble from the measured rates: per model and fold, the epochs'
    training (at the better end-to-end rate) and validation, the flip-TTA prediction of the eval
    photos, and one first-pass warm-up of training and inference (compiling, with --compile).
    With N jobs per GPU the rates are those of N jobs together, and N warm-ups overlap."""
    seconds = 0.0
    for row in rows:
        training = (
            epochs
            * train_photos
            * (folds - 1)
            / folds
            / max(row["end_to_end_images_per_s"], row["cache_on_gpu_images_per_s"])
        )
        inference = (epochs * train_photos / folds + eval_photos * TTA_VIEWS) / row["inference_images_per_s"]
        seconds += folds * (training + inference + row["warmup_s"] / row["jobs_per_gpu"])
    return {
        "benchmark": "default ensemble (extrapolated)",
        "models": len(rows),
        "folds": folds,
        "epochs": epochs,
        "jobs_per_gpu": rows[0]["jobs_per_gpu"],
        "train_photos": train_photos,
        "minutes": round(seconds / 60, 1),
    }
