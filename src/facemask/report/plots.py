"""Figures for the report: training curves, the confusion matrix, per-class F1, class counts."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import confusion_matrix, f1_score  # noqa: E402

from facemask.classes.labels import NUM_CLASSES, class_name  # noqa: E402
from facemask.utils.files import atomic_output  # noqa: E402

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


def plot_crops(
    cache: str | Path, crops: pd.DataFrame, path: str | Path, shown: int = 48, seed: int = 0
) -> None:
    """A contact sheet of what the models see: `shown` photos of the image cache `cache` (drawn with
    `seed`), and with a face crop every photo in which no face was found (centre-cropped), from
    the cache's crop table `crops` (facemask.data.cache.prepare_photos)."""
    pixels = np.load(cache, mmap_mode="r")
    drawn = np.sort(np.random.default_rng(seed).choice(len(pixels), min(shown, len(pixels)), replace=False))
    missed = np.flatnonzero(crops["face_found"].eq(False).to_numpy())
    sheets = [(f"{len(drawn)} of {len(pixels)} photos as cached", drawn)]
    if missed.size:
        title = f"the {missed.size} photos with no face found: where their folder's faces are, else centred"
        sheets.append((title, missed))
    images = [montage(pixels, rows) for _, rows in sheets]
    heights = [image.shape[0] / image.shape[1] for image in images]
    figure, axes = plt.subplots(
        len(sheets),
        1,
        figsize=(12, 12 * sum(heights) + 0.5 * len(sheets)),
        height_ratios=heights,
        squeeze=False,
    )
    for axis, (title, _), image in zip(axes[:, 0], sheets, images, strict=True):
        axis.imshow(image)
        axis.set_title(title)
        axis.axis("off")
    save_figure(figure, path)


def montage(pixels: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The photos `pixels[rows]` side by side with a 2-pixel white gap, at least 12 to a line and
    about twice as many lines as columns' worth of width for many photos."""
    height, width = pixels.shape[1:3]
    columns = max(12, int(np.ceil(np.sqrt(2 * len(rows)))))
    lines = -(-len(rows) // columns)
    sheet = np.full((lines * (height + 2), columns * (width + 2), 3), 255, dtype=np.uint8)
    for place, row in enumerate(rows):
        top, left = (place // columns) * (height + 2), (place % columns) * (width + 2)
        sheet[top : top + height, left : left + width] = pixels[row]
    return sheet
