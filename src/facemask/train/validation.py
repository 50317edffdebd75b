"""Which weights an epoch keeps: the raw weights or their moving average (timm's ModelEmaV3):
fixed in advance (the average when there is one), or whichever scores the better validation
macro F1, classes decided as the submission decides them."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch

from facemask.classes.decision import decide_classes
from facemask.classes.labels import NUM_CLASSES
from facemask.classes.scores import task_scores
from facemask.model.inference import predict_logits
from facemask.train.optim import WeightAverage


@dataclass(frozen=True)
class ValidationFold:
    """The held-out fold as validation sees it: its loader, evaluation transform and labels, the
    device and precision, the module that validation runs around a classifier (its head's
    training_module: a years head's returns the years too), and the class shares the submission
    matches its classes to (None: plain argmax)."""

    loader: Iterable
    transform: Callable[[torch.Tensor], torch.Tensor]
    labels: np.ndarray
    device: torch.device
    precision: str = "fp32"
    module_of: Callable[[torch.nn.Module], torch.nn.Module] = lambda classifier: classifier
    shares: np.ndarray | None = None


@dataclass(frozen=True)
class Validation:
    """One set of weights ('raw' or 'ema') scored on the validation fold: its module, its outputs
    (the 18-class logits; a years head's years' log-probabilities beside them), loss, macro F1
    (classes decided as the submission decides them), accuracy, and each task's macro F1 by name
    (val_mask_f1, val_gender_f1, val_age_f1)."""

    weights: str
    module: torch.nn.Module
    outputs: np.ndarray
    val_loss: float
    val_f1: float
    val_accuracy: float
    task_f1: dict[str, float]


def score_weights(name: str, module: torch.nn.Module, fold: ValidationFold) -> Validation:
    """`module`'s scores on the validation fold (see Validation)."""
    outputs = predict_logits(fold.module_of(module), fold.loader, fold.transform, fold.device, fold.precision)
    logits = torch.from_numpy(outputs[:, :NUM_CLASSES])
    predicted = decide_classes(logits.softmax(1).double().numpy(), fold.shares)
    scores = task_scores(fold.labels, predicted)
    return Validation(
        weights=name,
        module=module,
        outputs=outputs,
        val_loss=float(torch.nn.functional.cross_entropy(logits, torch.tensor(fold.labels))),
        val_f1=scores["macro_f1"],
        val_accuracy=scores["accuracy"],
        task_f1={f"val_{task}_f1": scores[f"{task}_f1"] for task in ("mask", "gender", "age")},
    )


def validate(
    model: torch.nn.Module, ema: WeightAverage | None, fold: ValidationFold, by_f1: bool = False
) -> tuple[Validation, dict[str, float]]:
    """The raw weights of `model` and their average `ema` (when given) scored on the validation
    fold: the kept one, and each candidate's F1 by name (val_f1_raw, ...). Kept: the average when
    there is one, or with `by_f1` the better by macro F1 (raw on ties)."""
    candidates = {"raw": model, **({"ema": ema.ema.module} if ema else {})}
    scored = [score_weights(name, module, fold) for name, module in candidates.items()]
    kept = max(scored, key=lambda score: score.val_f1) if by_f1 else scored[-1]  # max: the first of equals
    return kept, {f"val_f1_{score.weights}": score.val_f1 for score in scored}
