"""Batches for training and inference, sliced from the prepared-image cache (see facemask.data.cache)."""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from facemask.utils.errors import DataError
from facemask.utils.logs import log


class CachedPhotos(torch.utils.data.Dataset):
    """Rows `rows` of a prepared-image cache (see facemask.data.cache) with integer `labels` (-1 where
    unknown). A batch is one read of the memory-mapped array: uint8 (batch, height, width, 3).
    With `held`, the whole cache already in memory (on a GPU, see `load_cache`), a batch is sliced
    from it instead, in the loading process: no reads, no copies, no loader workers."""

    def __init__(
        self,
        cache: str | Path,
        rows: Sequence[int] | np.ndarray | pd.Series,
        labels: Sequence[int] | np.ndarray | pd.Series,
        held: torch.Tensor | None = None,
    ):
        self.cache, self.rows = Path(cache), np.asarray(rows, dtype=np.int64)
        self.labels = torch.tensor(np.array(labels, dtype=np.int64))
        self.held = held
        self.pixels: np.ndarray | None = (
            None  # the memory-mapped file, opened on first use by the process that reads
        )
        if held is not None:
            self.labels, self.held_rows = (
                self.labels.to(held.device),
                torch.from_numpy(self.rows).to(held.device),
            )
        photos = np.load(self.cache, mmap_mode="r").shape[0]
        if len(self.rows) and not 0 <= self.rows.min() <= self.rows.max() < photos:
            raise DataError(
                f"{self.cache}: holds {photos} photos, not the {self.rows.max() + 1}+ of the photo index; "
                "it is stale: delete it and rerun"
            )

    def __len__(self) -> int:
        return len(self.rows)

    def __getstate__(self) -> dict:
        return self.__dict__ | {"pixels": None}  # workers open the file themselves

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.held is not None:
            picked = torch.as_tensor(indices).to(self.held.device, non_blocking=True)  # no wait for the GPU
            return self.held[self.held_rows[picked]], self.labels[picked]
        if self.pixels is None:
            self.pixels = np.load(
                self.cache, mmap_mode="r"
            )  # pages load on first touch, then stay in the OS cache
        rows = self.rows[np.asarray(indices)]
        order = np.argsort(rows, kind="stable")  # read the file front to back
        images = np.empty((len(rows), *self.pixels.shape[1:]), dtype=np.uint8)
        images[order] = self.pixels[rows[order]]
        return torch.from_numpy(images), self.labels[np.asarray(indices)]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = self.__getitems__([i])
        return images[0], labels[0]


class JoinedPhotos(torch.utils.data.Dataset):
    """CachedPhotos of several caches as one dataset (indices run through the parts in order), a
    batch still one read per part: the training photos and the pseudo-labelled eval photos."""

    def __init__(self, parts: Sequence[CachedPhotos]):
        self.parts = list(parts)
        self.starts = np.cumsum([0, *(len(part) for part in self.parts)])
        held = [part.held is not None for part in self.parts]
        if any(held) and not all(held):
            raise ValueError("the parts of a JoinedPhotos are all held on the device or none is")
        self.held = self.parts[0].held  # photo_loader: no workers when the parts are held

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        wanted = np.asarray(indices)
        part_of = np.searchsorted(self.starts, wanted, side="right") - 1
        images, labels, order = [], [], []
        for number, part in enumerate(self.parts):
            picked = np.flatnonzero(part_of == number)
            if len(picked):
                part_images, part_labels = part.__getitems__((wanted[picked] - self.starts[number]).tolist())
                images.append(part_images)
                labels.append(part_labels.to(part_images.device))
                order.append(picked)
        back = torch.from_numpy(np.argsort(np.concatenate(order), kind="stable")).to(images[0].device)
        return torch.cat(images)[back], torch.cat(labels)[back]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = self.__getitems__([i])
        return images[0], labels[0]


def load_cache(
    cache: str | Path, device: torch.device, share_of_free_memory: float = 0.5
) -> torch.Tensor | None:
    """The whole image cache as one uint8 tensor on `device` (a GPU), when it takes at most
    `share_of_free_memory` of the GPU's free memory; else None (batches are then read from the file)."""
    if device.type != "cuda":
        return None
    pixels = np.load(cache, mmap_mode="r")
    free, _ = torch.cuda.mem_get_info(device)
    if pixels.nbytes > share_of_free_memory * free:
        log.info(
            "image cache %s (%.1f GiB) is over %.0f%% of the GPU's free %.1f GiB: "
            "reading it with loader workers",
            cache,
            pixels.nbytes / 2**30,
            share_of_free_memory * 100,
            free / 2**30,
        )
        return None
    on_device = torch.from_numpy(np.ascontiguousarray(pixels)).to(device)
    log.info("image cache %s (%.1f GiB) held on %s", cache, pixels.nbytes / 2**30, device)
    return on_device


def whole_batch(batch):
    """The collate function of CachedPhotos loaders: a batch arrives already stacked."""
    return batch


def photo_loader(
    dataset, batch_size: int, workers: int, shuffle: bool = False, seed: int = 0, sample_weights=None
):
    """A DataLoader over `dataset`. For training (`shuffle`): a seeded order, or a seeded draw with
    replacement in proportion to `sample_weights` when given, and no last short batch (a batch of
    one breaks batch norm). Batches come in pinned memory when a GPU is used, for asynchronous copies,
    unless they are sliced from a cache held in memory (no workers then). Every loader draws from a
    generator of its own, never from torch's global one (each pass draws its workers' seed), so an
    extra validation pass changes no later shuffle or augmentation."""
    generator = torch.Generator().manual_seed(seed)
    sampler = None
    if sample_weights is not None:
        sampler = torch.utils.data.WeightedRandomSampler(
            sample_weights, len(dataset), replacement=True, generator=generator
        )
    held = getattr(dataset, "held", None) is not None
    if held:
        workers = 0  # batches are sliced from the held cache, in this process
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        generator=generator,
        num_workers=workers,
        pin_memory=torch.cuda.is_available() and not held,
        persistent_workers=workers > 0,
        drop_last=shuffle and len(dataset) > batch_size,
        collate_fn=whole_batch,
    )
