"""Which GPU of the host a job takes, without torch: the host's GPUs, the slot a job claims on
the one that the fewest running jobs hold, and how many GPU jobs the workflow profile lets run at
once (profiles/default)."""

import fcntl
import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TextIO

from facemask.utils.logs import log

#: GPU jobs at once on a host without a GPU (a CPU run, or a cluster's login node): no limit
NO_GPU_LIMIT = 10_000

#: lock files held by this process, one per claimed GPU, released when it exits (even when killed)
_held_locks: list[TextIO] = []


def host_gpus() -> list[str]:
    """The GPUs this job may use: those listed in CUDA_VISIBLE_DEVICES when it is set (by a
    person or a cluster scheduler), else every GPU `nvidia-smi` lists; none without a driver."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [gpu for gpu in visible.split(",") if gpu.strip() and gpu.strip() != "-1"]
    if not shutil.which("nvidia-smi"):
        return []
    listing = subprocess.run(
        ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"], capture_output=True, text=True
    )
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
    lock_dir = Path(
        lock_dir or os.environ.get("FACEMASK_GPU_LOCKS") or Path(tempfile.gettempdir()) / "facemask-gpu-locks"
    )
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / "placement.lock", "a") as placement:
        fcntl.flock(placement, fcntl.LOCK_EX)  # one job places itself at a time, so the counts hold
        jobs = {
            gpu: sum(not _lock_is_free(path) for path in lock_dir.glob(f"gpu{gpu}.*.lock")) for gpu in gpus
        }
        gpu = min(gpus, key=lambda gpu: jobs[gpu])
        for slot in itertools.count():
            handle = open(lock_dir / f"gpu{gpu}.{slot}.lock", "a")  # noqa: SIM115 (held for the job's life)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                handle.close()
    _held_locks.append(handle)
    os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    log.info(
        "using GPU %s of %s, beside %d other job(s) (lock %s)", gpu, ",".join(gpus), jobs[gpu], handle.name
    )
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


def gpu_job_limit() -> int:
    """How many GPU jobs (train, predict) run at once by default (profiles/default's `resources`):
    one per GPU of this host, or no limit without a GPU (jobs on the CPU, or on a cluster's GPU
    nodes through a profile)."""
    return len(host_gpus()) or NO_GPU_LIMIT
