"""Logits for photos, with test-time augmentation: ttach's transforms and merge modes, every view
of a batch through the model in one forward pass, merged safely on probabilities."""

from pathlib import Path

import numpy as np
import pandas as pd
import torch
import ttach

from facemask.augment import batch_transform
from facemask.loader import CachedPhotos, photo_loader
from facemask.devices import autocast, pick_device
from facemask.labels import LOGIT_COLUMNS
from facemask.logs import Progress, log
from facemask.models import load_checkpoint

#: ttach transforms a config may name, with their keyword arguments
TTA_TRANSFORMS = ("HorizontalFlip", "VerticalFlip", "Rotate90", "Scale", "Resize", "Add", "Multiply", "FiveCrops")
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
    transforms that change it) instead of one pass per view. The views' probabilities are merged
    by ttach's Merger (mean, gmean and tsharpen are all valid on probabilities, unlike on raw
    logits) and the log of the merged probabilities is returned, so its softmax is the merged
    distribution. A forward pass sees batch size x number of views images."""

    def __init__(self, model: torch.nn.Module, transforms: list, merge: str = "mean"):
        super().__init__()
        if merge not in TTA_MERGE_MODES:
            raise ValueError(f"unknown TTA merge mode {merge!r}; choose from {list(TTA_MERGE_MODES)}")
        self.model, self.transforms, self.merge = model, list(tta_transforms(transforms)), merge

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        views = [transformer.augment_image(images) for transformer in self.transforms]
        by_shape: dict[tuple, list[int]] = {}
        for i, view in enumerate(views):
            by_shape.setdefault(tuple(view.shape[1:]), []).append(i)
        probabilities: list[torch.Tensor] = [images] * len(views)
        for members in by_shape.values():
            outputs = self.model(torch.cat([views[i] for i in members])).float().softmax(1)
            for i, output in zip(members, outputs.split(len(images)), strict=True):
                probabilities[i] = output
        merger = ttach.base.Merger(type=self.merge, n=len(views))
        for transformer, output in zip(self.transforms, probabilities, strict=True):
            merger.append(transformer.deaugment_label(output))
        return torch.log(merger.result.clamp_min(1e-12))


@torch.no_grad()
def predict_logits(model: torch.nn.Module, loader, transform: torch.nn.Module, device: torch.device) -> np.ndarray:
    """The model's float32 outputs for every photo of `loader` (uint8 batches, transformed on
    `device`), in order; kept on `device` until the last batch, so that nothing waits for it before."""
    model.eval()
    outputs = []
    progress = Progress(len(loader), "inference")
    for step, (images, _) in enumerate(loader, start=1):
        images = transform(images.to(device, non_blocking=True))
        with autocast(device):
            outputs.append(model(images).float())
        progress.update(step, len(images))
    return torch.cat(outputs).cpu().numpy()


def predict_eval_photos(
    checkpoint: str | Path, photos: pd.DataFrame, cache: str | Path, tta: dict, threads: int = 1, age_cuts=None,
) -> pd.DataFrame:
    """Logits of a trained (model, fold) for every eval photo (ImageID; rows of the eval `cache`
    in the same order), with TTA; a years head's age bands cut at `age_cuts` when given."""
    torch.set_num_threads(threads)
    device = pick_device()
    model, meta = load_checkpoint(checkpoint, device, age_cuts)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    if tta["transforms"]:
        model = BatchedTTA(model, tta["transforms"], tta["merge"])
    dataset = CachedPhotos(cache, np.arange(len(photos)), [-1] * len(photos))
    log.info("predicting %d photos with %s (fold %d, epoch %d) on %s, TTA %s",
             len(photos), meta["arch"], meta["fold"], meta["epoch"], device, tta["transforms"] or "off")
    transform = batch_transform(meta["data_config"]).to(device)
    logits = predict_logits(model, photo_loader(dataset, tta["batch_size"], max(threads - 1, 0)), transform, device)
    table = photos[["ImageID"]].copy()
    table[list(LOGIT_COLUMNS)] = logits
    return table
