"""Every figure renders on small inputs (Agg backend, set in conftest) and shows the right numbers."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from tlkit import plots
from tlkit.train import History


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_sample_grid(random_images):
    fig = plots.sample_grid(random_images(5, 16), np.array([0, 1, 2, 0, 1]), ["cat", "dog", "bird"], n=16, title="t")
    assert isinstance(fig, Figure)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 5  # n is capped at the number of images
    assert [ax.get_title() for ax in shown] == ["cat", "dog", "bird", "cat", "dog"]


def test_learning_curves_marks_fine_tuning():
    two_phase = History({"accuracy": [0.5, 0.6]}) + History({"accuracy": [0.7], "val_accuracy": [0.65]})
    fig = plots.learning_curves({"run": two_phase, "plain": History({"accuracy": [0.4, 0.5, 0.55]})})
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    vertical = [line for line in ax.lines if len(set(line.get_xdata())) == 1]
    assert [line.get_xdata()[0] for line in vertical] == [2.5]  # between epoch 2 and 3, one run only
    assert isinstance(plots.learning_curves(two_phase, metric="accuracy"), Figure)


def test_confusion_matrix_counts():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 4, 50), rng.integers(0, 4, 50)
    fig = plots.confusion_matrix(y_true, y_pred, list("abcd"))
    assert isinstance(fig, Figure)
    counts = np.asarray(fig.axes[0].images[0].get_array())
    assert counts.shape == (4, 4) and counts.sum() == 50
    assert np.trace(counts) == int((y_true == y_pred).sum())
    assert counts[1, 2] == int(((y_true == 1) & (y_pred == 2)).sum())  # rows true, columns predicted
    assert fig.axes[0].get_title() == f"accuracy {np.mean(y_true == y_pred):.3f}"


def test_worst_errors_shows_the_most_confident_mistakes(random_images):
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.99, 0.01]])
    y_true = np.array([0, 0, 1, 1, 1])  # wrong: 1 (0.8), 2 (0.6), 4 (0.99)
    fig = plots.worst_errors(random_images(5, 8), y_true, probabilities, ["no", "yes"], n=2)
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert titles == ["true yes\npred no 0.99", "true no\npred yes 0.80"]
    assert isinstance(plots.worst_errors(random_images(2, 8), np.array([0, 1]), np.eye(2), ["no", "yes"]), Figure)


def test_filters_and_feature_maps(tiny_base, random_images):
    kernel = tiny_base.get_layer("conv1").kernel.numpy()  # (3, 3, 3, 8)
    fig = plots.filters(kernel, n=32)
    assert isinstance(fig, Figure) and sum(bool(ax.images) for ax in fig.axes) == 8
    maps = {"a": np.random.default_rng(0).random((8, 8, 16)), "b": np.random.default_rng(1).random((2, 2, 4))}
    fig = plots.feature_maps(maps, n=4)
    assert isinstance(fig, Figure) and sum(bool(ax.images) for ax in fig.axes) == 8


def test_accuracy_by_depth():
    fig = plots.accuracy_by_depth({"caltech": [0.3, 0.6, 0.9], "fashion": [0.5, 0.7, 0.6]}, ["l1", "l2", "l3"])
    assert isinstance(fig, Figure)
    assert [list(line.get_ydata()) for line in fig.axes[0].lines] == [[0.3, 0.6, 0.9], [0.5, 0.7, 0.6]]
