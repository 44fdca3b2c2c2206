"""Cached features: extractor outputs, heads trained on features, and moving a head into the model."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import tlkit

BACKBONE = "mobilenet_0.25"
LAYERS = ["conv_pw_3_relu", "conv_pw_13_relu"]  # at 64 px: 16x16x32 and 2x2x256 feature maps


@pytest.fixture
def base64():
    return tlkit.load_backbone(BACKBONE, 64, weights=None)


@pytest.mark.parametrize(
    "pooling, widths",
    [("avg", [32, 256]), ("max", [32, 256]), ("grid", [32 * 5, 256 * 5])],  # grid: global + 2x2 cells
)
def test_feature_extractor_shapes(base64, random_images, pooling, widths):
    images = random_images(3, 64)
    features = tlkit.extract(tlkit.feature_extractor(base64, BACKBONE, layers=LAYERS, pooling=pooling), images)
    assert [f.shape for f in features] == [(3, w) for w in widths]
    assert base64.trainable_weights == []  # an extractor freezes its base


def test_grid_pooling_on_a_3x3_map(random_images):
    base = tlkit.load_backbone(BACKBONE, 96, weights=None)  # last feature map 3x3x256
    features = tlkit.extract(tlkit.feature_extractor(base, BACKBONE, pooling="grid"), random_images(2, 96))
    assert features.shape == (2, 256 * (1 + 9))


def test_pooled_features_are_the_pooled_feature_maps(live_base, random_images):
    images = random_images(4, 32)
    maps = keras.ops.convert_to_numpy(
        tlkit.cut(live_base, "conv_pw_5_relu")(tlkit.BackbonePreprocessing(BACKBONE)(images))
    )
    for pooling, reduce in (("avg", np.mean), ("max", np.max)):
        fx = tlkit.feature_extractor(live_base, BACKBONE, layers=["conv_pw_5_relu"], pooling=pooling)
        np.testing.assert_allclose(tlkit.extract(fx, images), reduce(maps, axis=(1, 2)), rtol=1e-5, atol=1e-6)
    whole = tlkit.extract(tlkit.feature_extractor(live_base, BACKBONE), images)
    last = keras.ops.convert_to_numpy(live_base(tlkit.BackbonePreprocessing(BACKBONE)(images)))
    np.testing.assert_allclose(whole, last.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)


def test_train_head_learns_a_separable_problem():
    """Three Gaussian blobs in 16-D, centres 4 apart, unit noise: a linear head separates them.

    Measured (seeds 0-4, lr 5e-2): validation accuracy 1.0 after 20 epochs in every run, and
    0.98-1.0 from epoch 5 on. Threshold 0.95.
    """
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 4 / np.sqrt(2), (3, 16))
    labels = np.arange(120) % 3
    x = (centres[labels] + rng.normal(size=(120, 16))).astype("float32")
    history = tlkit.train_head(x[:60], labels[:60], 3, val=(x[60:], labels[60:]), epochs=20, learning_rate=5e-2)
    head = history.model
    assert history.epochs == 20
    assert history.last("val_accuracy") >= 0.95
    # Dropout is off at inference: the accuracy equals the last epoch's validation accuracy.
    assert tlkit.accuracy(head, x[60:], labels[60:]) == pytest.approx(history.last("val_accuracy"))
    assert history.history["loss"][-1] < history.history["loss"][0] / 2


def test_train_head_is_fixed_by_the_seed():
    """Same seed, same head (initialisation, dropout and the per-epoch shuffle); another seed, another."""
    rng = np.random.default_rng(0)
    x, labels = rng.normal(size=(50, 8)).astype("float32"), np.arange(50) % 2

    def trained(seed: int) -> list[np.ndarray]:
        tlkit.set_seed(seed)
        history = tlkit.train_head(x, labels, 2, epochs=3, batch_size=8)
        head = history.model
        return [*head.get_weights(), np.array(history.history["loss"])]

    first = trained(0)
    for a, b in zip(first, trained(0)):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], trained(1)[0])


def test_train_head_batches_are_shuffled_each_epoch():
    from tlkit.features import _dataset

    labels = np.arange(64)
    ds = _dataset(np.zeros((64, 2), "float32"), labels, batch_size=64, shuffle=True)
    first, second = (next(iter(ds))[1].numpy() for _ in range(2))
    assert sorted(first) == list(labels) and sorted(second) == list(labels)  # every example once per epoch
    assert not np.array_equal(first, labels) and not np.array_equal(first, second)


def test_copy_head_makes_the_classifier_equal_head_on_features(live_base, random_images):
    images, labels = random_images(12, 32), np.arange(12) % 3
    classifier = tlkit.build_classifier(live_base, 3, BACKBONE, dropout=0.5)
    features = tlkit.extract(tlkit.feature_extractor(live_base, BACKBONE), images)
    head = tlkit.train_head(features, labels, 3, epochs=1, dropout=0.5).model
    dense = head.get_layer("head")  # weights far from the fresh classifier's, so that copying shows
    dense.set_weights([np.random.default_rng(1).normal(0, 3, w.shape) for w in dense.get_weights()])
    expected = head.predict(features, verbose=0)
    assert expected.std(axis=0).max() > 1e-3  # the images do get different predictions
    assert not np.allclose(classifier.predict(images, verbose=0), expected, atol=1e-3)  # before copying
    tlkit.copy_head(head, classifier)
    np.testing.assert_allclose(classifier.predict(images, verbose=0), expected, rtol=1e-4, atol=1e-6)
    assert tlkit.accuracy(classifier, images, labels) == tlkit.accuracy(head, features, labels)


def test_train_head_with_hidden_layers():
    """`hidden=(8, 4)` puts two relu layers before the output layer; the linear head has none."""
    x = np.random.default_rng(0).normal(size=(12, 5)).astype("float32")
    labels = np.arange(12) % 3
    history = tlkit.train_head(x, labels, 3, epochs=2, hidden=(8, 4))
    head = history.model
    dense = [layer for layer in head.layers if isinstance(layer, keras.layers.Dense)]
    assert [(d.name, d.units) for d in dense] == [("hidden_1", 8), ("hidden_2", 4), ("head", 3)]
    assert [d.activation.__name__ for d in dense] == ["relu", "relu", "softmax"]
    assert len(history.history["loss"]) == 2
    linear = tlkit.train_head(x, labels, 3, epochs=1).model
    assert [layer.name for layer in linear.layers if isinstance(layer, keras.layers.Dense)] == ["head"]


@pytest.mark.parametrize("hidden", [256, "256", (0,), (64, 2.5), (True,)])
def test_train_head_rejects_bad_hidden(hidden):
    with pytest.raises(ValueError, match=r"Invalid value for argument `hidden`"):
        tlkit.train_head(np.ones((4, 3), np.float32), [0, 1, 0, 1], 2, hidden=hidden)


def test_copy_head_refuses_a_head_with_hidden_layers(live_base):
    head = tlkit.train_head(np.ones((4, 256), np.float32), [0, 1, 0, 1], 2, epochs=1, hidden=(4,)).model
    classifier = tlkit.build_classifier(live_base, 2, BACKBONE)
    with pytest.raises(ValueError, match=r"hidden layers \['hidden_1'\]"):
        tlkit.copy_head(head, classifier)
