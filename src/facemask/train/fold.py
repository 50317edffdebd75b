"""Train one model on all folds but one, validate on that fold by macro F1, keep the last epoch
(or, with the block's `keep: best`, the best one).

After every epoch the whole training state (model, optimizer, scheduler, RNG states, history,
epoch kept so far) is saved beside the outputs, so a killed job resumes where it stopped; the
outputs themselves are written once, atomically, when training ends.
"""

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from facemask.classes.decision import class_shares
from facemask.config.blocks import ModelBlock
from facemask.data.augment import batch_transform
from facemask.model.classifier import save_checkpoint
from facemask.model.heads import head_of
from facemask.tracking.train_runs import TrainTracking
from facemask.train.auto_batch import batch_setting, training_batch_size
from facemask.train.epoch import train_one_epoch
from facemask.train.job import (
    FirstBatches,
    TrainJob,
    TrainOutputs,
    fold_loaders,
    hold_caches,
    split_fold,
    training_labels,
)
from facemask.train.optim import LearningRateSchedule, updates_per_epoch
from facemask.train.recipe import TrainingParts, build_training
from facemask.train.resume import (
    cache_stamp,
    resume,
    save_resume_state,
    seed_everything,
    settings_fingerprint,
)
from facemask.train.validation import Validation, ValidationFold, validate
from facemask.utils.devices import job_precision, pick_device
from facemask.utils.digests import file_digest
from facemask.utils.files import write_csv
from facemask.utils.logs import log
from facemask.utils.memory import BatchSetting
from facemask.utils.provenance import code_digest


@dataclass
class TrainingState:
    """A run's progress, saved after every epoch: the last epoch done, the history, and the epoch
    kept so far (the best, or the last) with its weights and validation outputs."""

    epoch: int = 0
    history: list[dict] = dataclasses.field(default_factory=list)
    kept_f1: float = -1.0
    kept_epoch: int = 0
    kept_model: dict[str, torch.Tensor] | None = None
    kept_logits: torch.Tensor | None = None

    def keep(self, epoch: int, kept: Validation, only_if_better: bool) -> bool:
        """Keep the validated weights and outputs, or with `only_if_better` only when they beat the
        epoch kept so far; whether they were kept."""
        if only_if_better and kept.val_f1 <= self.kept_f1:
            return False
        self.kept_f1, self.kept_epoch, self.kept_logits = kept.val_f1, epoch, torch.from_numpy(kept.outputs)
        self.kept_model = {k: v.detach().to("cpu", copy=True) for k, v in kept.module.state_dict().items()}
        return True


@dataclass
class FoldRun:
    """A train job set up (its batch size found, where it is auto): the parts of its training step
    (recipe.TrainingParts), its validation fold and training loader, its batch as an out-of-memory
    message names it, and the fingerprint its resume state must match."""

    job: TrainJob
    parts: TrainingParts
    validation: ValidationFold
    train_loader: torch.utils.data.DataLoader
    memory: BatchSetting
    fingerprint: str = ""

    @property
    def saved(self) -> dict:
        """What the resume state saves and restores, by name."""
        parts = self.parts
        saved = {"model": parts.model, "optimizer": parts.step.optimizer, "scheduler": parts.schedule}
        return saved | {"scaler": parts.step.scaler} | ({"ema": parts.ema} if parts.ema else {})


def set_up(job: TrainJob, train_photos: pd.DataFrame, val_photos: pd.DataFrame) -> FoldRun:
    """Hold the image cache on the GPU (where asked and it fits), find the batch size (where it is
    auto: see auto_batch), build the job's loaders and the parts of its training step (see
    recipe.build_training); validation decides classes matched to the class shares of the fold's
    own training photos (not the pseudo ones), whatever the vote's decision
    (ensemble.match_class_shares, an eval-side setting that retrains nothing)."""
    block, device = job.block, pick_device(job.device)
    precision = job_precision(block.precision, device)
    trained = job.trained_photos(train_photos)
    train_labels = training_labels(trained, block.train_age_bins)
    head = head_of(block, job.age_bins)
    labels, held = torch.tensor(train_labels.to_numpy()), hold_caches(job, device)
    memory = batch_setting(job, held[0] is not None)
    block = dataclasses.replace(block, batch_size=training_batch_size(job, head, device, precision, labels))
    job = dataclasses.replace(job, block=block)
    train_loader, val_loader = fold_loaders(job, trained, train_labels, val_photos, head, held)
    updates = updates_per_epoch(len(train_loader), block.accumulation_steps)
    parts = build_training(block, head, device, labels, updates, precision)
    validation = ValidationFold(
        val_loader,
        batch_transform(parts.data_config).to(device),
        val_photos["label"].to_numpy(),
        device,
        precision=precision,
        module_of=parts.head.training_module,
        shares=class_shares(train_photos["label"]),
    )
    return FoldRun(job, parts, validation, train_loader, memory)


def train_fold(
    index: pd.DataFrame,
    folds: pd.DataFrame,
    fold: int,
    block: ModelBlock,
    cache: str | Path,
    outputs: TrainOutputs,
    tracking: TrainTracking | None = None,
    **options,
) -> pd.DataFrame:
    """Train the model `block` on every fold but `fold`, validate on `fold` each epoch (the raw and, with
    `ema`, the averaged weights), and write the kept epoch's checkpoint and out-of-fold logits (see the
    block's `keep`) and the history; return the history. `options`: TrainJob's seed, threads, age_bins,
    device, pseudo (eval photos trained on besides, see facemask.ensemble.pseudo_labels) and name.
    Resumes from `outputs.resume_state` when a killed run of the same settings, photos, cache and code
    left one. `tracking`: the job's MLflow run (settings, per-epoch metrics, kept epoch, checkpoint)."""
    job = TrainJob(block, fold, Path(cache), outputs, **options)
    torch.set_num_threads(job.threads)
    seed_everything(job.seed + fold)
    train_photos, val_photos = split_fold(index, folds, fold)
    run = set_up(job, train_photos, val_photos)
    block = run.job.block  # its batch size found, where it is auto
    identity = block.as_config() | {"precision": run.parts.step.precision, "code": code_digest(__file__)}
    if job.pseudo:
        identity["pseudo_cache"] = cache_stamp(job.pseudo.cache)
    trained = job.trained_photos(train_photos)
    run.fingerprint = settings_fingerprint(identity, fold, job.seed, trained, job.cache)
    saved = resume(outputs.resume_state, run.fingerprint, run.saved, run.train_loader.generator)
    state = TrainingState(**saved) if saved else TrainingState()
    step = run.parts.step
    pseudo = len(trained) - len(train_photos)
    log.info(
        f"fold {fold}: {block.arch} on {step.device} in {step.precision}, {len(train_photos)} "
        f"training{f' + {pseudo} pseudo-labelled' if job.pseudo else ''} / {len(val_photos)} "
        f"validation photos, {run.parts.schedule.epochs} epochs{stop_text(run.parts.schedule)}"
    )
    tracking = tracking or TrainTracking(None, outputs.tracking_record, "", {})
    sizes = {"fold": fold, "seed": job.seed, "train_photos": len(train_photos), "val_photos": len(val_photos)}
    sizes |= {"pseudo_photos": pseudo} if job.pseudo else {}
    tracking.start(run.fingerprint, identity | sizes, state.history)
    try:
        train_epochs(run, state, tracking.log_epoch)
        run.parts.model.load_state_dict(state.kept_model or {})
        save_kept_checkpoint(run, state)
        history = write_fold_results(run, state, val_photos)
    except BaseException as error:
        tracking.end("KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")
        raise
    tracking.end("FINISHED", kept_epoch_tags(outputs.checkpoint, state))
    return history


def kept_epoch_tags(checkpoint: Path, state: TrainingState) -> dict[str, str]:
    """What a tracking run records of the epoch kept: its number, F1 and checkpoint (path, SHA-256)."""
    return {
        "kept_epoch": str(state.kept_epoch),
        "kept_val_f1": f"{state.kept_f1:.6f}",
        "checkpoint": str(checkpoint.resolve()),
        "checkpoint_sha256": file_digest(checkpoint),
    }


def train_epochs(run: FoldRun, state: TrainingState, on_epoch: Callable[[dict], None]) -> None:
    """Train, validate and save the resume state epoch by epoch from `state.epoch`, until the
    schedule's epochs are done, its block's stop_after stops it (mid-epoch: the last epoch is
    validated where it stops) or early stopping ends the run; `on_epoch` gets each epoch's
    history row once it is saved."""
    fold, patience = run.job.fold, run.job.block.early_stopping_patience
    epochs = run.parts.schedule.last_epoch
    resumed_at, run_started = state.epoch, time.perf_counter()
    for epoch in range(state.epoch + 1, epochs + 1):
        lr, started = run.parts.schedule.lr, time.perf_counter()
        train_loss, seen = train_one_epoch(run.parts.step, epoch_batches(run, epoch), epoch, run.memory)
        images_per_s = seen / (time.perf_counter() - started)
        by_f1 = run.job.block.keep == "best"
        with run.memory.says(f"validation (epoch {epoch})", int(run.job.block.batch_size)):
            kept, candidates = validate(run.parts.model, run.parts.ema, run.validation, by_f1)
        mean_lr = run.parts.schedule.end_epoch(epoch, kept.val_f1)
        scores = {"val_loss": kept.val_loss, "val_f1": kept.val_f1, "val_accuracy": kept.val_accuracy}
        row: dict[str, float | str] = {"epoch": epoch, "lr": lr, "mean_lr": mean_lr, "train_loss": train_loss}
        row |= scores | kept.task_f1
        row |= {"train_images_per_s": images_per_s} | (
            candidates | {"weights": kept.weights} if run.parts.ema else {}
        )
        improved = state.keep(epoch, kept, only_if_better=by_f1)
        state.history.append(row | {"batch_size": run.job.block.batch_size, "kept": int(improved)})
        eta = (time.perf_counter() - run_started) / (epoch - resumed_at) * (epochs - epoch)
        note = f" ({kept.weights} weights, kept)" if improved else ""
        log.info(
            f"fold {fold} epoch {epoch}/{epochs}: lr {lr:.2e} (mean {mean_lr:.2e}), "
            f"train loss {train_loss:.4f}, val loss {kept.val_loss:.4f}, val F1 {kept.val_f1:.4f}, "
            f"acc {kept.val_accuracy:.4f}, {images_per_s:.0f} img/s, ETA {eta:.0f} s{note}"
        )
        state.epoch = epoch
        save_resume_state(
            run.job.outputs.resume_state, run.fingerprint, run.saved, run.train_loader.generator, vars(state)
        )
        on_epoch(row)
        if patience and epoch - state.kept_epoch >= patience:
            log.info(
                "fold %d: early stop after epoch %d, no better validation F1 for %d epochs",
                fold,
                epoch,
                patience,
            )
            return


def stop_text(schedule: LearningRateSchedule) -> str:
    """Where a run stops in words, when its block's stop_after ends it before its schedule does."""
    total = schedule.epochs * schedule.updates_per_epoch
    if schedule.stop_update >= total:
        return ""
    return f", stopping after update {schedule.stop_update} of {total} (epoch {schedule.last_epoch})"


def epoch_batches(run: FoldRun, epoch: int) -> torch.utils.data.DataLoader | FirstBatches:
    """The training batches of `epoch`: the loader's, or in the epoch that the block's stop_after
    ends, its first ones up to the last update."""
    batches = run.parts.schedule.updates_in(epoch) * run.job.block.accumulation_steps
    return run.train_loader if batches >= len(run.train_loader) else FirstBatches(run.train_loader, batches)


def save_kept_checkpoint(run: FoldRun, state: TrainingState) -> None:
    """The kept epoch's weights (loaded into the run's model) with what inference needs to rebuild them."""
    block, parts = run.job.block, run.parts
    meta: dict[str, Any] = {"arch": block.arch, "model_kwargs": dict(block.model_kwargs)}
    meta |= parts.head.checkpoint_meta() | {"data_config": parts.data_config, "epoch": state.kept_epoch}
    meta |= {"fold": run.job.fold, "val_f1": state.kept_f1, "precision": block.precision}
    meta |= {"train_batch_size": block.batch_size}  # as trained: found, where it is auto
    save_checkpoint(run.job.outputs.checkpoint, run.parts.model, meta)


def write_fold_results(run: FoldRun, state: TrainingState, val_photos: pd.DataFrame) -> pd.DataFrame:
    """Write the kept epoch's out-of-fold columns (heads.ClassesHead.out_of_fold) and the history,
    drop the resume state; return the history."""
    outputs = run.job.outputs
    photos = val_photos[["path", "person", "fold", "label"]]
    logits = state.kept_logits.numpy()  # type: ignore[union-attr]  # kept at the first epoch
    write_csv(run.parts.head.out_of_fold(photos, logits), outputs.oof_logits)
    history = pd.DataFrame(state.history)
    write_csv(history, outputs.history)
    outputs.resume_state.unlink()
    return history
