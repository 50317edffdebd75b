"""Where a job computes: a GPU of the host, shared evenly among the running jobs, or the CPU;
bf16 autocast on the GPU."""

import fcntl
import itertools
import os
import shutil
import subprocess
import tempfile
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


def claim_gpu(lock_dir: str | Path | None = None) -> str | None:
    """Place this job on a GPU, before torch touches CUDA. Snakemake's `--resources gpu=N` only
    caps how many GPU jobs run at once and does not say which GPU each gets; on a host with
    several, each job takes a slot on the GPU that the fewest running jobs hold (slot lock files
    in `lock_dir`, host-wide by default) and narrows CUDA_VISIBLE_DEVICES to it. N up to the
    number of GPUs gives each job a GPU of its own; more shares them evenly (two jobs on a GPU
    can pay for models too small to keep it busy alone). With one GPU or none, nothing changes.
    Returns the GPU taken, or None."""
    gpus = [gpu.strip() for gpu in host_gpus()]
    if len(gpus) <= 1:
        return gpus[0] if gpus else None
    lock_dir = Path(lock_dir or os.environ.get("FACEMASK_GPU_LOCKS") or Path(tempfile.gettempdir()) / "facemask-gpu-locks")
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / "placement.lock", "a") as placement:
        fcntl.flock(placement, fcntl.LOCK_EX)  # one job places itself at a time, so the counts hold
        jobs = {gpu: sum(not _lock_is_free(path) for path in lock_dir.glob(f"gpu{gpu}.*.lock")) for gpu in gpus}
        gpu = min(gpus, key=jobs.get)
        for slot in itertools.count():
            handle = open(lock_dir / f"gpu{gpu}.{slot}.lock", "a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                handle.close()
    _held_locks.append(handle)
    os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    log.info("using GPU %s of %s, beside %d other job(s) (lock %s)", gpu, ",".join(gpus), jobs[gpu], handle.name)
    return gpu


def _lock_is_free(path: Path) -> bool:
    """Whether no running job holds this slot lock (a job's lock goes when it ends, killed or not)."""
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


def pick_device() -> torch.device:
    """The GPU when torch sees one (the first visible, see CUDA_VISIBLE_DEVICES), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(device: torch.device):
    """bf16 autocast on a GPU; a no-op context on the CPU."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
