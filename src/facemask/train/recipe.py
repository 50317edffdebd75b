"""A model block assembled into the parts of a training step: its head, classifier and
preprocessing, loss, Mixup / CutMix, augmentation, optimizer, schedule and weight average. Train
jobs, the load-time check of a block (facemask.train.block_check) and the GPU benchmark all build them here,
so what the check checks and the benchmark times is what training runs."""

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from facemask.classes.labels import MAX_AGE, NUM_CLASSES
from facemask.config.blocks import ModelBlock
from facemask.data.augment import batch_transform
from facemask.model.classifier import create_backbone, model_data_config
from facemask.model.heads import ClassesHead
from facemask.train.epoch import TrainStep, create_mixup
from facemask.train.optim import LearningRateSchedule, WeightAverage, create_optimizer
from facemask.utils.errors import ConfigError, WeightsError


@dataclass
class TrainingParts:
    """What a training step is made of: the head, the classifier (its output the 18-class
    logits or log-probabilities) and its preprocessing (data config), the step (the module it
    trains, augmentation, loss, optimizer, Mixup / CutMix, precision), the lr schedule and the
    weight average (None when off)."""

    head: ClassesHead
    model: torch.nn.Module
    data_config: dict
    step: TrainStep
    schedule: LearningRateSchedule
    ema: WeightAverage | None


@contextlib.contextmanager
def part(key: str, what: str):
    """Turn an error raised while a part is built into a ConfigError naming the block's `key` and
    `what` failed; weights that cannot be had (WeightsError, which names them) pass as they are."""
    try:
        yield
    except WeightsError:
        raise
    except Exception as error:  # timm and torch raise many kinds for a bad name or option
        detail = " ".join(f"{type(error).__name__}: {error}".split())
        raise ConfigError(f"{key}: {what} ({detail}); fix or remove it") from error


def build_classifier(
    block: ModelBlock,
    head: ClassesHead,
    device: torch.device,
    pretrained: bool | str | None = None,
    compile: bool | str | None = None,
    image_size: Sequence[int] | None = None,
    backbone: Callable[[int], torch.nn.Module] | None = None,
) -> tuple[torch.nn.Module, dict]:
    """The block's classifier, `head` around the timm model of `arch` (or `backbone(outputs)`, a
    stand-in for a check), on `device`, its backbone compiled when asked (`compile`: true for
    torch's default backend, or a backend's name); and its preprocessing at the image size.
    `pretrained`, `compile` and `image_size` replace the block's own when given."""
    kwargs = dict(block.model_kwargs)
    what = f"timm cannot build {block.arch}" + (f" with {kwargs}" if kwargs else "")
    with part("model_kwargs" if kwargs else "arch", what):
        weights = block.pretrained if pretrained is None else pretrained
        features = backbone or (lambda outputs: create_backbone(block.arch, weights, outputs, kwargs))
        model = head.classifier(features(head.outputs)).to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    data_config = model_data_config(model, image_size or block.image_size)
    compiled = block.compile if compile is None else compile
    if compiled:
        # the backbone, which every head's forward goes through; in place, so the state dict keeps its keys
        backend = compiled if isinstance(compiled, str) else "inductor"
        getattr(model, "backbone", model).compile(backend=backend)
    return model, data_config


def build_training(
    block: ModelBlock,
    head: ClassesHead,
    device: torch.device,
    labels: torch.Tensor,
    updates_per_epoch: int,
    precision: str = "fp32",
    **classifier,
) -> TrainingParts:
    """The parts of the model `block`'s training step (see TrainingParts) with its `head`
    (heads.head_of) on `device` in `precision`: class weights from `labels` (the training photos'
    18-class labels), the schedule for `updates_per_epoch`; `classifier`: pretrained, compile,
    image_size or backbone in place of the block's (see build_classifier). A part that cannot be
    built is a ConfigError naming its key."""
    model, data_config = build_classifier(block, head, device, **classifier)
    with part("loss", "cannot build the loss"):
        loss_fn = head.loss(labels)
    with part("mix", "timm cannot build Mixup / CutMix"):
        mixup = create_mixup(block.mix, head.num_targets)
    with part("augment", "cannot build the augmentation"):
        transform = batch_transform(data_config, block.augment).to(device)
    with part("optimizer", "timm cannot build it"):
        optimizer = create_optimizer(model, block)
    with part("scheduler", "timm cannot build it"):
        schedule = LearningRateSchedule(optimizer, block, updates_per_epoch)
    with part("ema", "timm cannot build the weight average"):
        ema = WeightAverage(model, optimizer, block.ema.decay, block.ema.warmup) if block.ema.decay else None
    step = TrainStep(
        model=head.training_module(model),
        transform=transform,
        loss_fn=loss_fn,
        optimizer=optimizer,
        device=device,
        mixup=mixup,
        accumulation_steps=block.accumulation_steps,
        clip_grad_norm=block.clip_grad_norm,
        precision=precision,
        num_targets=head.num_targets,
    )
    return TrainingParts(head, model, data_config, step, schedule, ema)


def dummy_batch(
    head: ClassesHead, size: int, shape: Sequence[int], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of `size` black uint8 photos of `shape` (height, width, 3) on `device`, as the image
    cache gives them, with `head`'s targets of every class in turn (ages spread over the years):
    what the load-time check of a block and `batch_size: auto`'s search train on."""
    labels = np.arange(size) % NUM_CLASSES
    targets = head.targets(pd.DataFrame({"age": labels * 7 % (MAX_AGE + 1)}), labels)
    return torch.zeros(size, *shape, dtype=torch.uint8, device=device), torch.from_numpy(targets).to(device)
