"""The resume state of a train job: after every epoch, the states of the model, optimizer,
scheduler and loss scaler, every random state, and the progress so far, saved beside the
outputs; a rerun of the same run (same settings, photos and image cache) takes it up, so a
killed job resumes where it stopped and ends as an uninterrupted run does."""

import contextlib
import random
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from facemask.model.classifier import save_torch
from facemask.utils.digests import settings_digest
from facemask.utils.logs import log


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and GPU)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextlib.contextmanager
def kept_random_state(device: torch.device | None = None):
    """Leave torch's (the CPU's, and `device`'s where it is a GPU) and numpy's global random states
    as they were (Mixup and the augmentation draw from them)."""
    numpy_state = np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[device] if device is not None and device.type == "cuda" else []):
            yield
    finally:
        np.random.set_state(numpy_state)


def rng_states(loader_generator: torch.Generator) -> dict:
    """Every random state training draws from, as tensors and plain values."""
    kind, keys, position, has_gauss, cached = np.random.get_state(legacy=True)
    keys = np.asarray(keys)
    return {
        "python": random.getstate(),
        "torch": torch.get_rng_state(),
        "loader": loader_generator.get_state(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_states(states: dict, loader_generator: torch.Generator) -> None:
    """Undo `rng_states`."""
    random.setstate(states["python"])
    torch.set_rng_state(states["torch"])
    loader_generator.set_state(states["loader"])
    kind, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    if states["cuda"]:
        torch.cuda.set_rng_state_all(states["cuda"])


def settings_fingerprint(
    settings: dict, fold: int, seed: int, train_photos: pd.DataFrame, cache: str | Path
) -> str:
    """Identifies a training run, so resume state is only taken up by the same run (same settings,
    photos, and the same build of the image cache)."""
    run = {
        "settings": settings,
        "fold": fold,
        "seed": seed,
        "photos": train_photos[["path", "label"]].to_numpy().tolist(),
        "cache": cache_stamp(cache),
    }
    return settings_digest(run)


def cache_stamp(cache: str | Path) -> list:
    """What tells one build of an image cache from another: its path, size and modification time."""
    built = Path(cache).stat()
    return [str(cache), built.st_size, built.st_mtime_ns]


def save_resume_state(
    resume_state: Path, fingerprint: str, parts: dict, loader_generator: torch.Generator, progress: dict
) -> None:
    """Write, atomically, what `resume` takes up: the states of `parts`, the RNG states and `progress`."""
    save_torch(
        {"fingerprint": fingerprint, "rng": rng_states(loader_generator), "progress": progress}
        | {name: part.state_dict() for name, part in parts.items()},
        resume_state,
    )


def resume(
    resume_state: Path, fingerprint: str, parts: dict, loader_generator: torch.Generator
) -> dict | None:
    """Load the states of `parts` (model, optimizer, scheduler, loss scaler, by name) and the RNG
    states that a killed run of the same settings left in `resume_state`, and return its progress
    (epoch, history, epoch kept); None when there is none."""
    if not resume_state.is_file():
        return None
    saved = torch.load(resume_state, map_location="cpu", weights_only=True)
    if saved["fingerprint"] != fingerprint:
        log.info("ignoring %s, left by a run with other settings", resume_state)
        return None
    for name, part in parts.items():
        part.load_state_dict(saved[name])
    restore_rng_states(saved["rng"], loader_generator)
    log.info("resuming after epoch %d from %s", saved["progress"]["epoch"], resume_state)
    return saved["progress"]
