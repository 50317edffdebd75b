"""Logits for photos, with test-time augmentation by ttach merged safely on probabilities."""

from pathlib import Path

import numpy as np
import pandas as pd
import torch
import ttach

from facemask.data import FacePhotoDataset, photo_loader, photo_transform
from facemask.labels import LOGIT_COLUMNS
from facemask.logs import Progress, log
from facemask.models import autocast, load_checkpoint, pick_device

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


class TTAClassifier(torch.nn.Module):
    """`model` under ttach's test-time transforms. Each view's softmax probabilities are merged
    (mean, gmean and tsharpen are all valid on probabilities, unlike on raw logits) and the log of
    the merged probabilities is returned, so softmax of the output is the merged distribution."""

    def __init__(self, model: torch.nn.Module, transforms: list, merge: str = "mean"):
        super().__init__()
        if merge not in TTA_MERGE_MODES:
            raise ValueError(f"unknown TTA merge mode {merge!r}; choose from {list(TTA_MERGE_MODES)}")
        probabilities = torch.nn.Sequential(model, torch.nn.Softmax(dim=1))
        self.tta = ttach.ClassificationTTAWrapper(probabilities, tta_transforms(transforms), merge_mode=merge)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.log(self.tta(images).clamp_min(1e-12))


@torch.no_grad()
def predict_logits(model: torch.nn.Module, loader, device: torch.device) -> np.ndarray:
    """The model's float32 outputs for every photo of `loader`, in order."""
    model.eval()
    outputs = []
    progress = Progress(len(loader), "inference")
    for step, (images, _) in enumerate(loader, start=1):
        with autocast(device):
            outputs.append(model(images.to(device, non_blocking=True)).float().cpu())
        progress.update(step, len(images))
    return torch.cat(outputs).numpy()


def predict_eval_photos(
    checkpoint: str | Path, photos: pd.DataFrame, data_dir: str | Path, tta: dict, threads: int = 1
) -> pd.DataFrame:
    """Logits of a trained (model, fold) for every eval photo (ImageID, path), with TTA."""
    torch.set_num_threads(threads)
    device = pick_device()
    model, meta = load_checkpoint(checkpoint, device)
    if tta["transforms"]:
        model = TTAClassifier(model, tta["transforms"], tta["merge"]).to(device)
    dataset = FacePhotoDataset(data_dir, photos["path"], [-1] * len(photos), photo_transform(meta["data_config"]))
    log.info("predicting %d photos with %s (fold %d, epoch %d) on %s, TTA %s",
             len(photos), meta["arch"], meta["fold"], meta["epoch"], device, tta["transforms"] or "off")
    logits = predict_logits(model, photo_loader(dataset, tta["batch_size"], max(threads - 1, 0)), device)
    table = photos[["ImageID"]].copy()
    table[list(LOGIT_COLUMNS)] = logits
    return table
