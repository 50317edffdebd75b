"""Logits for photos, with test-time augmentation: ttach's transforms and merge modes, every view
of a batch through the model in one forward pass on a GPU (one pass per view on the CPU, where
that is faster), merged safely on probabilities."""

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import ttach

from facemask.classes.labels import LOGIT_COLUMNS
from facemask.config.defaults import schema_default, schema_field
from facemask.config.sections import TestTimeAugmentation
from facemask.data.augment import batch_transform
from facemask.data.loader import CachedPhotos, photo_loader
from facemask.model.classifier import load_checkpoint
from facemask.utils.devices import autocast, job_precision, pick_device
from facemask.utils.logs import Progress, log
from facemask.utils.memory import BatchSetting, auto_batch_size

#: ttach transforms a config may name, with their keyword arguments
TTA_TRANSFORMS = (
    "HorizontalFlip",
    "VerticalFlip",
    "Rotate90",
    "Scale",
    "Resize",
    "Add",
    "Multiply",
    "FiveCrops",
)
#: ttach merge modes that are valid on probabilities (ttach's max/min are broken in 0.0.3)
TTA_MERGE_MODES = ("mean", "gmean", "tsharpen")


def tta_transforms(spec: list) -> ttach.Compose:
    """ttach's Compose from a config list: names (`HorizontalFlip`) or one-key maps of a name to
    its keyword arguments (`{Multiply: {factors: [0.9, 1.1]}}`)."""
    transforms = []
    for item in spec:
        name, options = (item, {}) if isinstance(item, str) else next(iter(item.items()))
        if name not in TTA_TRANSFORMS:
            raise ValueError(f"unknown TTA transform {name!r}; choose from {list(TTA_TRANSFORMS)}")
        transforms.append(getattr(ttach, name)(**(options or {})))
    return ttach.Compose(transforms)


class BatchedTTA(torch.nn.Module):
    """`model` under ttach's test-time transforms, as ttach's ClassificationTTAWrapper over the
    model's softmax, but with all views of a batch in one forward pass (one per view size, for
    transforms that change it) instead of one pass per view, unless `one_pass` is False. The
    views' probabilities are merged by ttach's Merger (mean, gmean and tsharpen are all valid on
    probabilities, unlike on raw logits) and the log of the merged probabilities is returned, so
    its softmax is the merged distribution. A forward pass sees batch size x number of views
    images: on a GPU, fewer and larger passes are faster; on the CPU, smaller batches are
    (docs/benchmarks.md), so there `one_pass=False` runs ttach's one pass per view."""

    def __init__(
        self,
        model: torch.nn.Module,
        transforms: list,
        merge: str = schema_default("tta.merge"),
        one_pass: bool = True,
    ):
        super().__init__()
        if merge not in TTA_MERGE_MODES:
            raise ValueError(f"unknown TTA merge mode {merge!r}; choose from {list(TTA_MERGE_MODES)}")
        self.model, self.transforms, self.merge, self.one_pass = (
            model,
            list(tta_transforms(transforms)),
            merge,
            one_pass,
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        views = [transformer.augment_image(images) for transformer in self.transforms]
        passes: dict[tuple | int, list[int]] = {}
        for i, view in enumerate(views):
            passes.setdefault(tuple(view.shape[1:]) if self.one_pass else i, []).append(i)
        probabilities: list[torch.Tensor] = [images] * len(views)
        for members in passes.values():
            outputs = self.model(torch.cat([views[i] for i in members])).float().softmax(1)
            for i, output in zip(members, outputs.split(len(images)), strict=True):
                probabilities[i] = output
        merger = ttach.base.Merger(type=self.merge, n=len(views))
        for transformer, output in zip(self.transforms, probabilities, strict=True):
            merger.append(transformer.deaugment_label(output))
        return torch.log(merger.result.clamp_min(1e-12))


@torch.no_grad()
def predict_logits(
    model: torch.nn.Module,
    loader,
    transform: Callable[[torch.Tensor], torch.Tensor],
    device: torch.device,
    precision: str = "fp32",
) -> np.ndarray:
    """The model's float32 outputs, computed in `precision`, for every photo of `loader` (uint8
    batches, transformed on `device`), in order; kept on `device` until the last batch, so that
    nothing waits for it before."""
    model.eval()
    outputs = []
    progress = Progress(len(loader), "inference")
    for step, (images, _) in enumerate(loader, start=1):
        outputs.append(predict_batch(model, images, transform, device, precision))
        progress.update(step, len(images))
    return torch.cat(outputs).cpu().numpy()


def predict_batch(
    model: torch.nn.Module,
    images: torch.Tensor,
    transform: Callable[[torch.Tensor], torch.Tensor],
    device: torch.device,
    precision: str = "fp32",
) -> torch.Tensor:
    """The model's float32 outputs for one batch of uint8 `images`, transformed on `device`,
    computed in `precision`."""
    images = transform(images.to(device, non_blocking=True))
    with autocast(device, precision):
        return model(images).float()


@torch.no_grad()
def prediction_batch_size(
    model: torch.nn.Module,
    photos: CachedPhotos,
    transform: Callable[[torch.Tensor], torch.Tensor],
    device: torch.device,
    precision: str,
    memory: BatchSetting,
) -> int:
    """`batch_size: auto` of prediction: the largest batch, up to the number of `photos`, of black
    photos of their cache's size that `model` (with its TTA) predicts on `device` in `precision`
    (see facemask.utils.memory.auto_batch_size)."""
    shape = np.load(photos.cache, mmap_mode="r").shape[1:]  # height, width, 3
    model.eval()

    def try_batch(size: int) -> None:
        predict_batch(model, torch.zeros(size, *shape, dtype=torch.uint8), transform, device, precision)

    return auto_batch_size(device, memory, len(photos), lambda: try_batch)


@dataclass(frozen=True)
class PredictOptions:
    """How a trained member predicts: the TTA (the config's `tta`), the CPU threads (loader
    workers: threads - 1), the `device` setting (auto, cuda, cpu), and its job and batch as an
    out-of-memory message names them (facemask.utils.memory.BatchSetting)."""

    tta: TestTimeAugmentation
    threads: int = 1
    device: str = schema_field("device")
    memory: BatchSetting = BatchSetting("prediction", "tta.batch_size")


def predict_cached_photos(
    checkpoint: str | Path, cache: str | Path, photos: int, options: PredictOptions, age_cuts=None
) -> np.ndarray:
    """Logits (float64) of a trained (model, fold), with TTA, for the first `photos` rows of an
    image `cache` in order, in the model's precision; a years head's age bands cut at `age_cuts`
    when given."""
    tta, threads = options.tta, options.threads
    torch.set_num_threads(threads)
    on = pick_device(options.device)
    model, meta = load_checkpoint(checkpoint, on, age_cuts)
    precision = job_precision(meta["precision"], on)
    if on.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    if tta.transforms:
        model = BatchedTTA(model, list(tta.transforms), tta.merge, one_pass=on.type == "cuda")
    dataset = CachedPhotos(cache, np.arange(photos), [-1] * photos)
    transform = batch_transform(meta["data_config"]).to(on)
    memory = dataclasses.replace(options.memory, auto=tta.batch_is_auto)
    batch_size = (
        prediction_batch_size(model, dataset, transform, on, precision, memory)
        if tta.batch_is_auto
        else int(tta.batch_size)
    )
    log.info(
        f"predicting {photos} photos with {meta['arch']} (fold {meta['fold']}, epoch {meta['epoch']}) "
        f"on {on} in {precision}, TTA {list(tta.transforms) or 'off'}, batch {batch_size}"
    )
    with memory.says(f"TTA prediction of {photos} photos", batch_size):
        logits = predict_logits(
            model, photo_loader(dataset, batch_size, max(threads - 1, 0)), transform, on, precision
        )
    return logits.astype(np.float64)  # exact in a CSV, so that a table read back votes as these do


def predict_eval_photos(
    checkpoint: str | Path, photos: pd.DataFrame, cache: str | Path, options: PredictOptions, age_cuts=None
) -> pd.DataFrame:
    """Logits of a trained (model, fold) for every eval photo (ImageID; rows of the eval `cache`
    in the same order), with TTA; a years head's age bands cut at `age_cuts` when given."""
    table = photos[["ImageID"]].copy()
    table[list(LOGIT_COLUMNS)] = predict_cached_photos(checkpoint, cache, len(photos), options, age_cuts)
    return table
