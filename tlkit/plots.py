"""The figures the lessons show: samples, training curves, confusion matrices, filters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np

from tlkit.errors import check_choice, invalid
from tlkit.train import History

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def sample_grid(
    images: np.ndarray, labels: np.ndarray, class_names: Sequence[str], n: int = 16, title: str | None = None
):
    """A grid of `n` images with their class names."""
    n = min(n, len(images))
    cols = min(8, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.8 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, label in zip(axes.flat, images[:n], labels[:n]):
        ax.imshow(image.astype("uint8"))
        ax.set_title(str(class_names[int(label)])[:14], fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def training_curves(histories: Mapping[str, History] | History, metric: str = "accuracy", title: str | None = None):
    """Train (dashed) and validation (solid) `metric` per epoch, one colour per run.

    A vertical line marks where fine-tuning began in a two-phase run.
    """
    if isinstance(histories, History):
        histories = {"": histories}
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (name, history) in enumerate(histories.items()):
        color = f"C{i}"
        epochs = np.arange(1, history.epochs + 1)
        if metric in history.history:
            ax.plot(epochs, history.history[metric], "--", color=color, alpha=0.6, label=f"{name} train".strip())
        if f"val_{metric}" in history.history:
            ax.plot(epochs, history.history[f"val_{metric}"], "-o", color=color, ms=3, label=f"{name} val".strip())
        if history.fine_tune_at:
            ax.axvline(history.fine_tune_at + 0.5, color=color, ls=":", lw=1.5)
            # y in axes coordinates: the label stays at the bottom when later runs widen the y range
            ax.text(
                history.fine_tune_at + 0.6,
                0.01,
                " fine-tune",
                color=color,
                va="bottom",
                fontsize=8,
                transform=ax.get_xaxis_transform(),
            )
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def confusion_matrix(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    class_names: Sequence[str],
    title: str | None = None,
    normalize: str | None = None,
) -> Figure:
    """A confusion matrix, drawn by scikit-learn's `ConfusionMatrixDisplay`.

    Rows are the true classes, columns the predicted ones. Every class of `class_names` has its row
    and its column, also a class that neither array holds.

    Args:
        y_true: `(n,)` true class indices in `[0, len(class_names))`.
        y_pred: `(n,)` predicted class indices, e.g. `probabilities.argmax(-1)`.
        class_names: the name of each class index (cut to 12 characters on the axes).
        title: the title; by default the accuracy, e.g. `"accuracy 0.873"`.
        normalize: `None` for counts, or as in scikit-learn `"true"` (each row sums to 1: the recall
            of each class), `"pred"` (each column: the precision) or `"all"`.

    Returns:
        The matplotlib `Figure`. The matrix it shows is `figure.axes[0].images[0].get_array()`,
        `sklearn.metrics.confusion_matrix(y_true, y_pred, labels=range(len(class_names)))`.

    Raises:
        ValueError: for labels that are not 1-D integer class indices of `class_names`, or arrays
            of different lengths.

    Example:

    ```python
    predictions = classifier.predict(data.test.images, verbose=0).argmax(-1)
    tlkit.plots.confusion_matrix(data.test.labels, predictions, data.class_names)
    ```
    """
    from sklearn.metrics import ConfusionMatrixDisplay

    k = len(class_names)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    for name, labels in (("y_true", y_true), ("y_pred", y_pred)):
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or labels.size == 0:
            received = f"an array of shape {labels.shape} and dtype {labels.dtype}"
        elif len(labels) != len(y_true):
            received = f"{len(labels)} labels for the {len(y_true)} of `y_true`"
        elif labels.min() < 0 or labels.max() >= k:
            received = f"class indices from {labels.min()} to {labels.max()}"
        else:
            continue
        raise invalid(
            name, received, f"a non-empty 1-D integer array of class indices 0-{k - 1} (one per name in "
            "`class_names`), as long as `y_true`", "For one-hot labels or probabilities pass `.argmax(-1)`.",
        )  # fmt: skip
    if normalize is not None:
        check_choice("normalize", normalize, ["true", "pred", "all"])
    fig, ax = plt.subplots(figsize=(0.5 * k + 2.5, 0.5 * k + 2))
    ConfusionMatrixDisplay.from_predictions(
        y_true,
        y_pred,
        labels=np.arange(k),
        normalize=normalize,
        display_labels=[str(c)[:12] for c in class_names],
        cmap="Blues",
        ax=ax,
        colorbar=False,
        values_format=".2f" if normalize else "d",
        text_kw={"fontsize": 7},
    )
    plt.setp(ax.get_xticklabels(), rotation=60, ha="right", fontsize=8)
    plt.setp(ax.get_yticklabels(), fontsize=8)
    ax.set_title(title or f"accuracy {np.mean(y_true == y_pred):.3f}")
    fig.tight_layout()
    return fig


def worst_errors(images, y_true, probabilities, class_names, n: int = 8, heatmaps=None):
    """The `n` wrong predictions made with the highest confidence, each image with its true and predicted class.

    Args:
        images: `(N, height, width, 3)` 0-255 images.
        y_true: `(N,)` true class indices.
        probabilities: `(N, classes)` predicted probabilities.
        class_names: the name of each class index.
        n: how many errors to show (fewer if there are fewer).
        heatmaps: optional `(N, h, w)` maps in [0, 1] (e.g. `tlkit.gradcam.gradcam`), drawn over each image
            (upsampled to its size): where the network looked for the class it predicted.

    Returns:
        The matplotlib `Figure`, its titles the true class, the predicted one and its probability.

    Example:

    ```python
    probabilities = model.predict(splits.test.images, verbose=0)
    tlkit.plots.worst_errors(splits.test.images, splits.test.labels, probabilities, splits.class_names)
    ```
    """
    y_true, probabilities = np.asarray(y_true), np.asarray(probabilities)
    if heatmaps is not None and len(heatmaps) != len(y_true):
        raise invalid("heatmaps", f"{len(heatmaps)} maps for {len(y_true)} images", "one map per image")
    y_pred = probabilities.argmax(-1)
    wrong = np.flatnonzero(y_pred != y_true)
    wrong = wrong[np.argsort(-probabilities[wrong, y_pred[wrong]])][:n]
    fig, axes = plt.subplots(1, max(1, len(wrong)), figsize=(2 * max(1, len(wrong)), 2.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong):
        ax.imshow(images[i].astype("uint8"))
        if heatmaps is not None:
            height, width = images[i].shape[:2]
            ax.imshow(heatmaps[i], cmap="jet", alpha=0.4, extent=(0, width, height, 0), interpolation="bilinear")
        ax.set_title(
            f"true {str(class_names[y_true[i]])[:10]}\npred {str(class_names[y_pred[i]])[:10]} "
            f"{probabilities[i, y_pred[i]]:.2f}",
            fontsize=7,
        )
    fig.tight_layout()
    return fig


def filters(kernel: np.ndarray, n: int = 32, title: str | None = None):
    """First-layer convolution filters `(h, w, 3, out)` shown as small RGB images."""
    n = min(n, kernel.shape[-1])
    cols = min(8, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9, rows * 0.9), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, ax in enumerate(axes.flat[:n]):
        f = kernel[..., i]
        f = (f - f.min()) / (np.ptp(f) + 1e-8)
        ax.imshow(f if f.shape[-1] == 3 else f[..., 0], interpolation="nearest")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def feature_maps(maps: Mapping[str, np.ndarray], n: int = 8):
    """The first `n` channels of one image's feature map at each named layer, one row per layer."""
    fig, axes = plt.subplots(len(maps), n, figsize=(n * 1.2, len(maps) * 1.4), squeeze=False)
    for row, (name, fmap) in zip(axes, maps.items()):
        strongest = np.argsort(-fmap.mean(axis=(0, 1)))[:n]  # the most active channels
        for ax, c in zip(row, strongest):
            ax.imshow(fmap[..., c], cmap="viridis")
            ax.axis("off")
        row[0].set_title(f"{name} {fmap.shape[0]}x{fmap.shape[1]}x{fmap.shape[2]}", fontsize=8, loc="left")
    fig.tight_layout()
    return fig


def accuracy_by_depth(results: Mapping[str, Sequence[float]], layer_names: Sequence[str], title: str | None = None):
    """Accuracy of a head at each cut point, one line per dataset."""
    fig, ax = plt.subplots(figsize=(8, 4))
    for name, values in results.items():
        ax.plot(range(len(values)), values, "-o", label=name)
    ax.set_xticks(range(len(layer_names)), layer_names, rotation=45, ha="right", fontsize=8)
    ax.set_xlabel("cut after layer (shallow -> deep)")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def projection(
    points: Mapping[str, np.ndarray], labels: np.ndarray, class_names: Sequence[str], title: str | None = None
):
    """2-D points (e.g. a PCA of features), one panel per entry of `points`, coloured by class."""
    fig, axes = plt.subplots(1, len(points), figsize=(4.2 * len(points) + 1.6, 4), squeeze=False)
    labels = np.asarray(labels)
    cmap = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20")
    for ax, (name, xy) in zip(axes.flat, points.items()):
        for c, class_name in enumerate(class_names):
            ax.scatter(*xy[labels == c].T, s=12, color=cmap(c % cmap.N), label=str(class_name)[:14])
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    axes.flat[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=1.5)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def retrieval(
    query_images: np.ndarray,
    gallery_images: np.ndarray,
    neighbours: np.ndarray,
    query_labels: np.ndarray,
    gallery_labels: np.ndarray,
    class_names: Sequence[str],
    title: str | None = None,
):
    """Each query image (left) and its nearest gallery images; green titles share the query's class."""
    rows, k = neighbours.shape
    fig, axes = plt.subplots(rows, k + 1, figsize=(1.5 * (k + 1), 1.7 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for row, q in enumerate(range(rows)):
        axes[row, 0].imshow(query_images[q].astype("uint8"))
        axes[row, 0].set_title(f"query\n{str(class_names[query_labels[q]])[:12]}", fontsize=7, fontweight="bold")
        for col, g in enumerate(neighbours[q], start=1):
            same = gallery_labels[g] == query_labels[q]
            axes[row, col].imshow(gallery_images[g].astype("uint8"))
            axes[row, col].set_title(
                str(class_names[gallery_labels[g]])[:12], fontsize=7, color="green" if same else "red"
            )
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def accuracy_bars(results: Mapping[str, float], chance: float | None = None, title: str | None = None):
    """One horizontal bar per named run, its accuracy written beside it; a dotted line at chance."""
    names = list(results)
    values = [results[n] for n in names]
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(names) + 1.2))
    bars = ax.barh(range(len(names)), values, color=[f"C{i}" for i in range(len(names))])
    ax.set_yticks(range(len(names)), names, fontsize=9)
    ax.invert_yaxis()
    for bar, value in zip(bars, values):
        ax.text(bar.get_width() + 0.01, bar.get_y() + bar.get_height() / 2, f"{value:.3f}", va="center", fontsize=9)
    if chance is not None:
        ax.axvline(chance, color="gray", ls=":", lw=1.5)
        ax.text(chance, len(names) - 0.45, " chance", color="gray", fontsize=8)
    ax.set_xlim(0, 1.1)
    ax.set_xlabel("test accuracy")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def accuracy_by_size(panels: Mapping[str, object], title: str | None = None):
    """Learning curves side by side: test accuracy against training images per class (log scale).

    `panels` maps a dataset name to `tlkit.curves.Curves` (`sizes`, `accuracy` per strategy, `chance`).
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4), squeeze=False, sharey=True)
    for ax, (name, curves) in zip(axes.flat, panels.items()):
        for i, (strategy, values) in enumerate(curves.accuracy.items()):
            ax.plot(curves.sizes, values, "-o", color=f"C{i}", ms=4, label=strategy.replace("_", " "))
        ax.axhline(curves.chance, color="gray", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_xticks(curves.sizes, [str(s) for s in curves.sizes])
        ax.minorticks_off()
        ax.set_xlabel("training images per class")
        ax.set_title(name)
        ax.grid(alpha=0.3)
    axes.flat[0].set_ylabel("test accuracy")
    axes.flat[0].set_ylim(0, 1.02)
    axes.flat[-1].legend(fontsize=8, loc="lower right")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
