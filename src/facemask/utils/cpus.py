"""How many CPUs this process may use, and a job's threads capped to them (no torch: the CPU-side
jobs import this too)."""

import functools
import os

from facemask.utils.logs import log


def available_cpus() -> int:
    """The CPUs this process may use: those of its affinity mask (os.cpu_count() where the OS has
    none), at most SLURM_CPUS_PER_TASK when that is set to a whole number above 0."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "").strip()
    return min(cpus, int(slurm)) if slurm.isdecimal() and int(slurm) > 0 else cpus


def job_threads(requested: int) -> int:
    """A job's `threads` (torch threads, loader workers + 1, decoding threads), at most
    available_cpus(); says so in the log (once) when it caps them."""
    cpus = available_cpus()
    if requested > cpus:
        _log_cap(requested, cpus)
    return min(requested, cpus)


@functools.cache
def _log_cap(requested: int, cpus: int) -> None:
    """Log a cap once, however often job_threads meets it."""
    log.info(
        "using %d threads, not the %d asked: this process may use %d CPUs (SLURM_CPUS_PER_TASK or its "
        "CPU affinity)",
        cpus,
        requested,
        cpus,
    )
