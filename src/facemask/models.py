"""timm backbones by name, with pretrained weights from timm's hub, a local file, or none."""

from pathlib import Path

import numpy as np
import timm
import torch
from timm.data import resolve_model_data_config

from facemask.errors import PipelineError, WeightsError
from facemask.files import atomic_output
from facemask.labels import (
    BAND_OF_CLASS,
    MAX_AGE,
    NUM_CLASSES,
    NUM_PAIRS,
    PAIR_OF_CLASS,
    TASK_OF_CLASS,
    TASK_SIZES,
    band_of_year,
    check_age_bins,
)

#: where each task's logits start among a multi head's outputs (mask 0, gender 3, age 5)
TASK_OFFSETS = dict(zip(TASK_SIZES, [0, *np.cumsum(list(TASK_SIZES.values()))[:-1].tolist()], strict=True))
MASKS, GENDERS, AGE_BANDS = TASK_SIZES.values()


def pair_outputs(head: str) -> int:
    """A years head's mask and gender outputs: one per (mask, gender) pair ('single', 6), or per task
    ('multi', 3 + 2)."""
    return NUM_PAIRS if head == "single" else MASKS + GENDERS


#: the model outputs a block's `head` may name (see create_classifier)
HEADS = ("single", "multi")
#: what load_checkpoint needs of a checkpoint
CHECKPOINT_KEYS = ("state_dict", "arch", "head", "model_kwargs", "data_config")


class ThreeHeadClassifier(torch.nn.Module):
    """A backbone with three heads (mask 3, gender 2, age 3 logits) whose output is the 18-class
    log-probability log p(mask) + log p(gender) + log p(age): the product of the three softmaxes,
    so training, TTA and the soft vote treat it like a single 18-way head."""

    task_index: torch.Tensor

    def __init__(self, backbone: torch.nn.Module):
        super().__init__()
        self.backbone = backbone
        task_index = np.stack([TASK_OFFSETS[task] + TASK_OF_CLASS[task] for task in TASK_SIZES])
        self.register_buffer("task_index", torch.from_numpy(task_index), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.backbone(images).split(list(TASK_SIZES.values()), 1)
        log_probs = torch.cat([task_logits.log_softmax(1) for task_logits in logits], 1)
        return log_probs[:, self.task_index].sum(1)


class AgeYearsClassifier(torch.nn.Module):
    """A backbone whose outputs are mask and gender logits (6 for the pairs, `head` 'single'; or
    3 + 2, 'multi') and MAX_AGE + 1 logits over the age in years. Its output is the 18-class
    log-probability log p(mask, gender) + log P(age band), P(band) the sum of the years'
    probabilities within the band at `age_cuts` (a buffer: saved, and reset by `set_age_cuts`)."""

    age_cuts: torch.Tensor
    log_band_of_year: torch.Tensor
    task_of_pair: torch.Tensor
    pair_of_class: torch.Tensor
    band_of_class: torch.Tensor

    def __init__(self, backbone: torch.nn.Module, head: str, age_cuts):
        super().__init__()
        self.backbone, self.pair_outputs = backbone, pair_outputs(head)
        pairs = torch.arange(NUM_PAIRS)  # pair = 2 * mask + gender
        self.register_buffer(
            "task_of_pair", torch.stack([pairs // GENDERS, MASKS + pairs % GENDERS]), persistent=False
        )
        self.register_buffer("pair_of_class", torch.from_numpy(PAIR_OF_CLASS), persistent=False)
        self.register_buffer("band_of_class", torch.from_numpy(BAND_OF_CLASS), persistent=False)
        self.register_buffer("age_cuts", torch.tensor(check_age_bins(age_cuts), dtype=torch.float32))
        self.register_buffer("log_band_of_year", torch.zeros(MAX_AGE + 1, AGE_BANDS), persistent=False)
        self.set_age_cuts(age_cuts)
        # a loaded state dict brings its age cuts: derive the years' bands from them
        self.register_load_state_dict_post_hook(
            lambda module, _: module.set_age_cuts(module.age_cuts.tolist())
        )

    def set_age_cuts(self, age_cuts) -> None:
        """Cut the bands at `age_cuts` (labels.band_of_year)."""
        self.age_cuts.copy_(torch.tensor(check_age_bins(age_cuts), dtype=torch.float32))
        self.log_band_of_year.copy_(torch.from_numpy(band_of_year(age_cuts)).log())

    def with_years(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The 18-class and the years' log-probabilities."""
        logits = self.backbone(images).float()
        if self.pair_outputs == NUM_PAIRS:
            pair_log_probs = logits[:, : self.pair_outputs].log_softmax(1)
        else:
            task_log_probs = torch.cat(
                [logits[:, :MASKS].log_softmax(1), logits[:, MASKS : self.pair_outputs].log_softmax(1)], 1
            )
            pair_log_probs = task_log_probs[:, self.task_of_pair].sum(1)
        year_log_probs = logits[:, self.pair_outputs :].log_softmax(1)
        band_log_probs = (year_log_probs.unsqueeze(2) + self.log_band_of_year).logsumexp(1)
        class_log_probs = pair_log_probs[:, self.pair_of_class] + band_log_probs[:, self.band_of_class]
        return class_log_probs, year_log_probs

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.with_years(images)[0]


class ClassAndYears(torch.nn.Module):
    """An AgeYearsClassifier whose output is its 18-class and years' log-probabilities side by
    side (for training and validation; the model itself keeps the 18-class output)."""

    def __init__(self, model: AgeYearsClassifier):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.cat(self.model.with_years(images), 1)


def create_classifier(
    arch: str,
    pretrained: bool | str = False,
    head: str = "single",
    model_kwargs: dict | None = None,
    age_cuts=None,
) -> torch.nn.Module:
    """A timm model with a fresh head: one 18-way output (`head` 'single') or three task outputs
    (`head` 'multi', see ThreeHeadClassifier); with `age_cuts`, the age as years instead (see
    AgeYearsClassifier). `pretrained` is False (random init), True (timm's hub; needs the network
    or a filled cache) or the path of a local weights file (.pth/.pt/.bin or .safetensors, a plain
    state dict or one under 'state_dict')."""
    if head not in HEADS:
        raise PipelineError(f"head must be one of {HEADS}, not {head!r}")
    if age_cuts is not None:
        return AgeYearsClassifier(
            create_backbone(arch, pretrained, pair_outputs(head) + MAX_AGE + 1, model_kwargs), head, age_cuts
        )
    backbone = create_backbone(
        arch, pretrained, NUM_CLASSES if head == "single" else sum(TASK_SIZES.values()), model_kwargs
    )
    return backbone if head == "single" else ThreeHeadClassifier(backbone)


def create_backbone(
    arch: str, pretrained: bool | str, num_classes: int, model_kwargs: dict | None
) -> torch.nn.Module:
    """The timm model `arch` with `num_classes` outputs and weights as `create_classifier` says."""
    if not timm.is_model(arch):
        raise PipelineError(f"model {arch!r} is not in timm's registry (see timm.list_models())")
    kwargs = {"num_classes": num_classes, **(model_kwargs or {})}
    if pretrained is False:
        return timm.create_model(arch, pretrained=False, **kwargs)
    if pretrained is True:
        try:
            return timm.create_model(arch, pretrained=True, **kwargs)
        except Exception as error:  # the hub raises many kinds: offline, missing, forbidden
            raise WeightsError(
                f"could not fetch pretrained weights for {arch!r} from timm's hub ({type(error).__name__}: "
                f"{error}). Offline? Set the model's 'pretrained' to a local weights file, or to false."
            ) from error
    weights = Path(pretrained)
    if not weights.is_file():
        raise WeightsError(f"pretrained weights file {weights} for {arch!r} not found")
    try:
        return timm.create_model(
            arch, pretrained=True, pretrained_cfg_overlay={"file": str(weights)}, **kwargs
        )
    except (RuntimeError, KeyError, ValueError, OSError) as error:
        raise WeightsError(f"{weights}: not loadable as weights for {arch!r} ({error})") from error


def model_data_config(model: torch.nn.Module, image_size: tuple[int, int]) -> dict:
    """The model's pretrained preprocessing (mean, std, interpolation) at `image_size` (h, w)."""
    config = resolve_model_data_config(getattr(model, "backbone", model))
    return {
        "input_size": (3, int(image_size[0]), int(image_size[1])),
        "interpolation": config["interpolation"],
        "mean": tuple(float(m) for m in config["mean"]),
        "std": tuple(float(s) for s in config["std"]),
    }


def save_torch(data: dict, path: str | Path) -> None:
    """torch.save `data` atomically, through a Python file: a full disk then raises ENOSPC (a clear
    error, see atomic_output), where torch's own file writer says only "unexpected pos"."""
    with atomic_output(path) as partial, open(partial, "wb") as file:
        torch.save(data, file)


def save_checkpoint(path: str | Path, model: torch.nn.Module, meta: dict) -> None:
    """Write the model's weights and plain `meta` (arch, model_kwargs, data_config, ...) atomically."""
    save_torch({"state_dict": model.state_dict(), **meta}, path)


def read_checkpoint(path: str | Path) -> dict:
    """What `save_checkpoint` wrote: the state dict and the meta, on the CPU; a file that is not
    such a checkpoint (truncated, another program's, weights alone) is a PipelineError naming it."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (
        Exception
    ) as error:  # torch.load raises many kinds (RuntimeError, EOFError, KeyError, UnpicklingError)
        raise PipelineError(f"{path}: not a readable checkpoint ({type(error).__name__}: {error})") from error
    missing = (
        [key for key in CHECKPOINT_KEYS if key not in checkpoint]
        if isinstance(checkpoint, dict)
        else CHECKPOINT_KEYS
    )
    if missing:
        raise PipelineError(f"{path}: not a checkpoint written by a train job (no {', '.join(missing)})")
    return checkpoint


def checkpoint_meta(path: str | Path) -> dict:
    """A checkpoint's meta (arch, head, data_config, epoch, fold, ...), without its weights."""
    meta = read_checkpoint(path)
    meta.pop("state_dict")
    return meta


def load_checkpoint(
    path: str | Path, device: torch.device | str = "cpu", age_cuts=None
) -> tuple[torch.nn.Module, dict]:
    """The model saved by `save_checkpoint`, in eval mode on `device`, and its meta; a years
    head's bands cut at `age_cuts` when given (e.g. fitted on the out-of-fold predictions)."""
    checkpoint = read_checkpoint(path)
    model = create_classifier(
        checkpoint["arch"], False, checkpoint["head"], checkpoint["model_kwargs"], checkpoint.get("age_cuts")
    )
    try:
        model.load_state_dict(checkpoint.pop("state_dict"))
    except RuntimeError as error:
        raise PipelineError(
            f"{path}: its weights do not fit its model {checkpoint['arch']} ({error})"
        ) from error
    if age_cuts is not None:
        model.set_age_cuts(age_cuts)  # type: ignore[operator]  # a years head's (AgeYearsClassifier)
    return model.to(device).eval(), checkpoint
