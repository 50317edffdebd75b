"""timm backbones by name, with pretrained weights from timm's hub, a local file, or none, as
classifiers ending in a head (facemask.model.heads); their checkpoints."""

from collections.abc import Sequence
from pathlib import Path

import timm
import torch
from timm.data import resolve_model_data_config

from facemask.config.defaults import schema_default
from facemask.model.heads import ClassesHead, head_named, head_of_checkpoint
from facemask.utils.errors import PipelineError, WeightsError
from facemask.utils.files import atomic_output

#: what load_checkpoint needs of a checkpoint
CHECKPOINT_KEYS = ("state_dict", "arch", "head", "model_kwargs", "data_config")


def create_classifier(
    arch: str,
    pretrained: bool | str = False,
    head: ClassesHead | str = schema_default("models.*.head"),
    model_kwargs: dict | None = None,
) -> torch.nn.Module:
    """The timm model `arch` as the backbone of a fresh `head` (a heads.ClassesHead, or a plain
    head's name: 'single' for one 18-way output, 'multi' for three task outputs). `pretrained` is
    False (random init), True (timm's hub; needs the network or a filled cache) or the path of a
    local weights file (.pth/.pt/.bin or .safetensors, a plain state dict or one under 'state_dict')."""
    head = head_named(head) if isinstance(head, str) else head
    return head.classifier(create_backbone(arch, pretrained, head.outputs, model_kwargs))


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


def model_data_config(model: torch.nn.Module, image_size: Sequence[int]) -> dict:
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
    head = head_of_checkpoint(checkpoint)
    model = create_classifier(checkpoint["arch"], False, head, checkpoint["model_kwargs"])
    try:
        model.load_state_dict(checkpoint.pop("state_dict"))
    except RuntimeError as error:
        raise PipelineError(
            f"{path}: its weights do not fit its model {checkpoint['arch']} ({error})"
        ) from error
    return head.cut_at(model, age_cuts).to(device).eval(), checkpoint
