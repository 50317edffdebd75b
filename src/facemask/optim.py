"""A model block's optimizer and learning-rate schedule, built by timm's factories from its settings."""

import torch
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2


def create_optimizer(model: torch.nn.Module, settings: dict) -> torch.optim.Optimizer:
    """timm's optimizer named by the block's `optimizer.name`, with the block's other optimizer options."""
    options = dict(settings["optimizer"])
    return create_optimizer_v2(model, opt=options.pop("name"), **options)


def create_schedule(optimizer: torch.optim.Optimizer, settings: dict):
    """timm's scheduler named by the block's `scheduler.name`, stepped per epoch, and the number
    of epochs it runs (warm restarts may add cycles)."""
    options = dict(settings["scheduler"])
    return create_scheduler_v2(optimizer, sched=options.pop("name"), num_epochs=settings["epochs"], **options)


def check_optimization(settings: dict) -> None:
    """Build the block's optimizer and schedule on a dummy parameter, so that an unknown name or
    option fails at once (timm raises) instead of inside a train job."""
    create_schedule(create_optimizer(torch.nn.Linear(1, 1), settings), settings)
