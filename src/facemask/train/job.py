"""A train job and its fold: the photos split by person, the labels trained on, the draws that
balance them, and the loaders on the image cache."""

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from facemask.classes.labels import DEFAULT_AGE_BINS, TASK_OF_CLASS, age_band, encode_class
from facemask.config.blocks import ModelBlock
from facemask.config.defaults import schema_field
from facemask.data.loader import CachedPhotos, JoinedPhotos, load_cache, photo_loader
from facemask.data.pseudo_photos import PseudoPhotos
from facemask.model.heads import ClassesHead
from facemask.utils.errors import PipelineError
from facemask.utils.memory import out_of_memory_says


@dataclass(frozen=True)
class TrainOutputs:
    """Where a (model, fold) job writes: the checkpoint of the kept epoch (the last; the best with
    `keep: best`), out-of-fold logits, per-epoch history, (until it succeeds) its resume state, and
    the id of its tracking run."""

    checkpoint: Path
    oof_logits: Path
    history: Path

    @property
    def resume_state(self) -> Path:
        return self.checkpoint.with_name("resume_state.pt")

    @property
    def tracking_record(self) -> Path:
        return self.checkpoint.with_name("tracking_run.json")


@dataclass(frozen=True)
class TrainJob:
    """One train job: the model block, the held-out fold, the image cache and where the outputs go;
    the seed (each fold adds its number), threads, the index's age cuts, the `device` setting,
    the pseudo-labelled eval photos it also trains on, if any (a second round, see
    facemask.ensemble.pseudo_labels), and the block's name in the config (for messages)."""

    block: ModelBlock
    fold: int
    cache: Path
    outputs: TrainOutputs
    seed: int = schema_field("seed")
    threads: int = 1
    age_bins: Sequence[int] = DEFAULT_AGE_BINS
    device: str = schema_field("device")
    pseudo: PseudoPhotos | None = None
    name: str = ""

    @property
    def label(self) -> str:
        """The job as messages name it: 'model resnet34, fold 2'."""
        return f"model {self.name or self.block.arch}, fold {self.fold}"

    def key(self, setting: str) -> str:
        """The config key of the block's `setting`: 'models.resnet34.batch_size'."""
        return f"models.{self.name or '<name>'}.{setting}"

    def trained_photos(self, train_photos: pd.DataFrame) -> pd.DataFrame:
        """The photos the job trains on: the fold's training photos, then its pseudo photos."""
        if self.pseudo is None:
            return train_photos
        return pd.concat([train_photos, self.pseudo.photos], ignore_index=True)


@dataclass(frozen=True)
class FirstBatches:
    """The first `count` batches of a training loader: the epoch that a block's stop_after ends."""

    loader: Iterable
    count: int

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator:
        return itertools.islice(self.loader, self.count)


def split_fold(index: pd.DataFrame, folds: pd.DataFrame, fold: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training photos (all other folds) and validation photos (this fold) of `index`."""
    photos = index.merge(folds[["person", "fold"]], on="person", how="left", validate="many_to_one")
    if photos["fold"].isna().any():
        raise PipelineError(
            f"folds table has no fold for person {photos.loc[photos['fold'].isna(), 'person'].iloc[0]}"
        )
    if fold not in set(photos["fold"]):
        raise PipelineError(f"fold {fold} is not in the folds table (folds {sorted(set(photos['fold']))})")
    photos["row"] = np.arange(len(photos))  # the photo's row in the index, and so in the image cache
    held_out = photos["fold"] == fold
    return photos[~held_out].reset_index(drop=True), photos[held_out].reset_index(drop=True)


def training_labels(photos: pd.DataFrame, train_age_bins) -> pd.Series:
    """The 18-class labels to train on: the index's, or with the age band cut at `train_age_bins`
    (the label only: validation and scores keep the index's cuts)."""
    if not train_age_bins:
        return photos["label"]
    bands = photos["age"].map(lambda age: age_band(age, train_age_bins))
    return pd.Series(encode_class(photos["mask_label"], photos["gender_label"], bands), index=photos.index)


#: a block's `sampler`: what its draws balance (the 18 classes, the age bands), or None for a plain shuffle
SAMPLERS: dict[str, Callable[[pd.Series], pd.Series] | None] = {
    "none": None,
    "class": lambda labels: labels,
    "age": lambda labels: labels.map(dict(enumerate(TASK_OF_CLASS["age"]))),
}


def sample_weights(labels: pd.Series, sampler: str) -> torch.Tensor | None:
    """Per-photo draw weights that balance the 18 classes ('class') or the age bands ('age'), or
    None for a plain shuffle ('none')."""
    keys_of = SAMPLERS[sampler]
    if keys_of is None:
        return None
    keys = keys_of(labels)
    return torch.tensor((1.0 / keys.map(keys.value_counts())).to_numpy(), dtype=torch.double)


def hold_caches(job: TrainJob, device: torch.device) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The job's image cache and its pseudo photos' held on `device` (a GPU) where the block asks
    for it and each fits (data.loader.load_cache), else None; running out of memory on the way is
    OutOfMemory, which says to set cache_on_gpu: false."""
    if not job.block.cache_on_gpu:
        return None, None
    fix = f"set {job.key('cache_on_gpu')}: false (batches are then read from the file by loader workers)"
    with out_of_memory_says(job.label, "holding the image cache on the GPU", fix):
        held = load_cache(job.cache, device)
        pseudo_held = load_cache(job.pseudo.cache, device) if job.pseudo and held is not None else None
    return held, pseudo_held


def fold_loaders(
    job: TrainJob,
    train_photos: pd.DataFrame,
    train_labels: pd.Series,
    val_photos: pd.DataFrame,
    head: ClassesHead,
    held: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None),
):
    """The shuffled (or sampled) training loader over `train_photos` (job.trained_photos: the pseudo
    photos last, read from their own cache), labelled with `head`'s targets (see
    heads.ClassesHead.targets), and the validation loader, both on the image cache (sliced from
    the caches `held` on a GPU, see hold_caches, where they are)."""
    block, workers = job.block, max(job.threads - 1, 0)
    batch_size = int(block.batch_size)  # found already where it is auto (facemask.train.auto_batch)
    cache_held, pseudo_held = held
    own_held = None if job.pseudo and pseudo_held is None else cache_held  # both held, or workers read both
    labels, rows = head.targets(train_photos, train_labels), train_photos["row"].to_numpy()
    own = len(train_photos) - (len(job.pseudo.photos) if job.pseudo else 0)
    own_set = CachedPhotos(job.cache, rows[:own], labels[:own], own_held)
    train_set: CachedPhotos | JoinedPhotos = own_set
    if job.pseudo:
        train_set = JoinedPhotos(
            [own_set, CachedPhotos(job.pseudo.cache, rows[own:], labels[own:], pseudo_held)]
        )
    train_loader = photo_loader(
        train_set,
        batch_size,
        workers,
        shuffle=True,
        seed=job.seed + job.fold,
        sample_weights=sample_weights(train_labels, block.sampler),
    )
    val_photos_on_cache = CachedPhotos(job.cache, val_photos["row"], val_photos["label"], cache_held)
    return train_loader, photo_loader(val_photos_on_cache, batch_size, workers)
