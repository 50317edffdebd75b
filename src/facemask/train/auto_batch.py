"""A train job's batch size: its block's, or for `batch_size: auto` the largest even batch whose
training steps fit the GPU (facemask.utils.memory.auto_batch_size), tried on a copy of the block's
training step built as the job builds it (recipe.build_training: its model, optimizer state and
weight average; random weights, uncompiled) on dummy batches of the image cache's photos, after
the cache is held on the GPU; and the job's batch as an out-of-memory message names it."""

import numpy as np
import torch

from facemask.model.heads import ClassesHead
from facemask.train.job import TrainJob
from facemask.train.recipe import build_training, dummy_batch
from facemask.train.resume import kept_random_state
from facemask.utils.memory import BatchSetting, auto_batch_size

#: the training steps each tried size takes: the second one with the optimizer's state in memory
STEPS_TRIED = 2


def batch_setting(job: TrainJob, cache_held: bool) -> BatchSetting:
    """The job's batch as an out-of-memory message names it: even sizes (Mixup / CutMix pair the
    photos), found or not by `batch_size: auto`, and what else frees memory (the image cache, when
    `cache_held` on the GPU)."""
    hint = " (raise accumulation_steps to keep the effective batch)"
    if cache_held:
        hint += f"; or set {job.key('cache_on_gpu')}: false to free the GPU memory the image cache holds"
    return BatchSetting(job.label, job.key("batch_size"), multiple=2, auto=job.block.batch_is_auto, hint=hint)


def training_batch_size(
    job: TrainJob, head: ClassesHead, device: torch.device, precision: str, labels: torch.Tensor
) -> int:
    """The job's batch size: its block's, or for `batch_size: auto` the largest even one, up to
    the training photos (`labels`, their 18-class labels), whose training steps run on `device` in
    `precision` with `head` (see the module's doc); the random states are left as they were."""
    block = job.block
    if not block.batch_is_auto:
        return int(block.batch_size)
    shape = np.load(job.cache, mmap_mode="r").shape[1:]  # a photo of the cache: height, width, 3

    def trial():
        updates = max(len(labels), 1)  # as many as a batch of one would take: any schedule builds
        parts = build_training(
            block, head, device, labels, updates, precision, pretrained=False, compile=False
        )

        def try_batch(size: int) -> None:
            images, targets = dummy_batch(head, size, shape, device)
            for _ in range(STEPS_TRIED):
                parts.step.loss(parts.step.transform(images), targets)
                parts.step.update()

        return try_batch

    with kept_random_state(device):
        return auto_batch_size(device, batch_setting(job, False), len(labels), trial)
