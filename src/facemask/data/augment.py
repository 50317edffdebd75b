"""Batch transforms on the model's device: uint8 photos (batch x height x width x 3, as sliced from
the prepared-image cache) in, normalised float images (batch x 3 x height x width) out.

Training: timm's default recipe per photo (random resized crop by area `scale` and aspect
`ratio`, horizontal flip, colour jitter of brightness, contrast and saturation), done for the
whole batch at once with one `grid_sample`; evaluation: a plain resize. Random draws come from
torch's CPU generator, so a seeded run is repeatable and a resumed run continues it exactly.
"""

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from facemask.config.blocks import Augmentation
from facemask.config.defaults import schema_default

GRAY_WEIGHTS = (0.299, 0.587, 0.114)


def to_unit_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> float (B, 3, H, W) in [0, 1] (a channels-last view of the same layout)."""
    return images.permute(0, 3, 1, 2).float().div_(255)


class BatchTransform(torch.nn.Module):
    """Resize to the model's input size and normalise by the model's mean and std."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        input_size: Sequence[int],
        mean: Sequence[float],
        std: Sequence[float],
        interpolation: str = "bilinear",
    ):
        super().__init__()
        self.size = (int(input_size[-2]), int(input_size[-1]))
        self.mode = "bicubic" if interpolation == "bicubic" else "bilinear"
        self.register_buffer(
            "mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised, channels-last in memory on a GPU (faster convolutions under autocast),
        plain NCHW on the CPU (where channels-last convolutions are slower)."""
        layout = torch.channels_last if images.is_cuda else torch.contiguous_format
        return ((images.clamp(0, 1) - self.mean) / self.std).contiguous(memory_format=layout)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        images = to_unit_float(images)
        if tuple(images.shape[-2:]) != self.size:
            images = F.interpolate(
                images, size=self.size, mode=self.mode, antialias=True, align_corners=False
            )
        return self.normalise(images)


class BatchAugment(BatchTransform):
    """The training transform: per photo a random resized crop (`scale`: share of the area,
    `ratio`: width / height range), a flip with probability `hflip`, and brightness, contrast and
    saturation each scaled by a factor in [1 - color_jitter, 1 + color_jitter]; then normalise."""

    gray_weights: torch.Tensor

    def __init__(
        self,
        input_size,
        mean,
        std,
        interpolation="bilinear",
        scale=(0.8, 1.0),
        ratio=(0.75, 4 / 3),
        hflip=schema_default("models.*.augment.hflip"),
        color_jitter=schema_default("models.*.augment.color_jitter"),
    ):
        super().__init__(input_size, mean, std, interpolation)
        self.scale, self.log_ratio = tuple(scale), (math.log(ratio[0]), math.log(ratio[1]))
        self.hflip, self.color_jitter = float(hflip), float(color_jitter)
        self.register_buffer("gray_weights", torch.tensor(GRAY_WEIGHTS).view(1, 3, 1, 1), persistent=False)

    def crop_theta(self, batch: int, height: int, width: int) -> torch.Tensor:
        """Affine matrices (batch x 2 x 3) of one random crop (and flip) per photo, drawn on the
        CPU (small; the grid itself is built on the images' device)."""
        area = torch.empty(batch).uniform_(*self.scale)
        aspect = (
            torch.empty(batch).uniform_(*self.log_ratio).exp() * height / width
        )  # in the photo's own units
        crop_w, crop_h = (area * aspect).sqrt().clamp(max=1.0), (area / aspect).sqrt().clamp(max=1.0)
        centre_x = (torch.rand(batch) * 2 - 1) * (1 - crop_w)
        centre_y = (torch.rand(batch) * 2 - 1) * (1 - crop_h)
        flip = torch.where(torch.rand(batch) < self.hflip, -1.0, 1.0)
        theta = torch.zeros(batch, 2, 3)
        theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = (
            crop_w * flip,
            centre_x,
            crop_h,
            centre_y,
        )
        return theta

    def jitter(self, images: torch.Tensor) -> torch.Tensor:
        """Brightness, contrast, then saturation, each by its own random factor per photo."""
        low, high = max(0.0, 1 - self.color_jitter), 1 + self.color_jitter
        factors = (
            torch.empty(3, len(images), 1, 1, 1).uniform_(low, high).to(images.device, non_blocking=True)
        )
        weights = self.gray_weights
        images = (images * factors[0]).clamp(0, 1)
        gray_mean = (images * weights).sum(1, keepdim=True).mean((2, 3), keepdim=True)
        images = ((images - gray_mean) * factors[1] + gray_mean).clamp(0, 1)
        gray = (images * weights).sum(1, keepdim=True)
        return (images - gray) * factors[2] + gray

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        images = to_unit_float(images)
        theta = self.crop_theta(len(images), *images.shape[-2:]).to(images.device, non_blocking=True)
        grid = F.affine_grid(theta, [len(images), 3, *self.size], align_corners=False)
        images = F.grid_sample(images, grid, mode=self.mode, padding_mode="border", align_corners=False)
        if self.color_jitter > 0:
            images = self.jitter(images)
        return self.normalise(images)


def batch_transform(data_config: dict, augment: Augmentation | None = None) -> BatchTransform:
    """The training transform of a model block's `augment` settings, or the evaluation transform."""
    common = {
        "input_size": data_config["input_size"],
        "mean": data_config["mean"],
        "std": data_config["std"],
        "interpolation": data_config["interpolation"],
    }
    if augment is None:
        return BatchTransform(**common)
    return BatchAugment(
        **common,
        scale=augment.scale,
        ratio=augment.ratio,
        hflip=augment.hflip,
        color_jitter=augment.color_jitter,
    )
