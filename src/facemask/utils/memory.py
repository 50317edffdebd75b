"""Running out of GPU memory: one clear error that names the job, the stage and a batch size that
fits (out_of_memory_says, BatchSetting.says), and `batch_size: auto`'s search for the largest batch
that fits (auto_batch_size: doubling until a batch runs out of memory, then a binary search, as
Lightning's BatchSizeFinder does in its binsearch mode)."""

import contextlib
import gc
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from facemask.utils.errors import OutOfMemory
from facemask.utils.logs import log

#: what `batch_size: auto` is on the CPU, where no memory limit can be found by trying
CPU_BATCH_SIZE = 64
#: the largest batch that `batch_size: auto` tries (and at most the photos there are)
MOST_BATCH_SIZE = 1024
#: the first batch that `batch_size: auto` tries; it doubles from there
FIRST_BATCH_SIZE = 8


def is_out_of_memory(error: BaseException) -> bool:
    """Whether `error` says that a device ran out of memory: CUDA's OutOfMemoryError, or another
    backend's RuntimeError that says so (MPS: 'MPS backend out of memory')."""
    return isinstance(error, torch.cuda.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and "out of memory" in str(error)
    )


@contextlib.contextmanager
def out_of_memory_says(job: str, stage: str, fix: str) -> Iterator[None]:
    """Running out of memory inside, raised as OutOfMemory: '<job>: out of GPU memory in <stage>:
    <fix>'; other errors pass as they are."""
    try:
        yield
    except Exception as error:
        if not is_out_of_memory(error):
            raise
        raise OutOfMemory(f"{job}: out of GPU memory in {stage}: {fix}") from error


def setting_text(key: str, value: object) -> str:
    """`key` set to `value` as the user writes it: `models.m.batch_size: 32`, `--batch-size 32`."""
    return f"{key} {value}" if key.startswith("--") else f"{key}: {value}"


@dataclass(frozen=True)
class BatchSetting:
    """A job's batch size as an out-of-memory message names it: the `job` ('model resnet34, fold
    2'), the `key` that sets the size ('models.resnet34.batch_size', 'tta.batch_size',
    '--batch-size'), the `multiple` its sizes keep (2: even, for Mixup / CutMix), whether
    `batch_size: auto` found the size (`auto`), and a `hint` that ends the advice."""

    job: str
    key: str
    multiple: int = 1
    auto: bool = False
    hint: str = ""

    def smaller(self, batch_size: int) -> str:
        """What to set after a batch of `batch_size` ran out of memory: half of it (and `auto`,
        where auto did not find it); where it is the smallest already, what else to change."""
        if batch_size <= self.multiple:
            return f"not even a batch of {batch_size} fits: lower image_size or precision, or free the GPU"
        half = setting_text(self.key, max(batch_size // 2 // self.multiple * self.multiple, self.multiple))
        if self.auto:
            return f"the size batch_size auto found ran out of memory later in the job: set {half}{self.hint}"
        return f"set {half}, or {setting_text(self.key, 'auto')} for the largest that fits{self.hint}"

    def says(self, stage: str, batch_size: int):
        """out_of_memory_says for this job, `stage` run at `batch_size`, advising a smaller one."""
        return out_of_memory_says(self.job, f"{stage} at batch size {batch_size}", self.smaller(batch_size))


def largest_batch(fits: Callable[[int], bool], most: int, multiple: int = 1) -> int:
    """The largest multiple of `multiple` up to `most` (one itself) that `fits`, each smaller size
    taken to fit too: doubling from FIRST_BATCH_SIZE until a size does not fit or `most` does, then
    halving the gap between the largest size that fit and the smallest that did not; 0 when not
    even `multiple` fits."""
    good, bad = 0, most + multiple
    size = min(max(FIRST_BATCH_SIZE // multiple * multiple, multiple), most)
    while good < most:
        if not fits(size):
            bad = size
            break
        good, size = size, min(size * 2, most)
    while bad - good > multiple:
        middle = (good + bad) // 2 // multiple * multiple
        good, bad = (middle, bad) if fits(middle) else (good, middle)
    return good


def runs(try_batch: Callable[[int], object], size: int) -> bool:
    """Whether `try_batch(size)` runs without running out of memory; the memory it took is given
    back to the GPU either way."""
    try:
        try_batch(size)
        fitted = True
    except Exception as error:
        if not is_out_of_memory(error):
            raise
        fitted = False
    give_back_memory()  # a failed try's tensors, held by its traceback's frames until now
    return fitted


def give_back_memory() -> None:
    """Free the tensors no longer referenced (cycles included) and give torch's cached blocks back
    to the GPU, so that the next try, and the cache check of data.loader.load_cache, see them free;
    nothing to do before CUDA holds any."""
    if torch.cuda.is_initialized():
        gc.collect()
        torch.cuda.empty_cache()


def recorded(try_batch: Callable[[int], object], tried: dict[int, bool]) -> Callable[[int], bool]:
    """Whether a size `runs` with `try_batch`, as largest_batch asks it, each answer kept in `tried`."""

    def fits(size: int) -> bool:
        tried[size] = runs(try_batch, size)
        return tried[size]

    return fits


def auto_batch_size(
    device: torch.device, setting: BatchSetting, most: int, trial: Callable[[], Callable[[int], object]]
) -> int:
    """`batch_size: auto` on `device`: on a GPU the largest batch, a multiple of `setting.multiple`
    up to `most` photos and MOST_BATCH_SIZE, that runs (largest_batch), tried by the function that
    `trial()` builds, which takes a size; on the CPU, CPU_BATCH_SIZE without a try. Logged with the
    sizes tried; OutOfMemory, naming the job, when not even the smallest batch fits."""
    if device.type != "cuda":
        log.info("%s: batch_size auto is %d on the CPU", setting.job, CPU_BATCH_SIZE)
        return CPU_BATCH_SIZE
    multiple = setting.multiple
    most = max(min(most, MOST_BATCH_SIZE) // multiple * multiple, multiple)
    tried: dict[int, bool] = {}
    found = largest_batch(recorded(trial(), tried), most, multiple)
    give_back_memory()  # what the tries were built of, no longer held
    sizes = ", ".join(f"{size}{'' if fitted else ' out of memory'}" for size, fitted in tried.items())
    if not found:
        raise OutOfMemory(
            f"{setting.job}: out of GPU memory in the batch_size auto search: {setting.smaller(multiple)}"
        )
    log.info(
        "%s: batch_size auto found %d on %s (tried %s; at most %d)", setting.job, found, device, sizes, most
    )
    return found
