"""What the benchmarks share: the defaults they take from the workflow's schema and config, and timing
helpers."""

import time
from pathlib import Path

import torch
import yaml

from facemask.config.schema import validated

ROOT = Path(__file__).parents[2]
FULL_SIZE = (512, 384)  # the competition's photos, height x width


def workflow_defaults(**block) -> dict:
    """The settings with the schema's defaults (e.g. `tta`), for one model block (`block`, e.g.
    arch=...) with its defaults filled in as a train job gets them (e.g. `augment`)."""
    return validated({"models": {"model": block or {"arch": "resnet18"}}})


def model_defaults(**block) -> dict:
    """A model block with the schema's defaults filled in."""
    return workflow_defaults(**block)["models"]["model"]


def seed_models() -> dict[str, dict]:
    """The default ensemble's model blocks of config.yaml (arch, batch size, ...), defaults filled in."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    return {name: model_defaults(**block) for name, block in config["models"].items()}


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


def synchronize(device: torch.device) -> None:
    """Wait for the GPU's queued work, so that a timing covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize()


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
    return {
        "warmup_s": max((first_end - first_start) - (ended - started), 0.0),
        "started": started,
        "ended": ended,
    }
