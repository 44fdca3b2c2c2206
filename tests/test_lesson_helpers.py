"""The figures lessons 00 and 01 add (projection, retrieval, accuracy bars) and class-name matching."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

import tlkit
from conftest import write_image_folder
from tlkit import plots


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_projection_has_one_panel_per_feature_set_and_one_colour_per_class():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 5)
    fig = plots.projection({"a": rng.normal(size=(15, 2)), "b": rng.normal(size=(15, 2))}, labels, ["x", "y", "z"])
    assert len(fig.axes) == 2
    assert [len(ax.collections) for ax in fig.axes] == [3, 3]
    assert [t.get_text() for t in fig.axes[-1].get_legend().get_texts()] == ["x", "y", "z"]


def test_retrieval_colours_neighbours_by_class(random_images):
    gallery_labels = np.array([0, 0, 1, 1])
    fig = plots.retrieval(
        random_images(1), random_images(4), np.array([[0, 2, 1]]), np.array([0]), gallery_labels, ["cat", "dog"]
    )
    axes = np.array(fig.axes).reshape(1, 4)
    colours = [ax.title.get_color() for ax in axes[0, 1:]]
    assert colours == ["green", "red", "green"]
    assert axes[0, 0].get_title().startswith("query")


def test_accuracy_bars_write_each_value():
    fig = plots.accuracy_bars({"frozen": 0.93, "scratch": 0.22}, chance=0.1)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "0.930" in texts and "0.220" in texts and " chance" in texts


def test_class_names_match_case_insensitively(tmp_path):
    # Caltech-101's folders say "Leopards"; its tfds labels say "leopards": both spellings must work.
    root = write_image_folder(tmp_path / "images", {"Leopards": 6, "bonsai": 6})
    splits = tlkit.load_dataset(
        root, 32, classes=["leopards", "BONSAI"], images_per_class=2, val_per_class=0, test_per_class=2
    )
    assert splits.class_names == ["Leopards", "bonsai"]
    with pytest.raises(ValueError, match="Unknown class"):
        tlkit.load_dataset(root, 32, classes=["leopard_cat", "bonsai"])
