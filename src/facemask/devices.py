"""Where a job computes: one GPU of the host per job, or the CPU; bf16 autocast on the GPU."""

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from facemask.logs import log

#: lock files held by this process, one per claimed GPU, released when it exits (even when killed)
_held_locks = []


def host_gpus() -> list[str]:
    """The GPUs this job may use: those listed in CUDA_VISIBLE_DEVICES when it is set (by a
    person or a cluster scheduler), else every GPU `nvidia-smi` lists; none without a driver."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [gpu for gpu in visible.split(",") if gpu.strip() and gpu.strip() != "-1"]
    if not shutil.which("nvidia-smi"):
        return []
    listing = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"], capture_output=True, text=True)
    return listing.stdout.split() if listing.returncode == 0 else []


def claim_gpu(lock_dir: str | Path | None = None, poll_seconds: float = 5.0) -> str | None:
    """Give this job a GPU of its own, before torch touches CUDA. Snakemake's `--resources gpu=N`
    only caps how many GPU jobs run at once and does not say which GPU each gets; on a host with
    several, each job takes the first GPU whose lock file (in `lock_dir`, host-wide by default)
    no other job holds and narrows CUDA_VISIBLE_DEVICES to it. With one GPU or none, nothing
    changes. Returns the GPU taken, or None."""
    gpus = host_gpus()
    if len(gpus) <= 1:
        return gpus[0] if gpus else None
    lock_dir = Path(lock_dir or os.environ.get("FACEMASK_GPU_LOCKS") or Path(tempfile.gettempdir()) / "facemask-gpu-locks")
    lock_dir.mkdir(parents=True, exist_ok=True)
    waited = False
    while True:
        for gpu in gpus:
            handle = open(lock_dir / f"gpu{gpu.strip()}.lock", "a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            _held_locks.append(handle)
            os.environ["CUDA_VISIBLE_DEVICES"] = gpu.strip()
            log.info("using GPU %s of %s (lock %s)", gpu.strip(), ",".join(gpus), handle.name)
            return gpu.strip()
        if not waited:
            log.info("all %d GPUs are held by other jobs (locks in %s); waiting for one", len(gpus), lock_dir)
            waited = True
        time.sleep(poll_seconds)


def pick_device() -> torch.device:
    """The GPU when torch sees one (the first visible, see CUDA_VISIBLE_DEVICES), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(device: torch.device):
    """bf16 autocast on a GPU; a no-op context on the CPU."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
