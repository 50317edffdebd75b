"""Training losses by name, built from a model block's `loss` settings."""

import torch

LOSSES = {
    "cross_entropy": torch.nn.CrossEntropyLoss,
}


def create_loss(name: str = "cross_entropy", **options) -> torch.nn.Module:
    """The loss `name` (a key of LOSSES) with its options, e.g. label_smoothing=0.1."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}")
    return LOSSES[name](**options)
