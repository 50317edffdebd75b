"""A model block's optimizer, learning-rate schedule and moving average of the weights, built by
timm's factories from its settings."""

import warnings

import torch
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.utils import ModelEmaV3

from facemask.config.blocks import ModelBlock

#: schedules that need the validation score and so step once per epoch (timm steps the others per update)
PER_EPOCH_SCHEDULES = ("plateau",)


def create_optimizer(model: torch.nn.Module, block: ModelBlock) -> torch.optim.Optimizer:
    """timm's optimizer named by the block's `optimizer.name`, with the block's other optimizer options."""
    options = dict(block.optimizer)
    return create_optimizer_v2(model, opt=options.pop("name"), **options)


class LearningRateSchedule:
    """timm's scheduler named by the block's `scheduler.name`, stepped after every optimizer update
    as timm's own train.py steps it (`step_update`), so warm-up and decay are counted in updates
    (`warmup_epochs` may be a fraction of an epoch); `plateau` lowers the lr on the validation F1
    once per epoch; `none` keeps the optimizer's lr. `epochs`: the epochs it runs (warm restarts
    may add cycles). With the block's `stop_after`, training stops after that share of the
    schedule's updates (`stop_update`), the lr still the full schedule's. It hooks the optimizer's
    step, so the training loop only reports each epoch's end."""

    def __init__(self, optimizer: torch.optim.Optimizer, block: ModelBlock, updates_per_epoch: int):
        options = dict(block.scheduler)
        name, self.updates_per_epoch = options.pop("name"), max(updates_per_epoch, 1)
        with (
            warnings.catch_warnings()
        ):  # plateau's deprecation: its state is saved whole here (see state_dict)
            warnings.filterwarnings("ignore", "PlateauLRScheduler is deprecated", FutureWarning)
            self.scheduler, self.epochs = create_scheduler_v2(
                optimizer,
                sched=name,
                num_epochs=block.epochs,
                step_on_epochs=name in PER_EPOCH_SCHEDULES,
                updates_per_epoch=self.updates_per_epoch,
                **options,
            )
        self.optimizer, self.updates, self.epoch_lrs = optimizer, 0, list[float]()
        self.stop_update = max(1, round(block.stop_after * self.epochs * self.updates_per_epoch))
        optimizer.register_step_post_hook(self.after_update)

    @property
    def last_epoch(self) -> int:
        """The epoch that training ends in: the schedule's last, or the one of its stop_after."""
        return -(-self.stop_update // self.updates_per_epoch)

    def updates_in(self, epoch: int) -> int:
        """The updates that `epoch` trains: an epoch's, fewer in the one that stop_after ends."""
        return min(self.updates_per_epoch, self.stop_update - (epoch - 1) * self.updates_per_epoch)

    @property
    def lr(self) -> float:
        """The lr of the next update (of the first parameter group)."""
        return self.optimizer.param_groups[0]["lr"]

    def after_update(self, *_) -> None:
        self.epoch_lrs.append(self.lr)  # the lr the update just used
        self.updates += 1
        if self.scheduler is not None:
            self.scheduler.step_update(self.updates)

    def end_epoch(self, epoch: int, val_f1: float) -> float:
        """Step a per-epoch schedule (with the epoch's validation F1); the mean lr of the epoch's updates."""
        if self.scheduler is not None:
            self.scheduler.step(epoch, metric=val_f1)
        mean_lr = sum(self.epoch_lrs) / len(self.epoch_lrs) if self.epoch_lrs else self.lr
        self.epoch_lrs = []
        return mean_lr

    def state_dict(self) -> dict:
        """The update count and the scheduler's state; for plateau, whose timm state leaves out its
        patience counters, the whole state of the torch scheduler inside it, so a resume is exact."""
        inner = getattr(self.scheduler, "lr_scheduler", None)
        return {
            "updates": self.updates,
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "plateau": None if inner is None else inner.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.updates = state["updates"]
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if state["plateau"] is not None:
            self.scheduler.lr_scheduler.load_state_dict(state["plateau"])


def updates_per_epoch(batches: int, accumulation_steps: int) -> int:
    """Optimizer updates in an epoch of `batches` (one every `accumulation_steps` batches, and one at
    the end)."""
    return -(-batches // accumulation_steps)


class WeightAverage:
    """timm's ModelEmaV3 of `model`'s weights, updated after every optimizer step (a step hook:
    the training loop is unchanged), its decay warmed up over the steps when `warmup`."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, decay: float, warmup: bool):
        self.model, self.steps = model, 0
        self.ema = ModelEmaV3(model, decay=decay, use_warmup=warmup)
        optimizer.register_step_post_hook(self.update)

    def update(self, *_) -> None:
        self.steps += 1
        self.ema.update(self.model, step=self.steps)

    def state_dict(self) -> dict:
        return {"weights": self.ema.state_dict(), "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.ema.load_state_dict(state["weights"])
        self.steps = state["steps"]
