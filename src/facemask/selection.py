"""Which weights an epoch keeps: the raw weights or their moving average (timm's ModelEmaV3),
whichever scores the better validation macro F1, classes decided as the submission decides them."""

import numpy as np
import torch
from timm.utils import ModelEmaV3

from facemask.ensemble import decide_classes
from facemask.inference import predict_logits
from facemask.labels import NUM_CLASSES
from facemask.models import ClassAndYears
from facemask.scores import macro_f1


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


def validate(
    model, ema: WeightAverage | None, loader, transform, device, labels: np.ndarray, years: bool, precision: str = "fp32",
    shares: np.ndarray | None = None,
) -> dict:
    """Validation scores (in `precision`) of the raw weights of `model` and of their average `ema` when given;
    returns the better by macro F1 (raw on ties): its name ('raw' or 'ema'), module, outputs (the
    model's; for a years head the years' log-probabilities too), loss, F1 and accuracy, and each
    candidate's F1. Classes are decided as the submission decides them: matched to the class
    `shares` when given (see ensemble.decide_classes), else the plain argmax."""
    scored = []
    for name, module in {"raw": model, **({"ema": ema.ema.module} if ema else {})}.items():
        outputs = predict_logits(ClassAndYears(module) if years else module, loader, transform, device, precision)
        logits = torch.from_numpy(outputs[:, :NUM_CLASSES])
        predicted = decide_classes(logits.softmax(1).double().numpy(), shares)
        scored.append({"weights": name, "module": module, "outputs": outputs, "val_f1": macro_f1(labels, predicted),
                       "val_loss": float(torch.nn.functional.cross_entropy(logits, torch.tensor(labels))),
                       "val_accuracy": float((predicted == labels).mean())})
    best = max(scored, key=lambda score: score["val_f1"])  # max keeps the first of equals
    return best | {"candidates": {f"val_f1_{score['weights']}": score["val_f1"] for score in scored}}
