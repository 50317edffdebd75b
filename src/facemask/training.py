"""Train one model on all folds but one, validate on that fold by macro F1, keep the best epoch."""

import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2

from facemask.data import FacePhotoDataset, photo_loader, photo_transform
from facemask.errors import PipelineError
from facemask.inference import predict_logits
from facemask.labels import LOGIT_COLUMNS
from facemask.logs import log
from facemask.losses import create_loss
from facemask.models import autocast, create_classifier, model_data_config, pick_device, save_checkpoint
from facemask.report import macro_f1


@dataclass(frozen=True)
class TrainOutputs:
    """Where a (model, fold) job writes: best checkpoint, out-of-fold logits, per-epoch history."""

    checkpoint: Path
    oof_logits: Path
    history: Path


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and GPU)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def split_fold(index: pd.DataFrame, folds: pd.DataFrame, fold: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training photos (all other folds) and validation photos (this fold) of `index`."""
    photos = index.merge(folds[["person", "fold"]], on="person", how="left", validate="many_to_one")
    if photos["fold"].isna().any():
        raise PipelineError(f"folds table has no fold for person {photos.loc[photos['fold'].isna(), 'person'].iloc[0]}")
    if fold not in set(photos["fold"]):
        raise PipelineError(f"fold {fold} is not in the folds table (folds {sorted(set(photos['fold']))})")
    held_out = photos["fold"] == fold
    return photos[~held_out].reset_index(drop=True), photos[held_out].reset_index(drop=True)


def train_one_epoch(model, loader, loss_fn, optimizer, device) -> tuple[float, int]:
    """One pass over `loader`; the mean training loss and the number of photos seen."""
    model.train()
    total_loss, seen = 0.0, 0
    for images, labels in loader:
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        with autocast(device):
            loss = loss_fn(model(images), labels)
        if not math.isfinite(loss.item()):
            raise PipelineError(f"training loss became {loss.item()} after {seen} photos; lower the lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(labels)
        seen += len(labels)
    return total_loss / max(seen, 1), seen


def train_fold(
    index: pd.DataFrame, folds: pd.DataFrame, fold: int, settings: dict, data_dir: str | Path,
    outputs: TrainOutputs, seed: int = 0, threads: int = 1,
) -> pd.DataFrame:
    """Train the model block `settings` on every fold but `fold`, validate on `fold` each epoch,
    and write the best epoch's checkpoint and out-of-fold logits and the history; return the history."""
    torch.set_num_threads(threads)
    seed_everything(seed + fold)
    device = pick_device()
    train_photos, val_photos = split_fold(index, folds, fold)
    model = create_classifier(settings["arch"], settings["pretrained"], model_kwargs=settings["model_kwargs"])
    model.to(device)
    data_config = model_data_config(model, settings["image_size"])
    workers = max(threads - 1, 0)
    train_loader = photo_loader(
        FacePhotoDataset(data_dir, train_photos["path"], train_photos["label"], photo_transform(data_config, settings["augment"])),
        settings["batch_size"], workers, shuffle=True, seed=seed + fold,
    )
    val_loader = photo_loader(
        FacePhotoDataset(data_dir, val_photos["path"], val_photos["label"], photo_transform(data_config)),
        settings["batch_size"], workers,
    )
    optimizer = create_optimizer_v2(model, opt=settings["optimizer"]["name"], **_without_name(settings["optimizer"]))
    scheduler, epochs = create_scheduler_v2(
        optimizer, sched=settings["scheduler"]["name"], num_epochs=settings["epochs"], **_without_name(settings["scheduler"])
    )
    loss_fn = create_loss(**settings["loss"])
    log.info("fold %d: %s on %s, %d training / %d validation photos, %d epochs",
             fold, settings["arch"], device, len(train_photos), len(val_photos), epochs)
    history, best_f1 = [], -1.0
    for epoch in range(epochs):
        lr = optimizer.param_groups[0]["lr"]
        started = time.perf_counter()
        train_loss, seen = train_one_epoch(model, train_loader, loss_fn, optimizer, device)
        train_seconds = time.perf_counter() - started
        logits = predict_logits(model, val_loader, device)
        val_loss = float(torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.tensor(val_photos["label"].to_numpy())))
        predicted = logits.argmax(axis=1)
        val_f1, val_accuracy = macro_f1(val_photos["label"], predicted), float((predicted == val_photos["label"]).mean())
        history.append({"epoch": epoch + 1, "lr": lr, "train_loss": train_loss, "val_loss": val_loss,
                        "val_f1": val_f1, "val_accuracy": val_accuracy, "train_images_per_s": seen / train_seconds})
        improved = val_f1 > best_f1
        log.info("fold %d epoch %d/%d: lr %.2e, train loss %.4f, val loss %.4f, val F1 %.4f, acc %.4f, %.0f img/s%s",
                 fold, epoch + 1, epochs, lr, train_loss, val_loss, val_f1, val_accuracy, seen / train_seconds,
                 " (best)" if improved else "")
        if improved:
            best_f1 = val_f1
            save_checkpoint(outputs.checkpoint, model, {
                "arch": settings["arch"], "num_classes": logits.shape[1], "model_kwargs": settings["model_kwargs"],
                "data_config": data_config, "epoch": epoch + 1, "fold": fold, "val_f1": val_f1,
            })
            oof = val_photos[["path", "person", "fold", "label"]].copy()
            oof[list(LOGIT_COLUMNS)] = logits
        scheduler.step(epoch + 1)
    oof.to_csv(outputs.oof_logits, index=False)
    history = pd.DataFrame(history)
    history.to_csv(outputs.history, index=False)
    return history


def _without_name(options: dict) -> dict:
    return {key: value for key, value in options.items() if key != "name"}
