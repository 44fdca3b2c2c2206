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


def test_training_curves_mark_fine_tuning():
    two_phase = History({"accuracy": [0.5, 0.6]}) + History({"accuracy": [0.7], "val_accuracy": [0.65]})
    fig = plots.training_curves({"run": two_phase, "plain": History({"accuracy": [0.4, 0.5, 0.55]})})
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    vertical = [line for line in ax.lines if len(set(line.get_xdata())) == 1]
    assert [line.get_xdata()[0] for line in vertical] == [2.5]  # between epoch 2 and 3, one run only
    assert isinstance(plots.training_curves(two_phase, metric="accuracy"), Figure)


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


def test_confusion_matrix_is_sklearns_with_every_class_named():
    from sklearn.metrics import confusion_matrix

    y_true, y_pred = np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 2])  # class 3 never occurs
    names = ["airplanes", "a_very_long_class_name", "c", "d"]
    fig = plots.confusion_matrix(y_true, y_pred, names, title="frozen base + head")
    ax = fig.axes[0]
    shown = np.asarray(ax.images[0].get_array())
    np.testing.assert_array_equal(shown, confusion_matrix(y_true, y_pred, labels=range(4)))
    assert shown.shape == (4, 4) and not shown[3].any()  # its row and column, though empty
    assert [t.get_text() for t in ax.get_xticklabels()] == ["airplanes", "a_very_long_", "c", "d"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["airplanes", "a_very_long_", "c", "d"]
    assert ax.get_title() == "frozen base + head"
    assert [t.get_text() for t in ax.texts][:4] == ["1", "1", "0", "0"]  # counts, row 0


def test_confusion_matrix_normalized_rows_are_recalls():
    y_true, y_pred = np.array([0, 0, 0, 1, 1]), np.array([0, 0, 1, 1, 1])
    fig = plots.confusion_matrix(y_true, y_pred, ["a", "b"], normalize="true")
    shown = np.asarray(fig.axes[0].images[0].get_array())
    np.testing.assert_allclose(shown, [[2 / 3, 1 / 3], [0, 1]])
    assert fig.axes[0].texts[0].get_text() == "0.67"
    assert fig.axes[0].get_title() == "accuracy 0.800"  # the accuracy, not a normalized number


@pytest.mark.parametrize(
    "y_pred, received",
    [
        (np.array([0, 1, 4]), "class indices from 0 to 4"),  # a class the names do not hold
        (np.array([0, -1, 1]), "class indices from -1 to 1"),  # would index from the end
        (np.eye(3)[[0, 1, 1]], r"shape \(3, 3\)"),  # one-hot
        (np.array([0.0, 1.0, 1.0]), "dtype float64"),
        (np.array([0, 1]), "2 labels for the 3 of `y_true`"),
        (np.zeros(0, int), r"shape \(0,\)"),
    ],
)
def test_confusion_matrix_refuses_labels_that_are_not_class_indices(y_pred, received):
    """scikit-learn would leave out labels that are not in `labels=`: the counts would silently fall short."""
    with pytest.raises(ValueError, match=rf"Invalid value for argument `y_pred`. Received: y_pred='[^']*{received}"):
        plots.confusion_matrix(np.array([0, 1, 2]), y_pred, ["a", "b", "c"])
    with pytest.raises(ValueError, match=r"Invalid value for argument `y_true`.*class indices 0-2"):
        plots.confusion_matrix(np.array([0, 1, 3]), np.array([0, 1, 2]), ["a", "b", "c"])
    with pytest.raises(ValueError, match="Invalid value for argument `normalize`"):
        plots.confusion_matrix(np.array([0, 1, 2]), np.array([0, 1, 2]), ["a", "b", "c"], normalize="rows")


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
