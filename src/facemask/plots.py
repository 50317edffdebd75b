"""Figures for the report: training curves, the confusion matrix, per-class F1, class counts."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import confusion_matrix, f1_score  # noqa: E402

from facemask.files import atomic_output  # noqa: E402
from facemask.labels import NUM_CLASSES, class_name  # noqa: E402

CLASS_LABELS = [f"{c} {class_name(c)}" for c in range(NUM_CLASSES)]


def save_figure(figure, path: str | Path) -> None:
    """Write `figure` as a PNG at `path`, atomically, and close it."""
    with atomic_output(path) as partial:
        figure.savefig(partial, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)


def plot_training_curves(histories: dict[int, pd.DataFrame], model: str, path: str | Path) -> None:
    """Training and validation loss, and validation macro F1, per epoch: one line per fold."""
    figure, (loss_axis, f1_axis) = plt.subplots(1, 2, figsize=(11, 4))
    for fold, history in sorted(histories.items()):
        (line,) = loss_axis.plot(history["epoch"], history["train_loss"], label=f"fold {fold} train")
        loss_axis.plot(
            history["epoch"], history["val_loss"], "--", color=line.get_color(), label=f"fold {fold} val"
        )
        f1_axis.plot(history["epoch"], history["val_f1"], color=line.get_color(), label=f"fold {fold}")
    loss_axis.set(title=f"{model}: loss", xlabel="epoch", ylabel="cross-entropy")
    f1_axis.set(title=f"{model}: validation macro F1", xlabel="epoch", ylabel="macro F1", ylim=(0, 1))
    loss_axis.legend(fontsize=7)
    f1_axis.legend(fontsize=7)
    save_figure(figure, path)


def plot_confusion_matrix(labels, predicted, path: str | Path, title: str) -> None:
    """The 18 x 18 confusion matrix, rows the true class, normalised per row, with counts."""
    counts = confusion_matrix(labels, predicted, labels=range(NUM_CLASSES))
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    figure, axis = plt.subplots(figsize=(11, 9.5))
    image = axis.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for (row, column), count in np.ndenumerate(counts):
        if count:
            axis.text(
                column,
                row,
                count,
                ha="center",
                va="center",
                fontsize=6,
                color="white" if rates[row, column] > 0.5 else "black",
            )
    axis.set_xticks(range(NUM_CLASSES), CLASS_LABELS, rotation=90, fontsize=7)
    axis.set_yticks(range(NUM_CLASSES), CLASS_LABELS, fontsize=7)
    axis.set(xlabel="predicted", ylabel="true", title=title)
    figure.colorbar(image, ax=axis, label="share of the true class")
    save_figure(figure, path)


def plot_class_f1(labels, predicted, path: str | Path, title: str) -> None:
    """F1 of each of the 18 classes as bars, with each class's number of photos."""
    scores = f1_score(labels, predicted, labels=range(NUM_CLASSES), average=None, zero_division=0)
    support = np.bincount(np.asarray(labels), minlength=NUM_CLASSES)
    figure, axis = plt.subplots(figsize=(11, 4.5))
    bars = axis.bar(range(NUM_CLASSES), scores, color="tab:blue")
    axis.bar_label(bars, labels=[f"n={n}" for n in support], fontsize=6)
    axis.set_xticks(range(NUM_CLASSES), CLASS_LABELS, rotation=90, fontsize=7)
    axis.set(ylabel="F1", ylim=(0, 1.1), title=title)
    save_figure(figure, path)


def plot_class_distribution(train_labels, eval_predicted, path: str | Path) -> None:
    """The share of each class among the training photos and among the eval predictions."""
    shares = pd.DataFrame(
        {
            "training photos": np.bincount(np.asarray(train_labels), minlength=NUM_CLASSES)
            / len(train_labels),
            "eval predictions": np.bincount(np.asarray(eval_predicted), minlength=NUM_CLASSES)
            / len(eval_predicted),
        },
        index=CLASS_LABELS,
    )
    figure, axis = plt.subplots(figsize=(11, 4.5))
    shares.plot.bar(ax=axis, width=0.8)
    axis.set(ylabel="share of photos", title="Class distribution: training labels vs eval predictions")
    axis.tick_params(axis="x", labelsize=7)
    save_figure(figure, path)
