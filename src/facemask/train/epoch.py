"""One pass of training over a loader: each batch augmented on the device, mixed, the loss and an
optimizer step; nothing waits for the GPU but the progress lines and the end of the epoch."""

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from timm.data import Mixup

from facemask.classes.labels import NUM_CLASSES
from facemask.config.blocks import Mixing
from facemask.config.defaults import schema_field
from facemask.utils.devices import autocast, grad_scaler
from facemask.utils.errors import PipelineError
from facemask.utils.logs import Progress
from facemask.utils.memory import BatchSetting

#: a training batch as an out-of-memory message names it where the job gives none
TRAIN_BATCH = BatchSetting("the train job", "batch_size", multiple=2)


@dataclass
class TrainStep:
    """What a training step needs besides its batch: the model (its output the 18-class
    log-probabilities, with a years head's beside them), the device transform of the uint8
    batches, the loss on log-probabilities and soft targets, the optimizer, Mixup / CutMix, the
    gradient accumulation and clipping, the precision and its loss scaler (fp16's scales the
    loss; a pass-through when None), and the one-hot targets' size (see losses.YearsLoss)."""

    model: torch.nn.Module
    transform: Callable[[torch.Tensor], torch.Tensor]
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    optimizer: torch.optim.Optimizer
    device: torch.device
    mixup: Mixup | None = None
    accumulation_steps: int = schema_field("models.*.accumulation_steps")
    clip_grad_norm: float | None = None
    precision: str = "fp32"
    scaler: torch.amp.GradScaler = None  # type: ignore[assignment]  # None: the precision's (see grad_scaler)
    num_targets: int = NUM_CLASSES

    def __post_init__(self):
        self.scaler = self.scaler or grad_scaler(self.device, self.precision)

    def targets(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch, mixed with its soft targets when mixing is on; else its one-hot targets.
        Mixing pairs photos: a batch is odd only when a fold is smaller than a batch."""
        if self.mixup is not None and len(labels) % 2 == 0:
            return self.mixup(images, labels)
        return images, torch.nn.functional.one_hot(labels, self.num_targets).float()

    def loss(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The loss of one batch, its gradient added (scaled for accumulation)."""
        images, targets = self.targets(images, labels)
        with autocast(self.device, self.precision):
            log_probs = self.model(images).float().log_softmax(1)
        loss = self.loss_fn(log_probs, targets)
        self.scaler.scale(loss / self.accumulation_steps).backward()
        return loss

    @property
    def lr(self) -> float:
        """The optimizer's lr (of its first parameter group)."""
        return self.optimizer.param_groups[0]["lr"]

    def update(self) -> None:
        """One optimizer update from the added gradients, clipped when asked."""
        if self.clip_grad_norm:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)


def create_mixup(mix: Mixing, num_targets: int = NUM_CLASSES) -> Mixup | None:
    """timm's Mixup / CutMix on the `num_targets` one-hot targets, or None when off."""
    if not mix.is_on:
        return None
    return Mixup(
        mixup_alpha=mix.mixup_alpha,
        cutmix_alpha=mix.cutmix_alpha,
        prob=mix.prob,
        switch_prob=mix.switch_prob,
        label_smoothing=0.0,
        num_classes=num_targets,
    )


class StepLosses:
    """The losses of an epoch's training steps, kept where they were computed and read back to the
    host only when asked (a read waits for the GPU, which would otherwise idle at every step while
    the next one is queued); a loss that is not finite stops training, naming its epoch and step."""

    def __init__(self, epoch: int):
        self.epoch, self.pending, self.sizes = epoch, list[torch.Tensor](), list[int]()
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
            raise PipelineError(
                f"training loss became {float(values[first])} at epoch {self.epoch}, "
                f"step {self.steps_read + first + 1}; lower the lr "
                "(no checkpoint was written from this state)"
            )
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
    step: TrainStep, loader: Iterable, epoch: int, memory: BatchSetting = TRAIN_BATCH
) -> tuple[float, int]:
    """One pass over `loader` (uint8 batches and labels): each batch copied to the device and
    augmented there, the loss and its gradient, an optimizer update every `accumulation_steps`
    batches and at the end. Returns the mean loss and the number of photos. A loss that is not
    finite stops training with a PipelineError; running out of GPU memory, with OutOfMemory, which
    names the job's batch (`memory`) and a size that fits."""
    step.model.train()
    losses, batches = StepLosses(epoch), len(loader)  # type: ignore[arg-type]
    progress = Progress(batches, f"epoch {epoch}")
    step.optimizer.zero_grad(set_to_none=True)
    for number, (images, labels) in enumerate(loader, start=1):
        with memory.says(f"training (epoch {epoch}, step {number})", len(labels)):
            images = step.transform(images.to(step.device, non_blocking=True))
            labels = labels.to(step.device, non_blocking=True)
            loss = step.loss(images, labels)
            if number % step.accumulation_steps == 0 or number == batches:
                step.update()
        losses.add(loss, len(labels))
        progress.update(number, len(labels), lambda: {"loss": losses.read(), "lr": step.lr})
    losses.read()
    return losses.mean, losses.photos
