"""Training losses on log-probabilities and soft targets (one-hot, smoothed or mixed by Mixup /
CutMix), combined as weighted sums, on the 18 classes or per task (mask, gender, age).

Every loss takes `log_probs` (B, C) and `targets` (B, C) whose rows sum to 1.
"""

from collections.abc import Callable, Mapping, Sequence

import torch
from timm.loss import compute_class_weights

from facemask.classes.labels import MAX_AGE, NUM_CLASSES, TASK_SIZES
from facemask.classes.labels import TASK_OF_CLASS as TASK_CODES
from facemask.config.defaults import schema_default

#: which task class each of the 18 classes belongs to, by task (labels.TASK_OF_CLASS as tensors)
TASK_OF_CLASS = {task: torch.from_numpy(codes) for task, codes in TASK_CODES.items()}


def cross_entropy(
    log_probs, targets, label_smoothing: float = 0.0, class_weights: torch.Tensor | None = None
):
    """Cross-entropy with optional label smoothing and per-class weights (a weighted mean over the batch)."""
    targets = targets * (1 - label_smoothing) + label_smoothing / targets.shape[1]
    weights = (
        torch.ones(targets.shape[1], device=targets.device)
        if class_weights is None
        else class_weights.to(targets.device, non_blocking=True)
    )  # no wait for the GPU
    per_photo = -(targets * weights * log_probs).sum(1)
    return per_photo.sum() / (targets * weights).sum()


def focal(
    log_probs,
    targets,
    gamma: float = 2.0,
    label_smoothing: float = 0.0,
    class_weights: torch.Tensor | None = None,
):
    """Focal loss: cross-entropy down-weighting confident classes by (1 - p) ** gamma; gamma 0 is
    cross-entropy."""
    focusing = (1 - log_probs.exp()).clamp_min(0) ** gamma
    return cross_entropy(focusing * log_probs, targets, label_smoothing, class_weights)


def soft_f1(log_probs, targets, epsilon: float = 1e-7, **_):
    """1 - the macro F1 of the batch computed on probabilities (differentiable), over the classes
    the targets hold."""
    probs = log_probs.exp()
    true_positive = (probs * targets).sum(0)
    f1 = 2 * true_positive / (probs.sum(0) + targets.sum(0) + epsilon)
    present = (targets.sum(0) > 0).float()  # a weight, not a mask: a masked select would wait for the GPU
    return 1 - (f1 * present).sum() / present.sum()


LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "cross_entropy": cross_entropy,
    "focal": focal,
    "f1": soft_f1,
}


def task_marginals(
    log_probs_18: torch.Tensor, targets_18: torch.Tensor, task: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """The log-probabilities and targets of one task, summed over the 18 classes that share its
    class (by a membership matrix, without indexing that would wait for the GPU)."""
    index = TASK_OF_CLASS[task].to(log_probs_18.device, non_blocking=True)
    member = torch.nn.functional.one_hot(index, TASK_SIZES[task]).to(log_probs_18.dtype)  # 18 x task classes
    log_probs = (log_probs_18.unsqueeze(2) + member.log()).logsumexp(1)
    return log_probs, targets_18 @ member.to(targets_18.dtype)


class CompositeLoss(torch.nn.Module):
    """A weighted sum of loss terms, on the 18 classes (`tasks` None) or summed over tasks, each
    task with its own terms. A term is a dict: name (a key of LOSSES), weight, and the loss's
    options (label_smoothing, gamma, class_weights: true for weights from `class_counts`)."""

    def __init__(
        self, terms: Mapping[str | None, Sequence[Mapping]], class_counts: Mapping[str | None, torch.Tensor]
    ):
        super().__init__()
        self.terms: dict[str | None, list[tuple[Callable, float, dict]]] = {}
        for task, task_terms in terms.items():
            built = []
            for term in task_terms:
                options = {k: v for k, v in term.items() if k not in ("name", "weight", "class_weights")}
                if term["name"] not in LOSSES:
                    raise ValueError(f"unknown loss {term['name']!r}; choose one of {sorted(LOSSES)}")
                if term.get("class_weights"):
                    counts = class_counts[task]
                    options["class_weights"] = compute_class_weights(
                        counts, int(counts.sum()), method="inv_freq"
                    )[1]
                built.append(
                    (
                        LOSSES[term["name"]],
                        float(term.get("weight", schema_default("models.*.loss.[].weight"))),
                        options,
                    )
                )
            self.terms[task] = built

    def forward(self, log_probs_18: torch.Tensor, targets_18: torch.Tensor) -> torch.Tensor:
        total = torch.zeros((), device=log_probs_18.device)
        for task, terms in self.terms.items():
            log_probs, targets = (
                (log_probs_18, targets_18) if task is None else task_marginals(log_probs_18, targets_18, task)
            )
            for loss, weight, options in terms:
                total = total + weight * loss(log_probs, targets, **options)
        return total


def gaussian_years(sigma: float) -> torch.Tensor:
    """Row y: a Gaussian of `sigma` years around age y over the ages 0..MAX_AGE, summing to 1."""
    years = torch.arange(MAX_AGE + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * ((years[:, None] - years[None]) / sigma) ** 2)
    return kernel / kernel.sum(1, keepdim=True)


class YearsLoss(torch.nn.Module):
    """The class loss plus `weight` x the cross-entropy of the age in years against a Gaussian of
    `sigma` years around the true age (label distribution learning). Takes the 18-class and years'
    log-probabilities side by side (see heads.ClassAndYears; a log_softmax over both is undone
    here) and joint targets over (year, class), index year * 18 + class: one-hot or mixed."""

    def __init__(self, class_loss: torch.nn.Module, sigma: float, weight: float):
        super().__init__()
        self.class_loss, self.weight, self.kernel = class_loss, weight, gaussian_years(sigma)

    def forward(self, log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        joint = targets.view(len(targets), MAX_AGE + 1, NUM_CLASSES)
        year_targets = joint.sum(2) @ self.kernel.to(targets.device, non_blocking=True)
        year_loss = -(year_targets * log_probs[:, NUM_CLASSES:].log_softmax(1)).sum(1).mean()
        return (
            self.class_loss(log_probs[:, :NUM_CLASSES].log_softmax(1), joint.sum(1)) + self.weight * year_loss
        )
