"""Train one model on all folds but one, validate on that fold by macro F1, keep the best epoch.

After every epoch the whole training state (model, optimizer, scheduler, RNG states, history,
best epoch so far) is saved beside the outputs, so a killed job resumes where it stopped; the
outputs themselves are written once, atomically, when training ends.
"""

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from timm.data import Mixup

from facemask.augment import batch_transform
from facemask.devices import autocast, grad_scaler, job_precision, pick_device
from facemask.errors import PipelineError
from facemask.files import write_csv
from facemask.labels import (DEFAULT_AGE_BINS, LOGIT_COLUMNS, MAX_AGE, NUM_CLASSES, TASK_OF_CLASS, YEAR_COLUMNS, age_band,
                             encode_class, encode_year_and_class)
from facemask.loader import CachedPhotos, load_cache, photo_loader
from facemask.logs import Progress, log
from facemask.losses import create_loss
from facemask.models import ClassAndYears, create_classifier, model_data_config, save_checkpoint
from facemask.optim import LearningRateSchedule, create_optimizer, updates_per_epoch
from facemask.provenance import code_digest
from facemask.resume import resume, save_resume_state, seed_everything, settings_fingerprint
from facemask.selection import WeightAverage, validate


@dataclass(frozen=True)
class TrainOutputs:
    """Where a (model, fold) job writes: best checkpoint, out-of-fold logits, per-epoch history,
    and (until it succeeds) its resume state."""

    checkpoint: Path
    oof_logits: Path
    history: Path

    @property
    def resume_state(self) -> Path:
        return self.checkpoint.with_name("resume_state.pt")


def split_fold(index: pd.DataFrame, folds: pd.DataFrame, fold: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training photos (all other folds) and validation photos (this fold) of `index`."""
    photos = index.merge(folds[["person", "fold"]], on="person", how="left", validate="many_to_one")
    if photos["fold"].isna().any():
        raise PipelineError(f"folds table has no fold for person {photos.loc[photos['fold'].isna(), 'person'].iloc[0]}")
    if fold not in set(photos["fold"]):
        raise PipelineError(f"fold {fold} is not in the folds table (folds {sorted(set(photos['fold']))})")
    photos["row"] = np.arange(len(photos))  # the photo's row in the index, and so in the image cache
    held_out = photos["fold"] == fold
    return photos[~held_out].reset_index(drop=True), photos[held_out].reset_index(drop=True)


class StepLosses:
    """The losses of an epoch's training steps, kept where they were computed and read back to the
    host only when asked (a read waits for the GPU, which would otherwise idle at every step while
    the next one is queued); a loss that is not finite stops training, naming its epoch and step."""

    def __init__(self, epoch: int):
        self.epoch, self.pending, self.sizes = epoch, [], []
        self.steps_read, self.total, self.photos, self.latest = 0, 0.0, 0, math.nan

    def add(self, loss: torch.Tensor, photos: int) -> None:
        self.pending.append(loss.detach())
        self.sizes.append(photos)

    def read(self) -> float:
        """Read back the losses added since the last read, check them, and return the latest."""
        if not self.pending:
            return self.latest
        values = torch.stack(self.pending).double().cpu()
        not_finite = (~values.isfinite()).nonzero()
        if len(not_finite):
            first = int(not_finite[0, 0])
            raise PipelineError(f"training loss became {float(values[first])} at epoch {self.epoch}, "
                                f"step {self.steps_read + first + 1}; lower the lr (no checkpoint was written from this state)")
        self.total += float((values * torch.tensor(self.sizes, dtype=torch.float64)).sum())
        self.photos += sum(self.sizes)
        self.steps_read += len(values)
        self.latest = float(values[-1])
        self.pending, self.sizes = [], []
        return self.latest

    @property
    def mean(self) -> float:
        """The mean loss per photo of the steps read so far."""
        return self.total / max(self.photos, 1)


def train_one_epoch(
    model, loader, transform, loss_fn, optimizer, device, epoch: int, mixup: Mixup | None = None,
    accumulation_steps: int = 1, clip_grad_norm: float | None = None, precision: str = "fp32", scaler=None,
    num_targets: int = NUM_CLASSES,
) -> tuple[float, int]:
    """One pass over `loader`: each uint8 batch copied to `device` and augmented there by
    `transform`, Mixup / CutMix on the batch when given, the loss on the model's 18-class
    log-probabilities (computed in `precision`) and soft targets, an optimizer step every
    `accumulation_steps` batches (and at the end) after optional gradient clipping, through the
    loss `scaler` (fp16's scales the loss; a new one when None); `num_targets` one-hot targets
    (18, or 18 per year for a years head, see losses.YearsLoss). Nothing waits for the GPU but the
    progress lines and the end of the epoch. Returns the mean loss and the number of photos. A
    loss that is not finite, or running out of GPU memory, stops training with a PipelineError."""
    model.train()
    losses = StepLosses(epoch)
    progress = Progress(len(loader), f"epoch {epoch}")
    optimizer.zero_grad(set_to_none=True)
    scaler = scaler or grad_scaler(device, precision)
    for step, (images, labels) in enumerate(loader, start=1):
        images, labels = transform(images.to(device, non_blocking=True)), labels.to(device, non_blocking=True)
        try:
            if mixup is not None and len(labels) % 2 == 0:  # pairs; odd only when a fold is smaller than a batch
                images, targets = mixup(images, labels)
            else:
                targets = torch.nn.functional.one_hot(labels, num_targets).float()
            with autocast(device, precision):
                log_probs = model(images).float().log_softmax(1)
            loss = loss_fn(log_probs, targets)
            scaler.scale(loss / accumulation_steps).backward()
            if step % accumulation_steps == 0 or step == len(loader):
                if clip_grad_norm:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
        except torch.cuda.OutOfMemoryError as error:
            raise PipelineError(f"out of GPU memory at epoch {epoch}, step {step} with batch size {len(labels)}: "
                                "lower the model's batch_size (raise accumulation_steps to keep the "
                                "effective batch) or image_size") from error
        losses.add(loss, len(labels))
        progress.update(step, len(labels), lambda: {"loss": losses.read(), "lr": optimizer.param_groups[0]["lr"]})
    losses.read()
    return losses.mean, losses.photos


def training_labels(photos: pd.DataFrame, train_age_bins) -> pd.Series:
    """The 18-class labels to train on: the index's, or with the age band cut at `train_age_bins`
    (the label only: validation and scores keep the index's cuts)."""
    if not train_age_bins:
        return photos["label"]
    bands = photos["age"].map(lambda age: age_band(age, train_age_bins))
    return pd.Series(encode_class(photos["mask_label"], photos["gender_label"], bands), index=photos.index)


#: a block's `sampler`: what its draws balance (the 18 classes, the age bands), or None for a plain shuffle
SAMPLERS = {"none": None, "class": lambda labels: labels, "age": lambda labels: labels.map(dict(enumerate(TASK_OF_CLASS["age"])))}


def sample_weights(labels: pd.Series, sampler: str) -> torch.Tensor | None:
    """Per-photo draw weights that balance the 18 classes ('class') or the age bands ('age'), or
    None for a plain shuffle ('none')."""
    if SAMPLERS[sampler] is None:
        return None
    keys = SAMPLERS[sampler](labels)
    return torch.tensor((1.0 / keys.map(keys.value_counts())).to_numpy(), dtype=torch.double)


def create_mixup(mix: dict, num_targets: int = NUM_CLASSES) -> Mixup | None:
    """timm's Mixup / CutMix on the `num_targets` one-hot targets (prob: share of mixed batches;
    switch_prob: share of those that use CutMix), or None when off."""
    if not mix["prob"] or not (mix["mixup_alpha"] or mix["cutmix_alpha"]):
        return None
    return Mixup(mixup_alpha=mix["mixup_alpha"], cutmix_alpha=mix["cutmix_alpha"], prob=mix["prob"],
                 switch_prob=mix["switch_prob"], label_smoothing=0.0, num_classes=num_targets)


def build_model(settings: dict, device: torch.device, age_cuts) -> tuple[torch.nn.Module, dict]:
    """The model block's classifier on `device` (a years head when `age_cuts` are given), its
    timm backbone compiled when asked (`compile`: true for torch's default backend, or a backend's
    name), and its preprocessing at the block's image size."""
    model = create_classifier(settings["arch"], settings["pretrained"], settings["head"], settings["model_kwargs"], age_cuts)
    model.to(device, memory_format=torch.channels_last if device.type == "cuda" else torch.preserve_format)
    data_config = model_data_config(model, settings["image_size"])
    if settings["compile"]:
        backend = settings["compile"] if isinstance(settings["compile"], str) else "inductor"
        # the backbone, which every forward of a head (18-way, three tasks, years) goes through;
        # in place, so the state dict keeps its keys
        getattr(model, "backbone", model).compile(backend=backend)
    return model, data_config


def fold_loaders(
    cache, train_photos: pd.DataFrame, train_labels: pd.Series, val_photos: pd.DataFrame, settings: dict,
    device: torch.device, threads: int, seed: int,
):
    """The shuffled (or sampled) training loader, labelled for the block's head (joint year and
    class labels for a years head), and the validation loader, both on the image cache."""
    workers = max(threads - 1, 0)
    held_cache = load_cache(cache, device) if settings["cache_on_gpu"] else None
    years = settings["age_years"]["sigma"] is not None
    labels = encode_year_and_class(train_photos["age"], train_labels) if years else train_labels
    train_loader = photo_loader(
        CachedPhotos(cache, train_photos["row"], labels, held_cache), settings["batch_size"], workers, shuffle=True,
        seed=seed, sample_weights=sample_weights(train_labels, settings["sampler"]),
    )
    val_loader = photo_loader(CachedPhotos(cache, val_photos["row"], val_photos["label"], held_cache), settings["batch_size"], workers)
    return train_loader, val_loader


def train_fold(
    index: pd.DataFrame, folds: pd.DataFrame, fold: int, settings: dict, cache: str | Path,
    outputs: TrainOutputs, seed: int = 0, threads: int = 1, age_bins=DEFAULT_AGE_BINS, device: str = "auto",
    class_shares: np.ndarray | None = None,
) -> pd.DataFrame:
    """Train the model block `settings` on every fold but `fold`, validate on `fold` each epoch
    (the raw and, with `ema`, the averaged weights), and write the best epoch's checkpoint and
    out-of-fold logits and the history; return the history. Resumes from `outputs.resume_state`
    when a killed run of the same settings left one. `age_bins`: the index's age cuts; `device`:
    the `device` setting (auto, cuda, cpu); the precision is the block's. The epoch kept is chosen
    by the rule that decides the submission: classes matched to `class_shares` (the training
    photos' class shares, see ensemble.decide_classes) when given, else the plain argmax."""
    torch.set_num_threads(threads)
    seed_everything(seed + fold)
    device = pick_device(device)
    precision = job_precision(settings["precision"], device)
    train_photos, val_photos = split_fold(index, folds, fold)
    years, train_cuts = settings["age_years"]["sigma"] is not None, list(settings["train_age_bins"] or age_bins)
    model, data_config = build_model(settings, device, train_cuts if years else None)
    train_labels = training_labels(train_photos, settings["train_age_bins"])
    train_loader, val_loader = fold_loaders(cache, train_photos, train_labels, val_photos, settings, device, threads, seed + fold)
    augment, plain = batch_transform(data_config, settings["augment"]).to(device), batch_transform(data_config).to(device)
    optimizer = create_optimizer(model, settings)
    schedule = LearningRateSchedule(optimizer, settings, updates_per_epoch(len(train_loader), settings["accumulation_steps"]))
    epochs = schedule.epochs
    scaler = grad_scaler(device, precision)
    loss_fn = create_loss(settings, torch.tensor(train_labels.to_numpy()))
    num_targets = NUM_CLASSES * (MAX_AGE + 1) if years else NUM_CLASSES
    mixup = create_mixup(settings["mix"], num_targets)
    ema = None if settings["ema"]["decay"] is None else WeightAverage(model, optimizer, **settings["ema"])
    run = settings | {"precision": precision, "code": code_digest(__file__), "class_shares": None if class_shares is None else class_shares.tolist()}
    fingerprint = settings_fingerprint(run, fold, seed, train_photos, cache)
    parts = {"model": model, "optimizer": optimizer, "scheduler": schedule, "scaler": scaler} | ({"ema": ema} if ema else {})
    state = resume(outputs.resume_state, fingerprint, parts, train_loader.generator) or {
        "epoch": 0, "history": [], "best_f1": -1.0, "best_model": None, "best_logits": None, "best_epoch": 0}
    log.info("fold %d: %s on %s in %s, %d training / %d validation photos, %d epochs",
             fold, settings["arch"], device, precision, len(train_photos), len(val_photos), epochs)
    resumed_at, run_started = state["epoch"], time.perf_counter()
    for epoch in range(state["epoch"] + 1, epochs + 1):
        lr = schedule.lr
        started = time.perf_counter()
        train_loss, seen = train_one_epoch(ClassAndYears(model) if years else model, train_loader, augment, loss_fn, optimizer,
                                           device, epoch, mixup, settings["accumulation_steps"], settings["clip_grad_norm"], precision,
                                           scaler, num_targets)
        train_seconds = time.perf_counter() - started
        kept = validate(model, ema, val_loader, plain, device, val_photos["label"].to_numpy(), years, precision, class_shares)
        mean_lr = schedule.end_epoch(epoch, kept["val_f1"])
        state["history"].append({"epoch": epoch, "lr": lr, "mean_lr": mean_lr, "train_loss": train_loss, "val_loss": kept["val_loss"],
                                 "val_f1": kept["val_f1"], "val_accuracy": kept["val_accuracy"],
                                 "train_images_per_s": seen / train_seconds,
                                 **(kept["candidates"] | {"weights": kept["weights"]} if ema else {})})
        improved = keep_if_best(state, epoch, kept)
        eta = (time.perf_counter() - run_started) / (epoch - resumed_at) * (epochs - epoch)
        log.info("fold %d epoch %d/%d: lr %.2e (mean %.2e), train loss %.4f, val loss %.4f, val F1 %.4f, acc %.4f, %.0f img/s, "
                 "ETA %.0f s%s", fold, epoch, epochs, lr, mean_lr, train_loss, kept["val_loss"], kept["val_f1"], kept["val_accuracy"],
                 seen / train_seconds, eta, f" ({kept['weights']} weights, best)" if improved else "")
        state["epoch"] = epoch
        save_resume_state(outputs.resume_state, fingerprint, parts, train_loader.generator, state)
        if (patience := settings["early_stopping_patience"]) and epoch - state["best_epoch"] >= patience:
            log.info("fold %d: early stop after epoch %d, no better validation F1 for %d epochs", fold, epoch, patience)
            break
    model.load_state_dict(state["best_model"])
    save_best_checkpoint(outputs.checkpoint, model, settings, data_config, state, fold, train_cuts if years else None)
    return write_fold_results(outputs, state, val_photos)


def save_best_checkpoint(path: Path, model, settings: dict, data_config: dict, state: dict, fold: int, age_cuts) -> None:
    """The best epoch's weights (loaded into `model`) with what inference needs to rebuild them."""
    save_checkpoint(path, model, {
        "arch": settings["arch"], "head": settings["head"], "model_kwargs": settings["model_kwargs"],
        "data_config": data_config, "epoch": state["best_epoch"], "fold": fold, "val_f1": state["best_f1"],
        "precision": settings["precision"], "age_cuts": age_cuts,
    })


def keep_if_best(state: dict, epoch: int, kept: dict) -> bool:
    """Keep the validated weights and outputs (see selection.validate) in `state` when they beat
    the best epoch so far; whether they did."""
    if kept["val_f1"] <= state["best_f1"]:
        return False
    state.update(best_f1=kept["val_f1"], best_epoch=epoch, best_logits=torch.from_numpy(kept["outputs"]),
                 best_model={k: v.detach().to("cpu", copy=True) for k, v in kept["module"].state_dict().items()})
    return True


def write_fold_results(outputs: TrainOutputs, state: dict, val_photos: pd.DataFrame) -> pd.DataFrame:
    """Write the best epoch's out-of-fold logits (and a years head's year probabilities) and the
    history, drop the resume state; return the history."""
    oof = val_photos[["path", "person", "fold", "label"]].copy()
    outputs_of_photos = state["best_logits"].numpy()
    oof[list(LOGIT_COLUMNS)] = outputs_of_photos[:, :NUM_CLASSES]
    if outputs_of_photos.shape[1] > NUM_CLASSES:  # a years head: the years' probabilities
        years = pd.DataFrame(np.exp(outputs_of_photos[:, NUM_CLASSES:]), columns=list(YEAR_COLUMNS), index=oof.index)
        oof = pd.concat([oof, years], axis=1)
    write_csv(oof, outputs.oof_logits)
    history = pd.DataFrame(state["history"])
    write_csv(history, outputs.history)
    outputs.resume_state.unlink()
    return history
