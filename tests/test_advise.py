"""tlkit.advise and the helpers of the strategy lesson: learning curves, warm starts.

The quadrant tests run `advise` on small samples of the two offline datasets it was
calibrated on, and on scikit-learn's digits, which it was not calibrated on.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

import tlkit
from tlkit.advice import CALIBRATION, Advice, advise, domain_distances
from tlkit.curves import Curves, head_weights, learning_curves, linear_head
from tlkit.data import sample_per_class
from tlkit.search import epochs_to_reach, learning_rate_sweep

CALTECH_CLASSES = ["Leopards", "Motorbikes", "airplanes", "bonsai", "car_side", "chandelier", "grand_piano",
                   "hawksbill", "ketch", "watch"]  # fmt: skip


@pytest.fixture(scope="module")
def base96(weight_file):
    """MobileNet alpha=0.25 with ImageNet weights at the size the distance is calibrated at."""
    return tlkit.load_backbone("mobilenet_0.25", CALIBRATION["mobilenet_0.25"][0], weights=weight_file)


# The distance's threshold (CALIBRATION): over 5 seeds and two load sizes, Caltech-101 samples measured
# 0.132-0.183 and Fashion-MNIST 0.317-0.337, threshold 0.25. The probes' margin (CUT_MARGIN) was set on
# benchmark G's 17 tasks at 64 px. The samples below use seeds (7) and image sizes (80 px) that neither used.


def test_caltech_sample_looks_similar_and_is_never_cut_deep(caltech, base96):
    data = tlkit.load_dataset("caltech101", 80, classes=CALTECH_CLASSES, images_per_class=10,
                              val_per_class=0, test_per_class=0, seed=7)  # fmt: skip
    advice = advise(data, base=base96)
    assert advice.size == "small" and advice.images_per_class == 10 and advice.num_classes == 10
    assert advice.looks == "similar" and advice.domain_distance < 0.21, advice  # calibration max 0.183 (+ margin)
    # ImageNet-like photos: the best probe is within the top 4 blocks (measured at conv_pw_10-12 on seeds 7-10,
    # 10 and 30 a class: at 80 px the last block is not always the best one, and the advice says so).
    assert advice.block_ends.index(advice.cut_layer) >= len(advice.block_ends) - 4, advice
    assert len(advice.probe_accuracies) == len(advice.block_ends) == 14
    assert advice.cut_gain == pytest.approx(max(advice.probe_accuracies) - advice.probe_accuracies[-1])


def test_fashion_mnist_sample_is_different(fashion_mnist, base96):
    data = tlkit.load_dataset("fashion_mnist", 80, images_per_class=160, val_per_class=0, test_per_class=0, seed=7)
    advice = advise(data, base=base96, sample=100)
    assert advice.quadrant == "large + different", advice
    assert advice.looks == "different" and advice.domain_distance > 0.29, advice  # calibration min 0.317 (- margin)
    # Measured at seed 7: conv_pw_11-12 beat the last block by 0.08-0.11 (interval 0.035-0.18), on 100 and 200 images.
    assert advice.confident and advice.cut_gain_interval[0] > advice.cut_margin, advice
    assert advice.cut_layer in advice.strategy


def test_digits_are_different_though_not_calibrated_on(base96):
    from sklearn.datasets import load_digits

    digits = load_digits()
    data = tlkit.from_arrays((digits.images * (255 / 16)).astype("uint8"), digits.target)
    start = time.perf_counter()
    advice = advise(data, base=base96)
    assert time.perf_counter() - start < 60  # 200 images; about 5 s on 2 cores (the budget: a minute)
    assert advice.similarity == "different" and advice.looks == "different", advice
    assert advice.size == "large"  # ~180 images per class (LARGE_FROM is 150)
    # Measured 0.53 at 96 px: much further from ImageNet than Fashion-MNIST; the probes gain 0.08-0.17 by cutting.
    assert advice.domain_distance > CALIBRATION["mobilenet_0.25"][1]
    low, high = advice.cut_gain_interval
    assert low <= advice.cut_gain <= high and low < high
    # A margin inside the interval: the sample cannot tell, and the advice says so.
    with pytest.warns(UserWarning, match="cannot tell whether to cut earlier"):
        unsure = advise(data, base=base96, cut_margin=advice.cut_gain)
    assert not unsure.confident and "UNCERTAIN" in repr(unsure) and unsure.similarity == "similar"


def test_probes_find_the_features_that_separate_the_classes():
    """Cross-validated probes: right where the features carry the label, at chance where they do not."""
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 20)
    noise = rng.normal(size=(60, 8))
    informative = noise + 4 * np.eye(8)[labels]
    correct = tlkit.advice.probe_correct([noise, informative, noise], labels, seed=0)
    assert correct.shape == (3, 60) and correct.dtype == bool
    assert correct[1].mean() > 0.95 and correct[0].mean() < 0.6 and correct[2].mean() < 0.6
    with pytest.raises(ValueError, match="at least 2 images of every class"):
        tlkit.advice.probe_correct([noise[:41]], np.r_[labels[:40], 2], seed=0)


def test_advice_repr_shows_the_numbers():
    advice = Advice("small + similar", "freeze", 12, 5, 0.1234, 0.25, 50, sample_size=60, backbone="mobilenet_0.25")
    text = repr(advice)
    assert "small + similar" in text and "12" in text and "0.123" in text and "0.25" in text


def test_advise_rejects_what_it_cannot_measure(base96):
    with pytest.raises(TypeError, match="from_arrays"):
        advise(np.zeros((4, 32, 32, 3), np.uint8))
    pixels = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    data = tlkit.from_arrays(pixels, np.array([0, 0, 1, 1]))
    with pytest.raises(ValueError, match="distance_threshold="):
        advise(data, backbone="resnet50")
    with pytest.raises(ValueError, match="BatchNorm"):
        domain_distances(
            data.images, backbone="vgg16", base=tlkit.load_backbone("vgg16", 32, weights=None), image_size=32
        )
    with pytest.raises(ValueError, match="RGB"):
        domain_distances(np.zeros((4, 32, 32), np.uint8), base=base96)
    copies = np.full((40, 32, 32, 3), 128, np.uint8)
    with pytest.raises(ValueError, match="40 copies of one image"):  # refused where arrays come in
        tlkit.from_arrays(copies, np.repeat([0, 1], 20))
    same = tlkit.data.ImageSet(copies, np.repeat([0, 1], 20), ["a", "b"])  # e.g. a folder of one file copied
    with pytest.raises(ValueError, match="1 distinct image"):
        advise(same, base=base96)
    many = tlkit.from_arrays(np.random.default_rng(0).integers(0, 256, (60, 32, 32, 3), np.uint8), np.arange(60) % 30)
    with pytest.raises(ValueError, match="Pass sample=60 or more"):  # 30 classes: 1 sampled image each
        advise(many, base=base96, sample=30)


def test_distance_is_zero_on_the_reference_statistics_and_grows_with_a_shift():
    """A base whose BatchNorm statistics were measured on a sample puts that sample at distance ~0."""
    import keras

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.BatchNormalization()(keras.layers.Conv2D(4, 3)(inputs))
    x = keras.layers.BatchNormalization()(keras.layers.Conv2D(4, 3)(keras.layers.ReLU()(x)))
    base = keras.Model(inputs, x)
    images = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3)).astype("uint8")
    layers = [layer for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)]
    taps = keras.Model(base.input, [layer.input for layer in layers])
    preprocess = tlkit.BackbonePreprocessing("mobilenet_0.25")
    for i, layer in enumerate(layers):  # in order: each layer's input depends on the layers before it
        out = keras.ops.convert_to_numpy(taps(preprocess(images.astype("float32")), training=False)[i])
        layer.moving_mean.assign(out.mean((0, 1, 2)))
        layer.moving_variance.assign(out.var((0, 1, 2)) - layer.epsilon)
    same = domain_distances(images, base=base, image_size=32)
    shifted = domain_distances(images // 4, base=base, image_size=32)
    assert same.shape == (2,) and same.max() < 1e-4
    assert shifted.min() > 0.05


def test_advise_samples_evenly_over_the_classes():
    labels = np.repeat([0, 1, 2], [50, 5, 50])
    picks = sample_per_class(labels, 30 // 3, seed=0, allow_fewer=True)  # what advise draws for sample=30
    assert np.bincount(labels[picks]).tolist() == [10, 5, 10]


@pytest.mark.parametrize("num_classes", [2, 4])
def test_head_weights_reproduce_the_linear_head(num_classes):
    import keras

    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 6)).astype("float32")
    y = rng.integers(0, num_classes, 80)
    head = linear_head(x, y)
    dense = keras.layers.Dense(num_classes, activation="softmax")
    dense.build((None, 6))
    dense.set_weights(head_weights(head, num_classes))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(dense(x)), head.predict_proba(x), atol=1e-5)


def test_crossing():
    curves = Curves([5, 10, 20], {"frozen": [0.5, 0.6, 0.7], "fine_tune_all": [0.4, 0.65, 0.8]}, {}, 0.1)
    assert curves.crossing("fine_tune_all") == 10
    assert curves.crossing("fine_tune_all", margin=0.07) == 20
    assert curves.crossing("frozen", "fine_tune_all") is None


def test_learning_curves_checks_sizes_before_training(random_images):
    data = tlkit.data.Splits(*(tlkit.from_arrays(random_images(8), np.repeat([0, 1], 4)) for _ in range(3)))
    with pytest.raises(ValueError, match="images_per_class=5"):
        learning_curves({"toy": data}, "mobilenet_0.25", sizes=[2, 5], weights=None)
    with pytest.raises(ValueError, match="Unknown strategies"):
        learning_curves({"toy": data}, "mobilenet_0.25", sizes=[2], strategies=["frozen", "lora"], weights=None)


def test_learning_curves_runs_and_keeps_the_test_set(random_images):
    data = tlkit.data.Splits(
        tlkit.from_arrays(random_images(12, seed=1), np.repeat([0, 1], 6)),
        tlkit.from_arrays(random_images(2, seed=2), np.array([0, 1])),
        tlkit.from_arrays(random_images(6, seed=3), np.repeat([0, 1], 3)),
    )
    curves = learning_curves({"toy": data}, "mobilenet_0.25", [2, 6], strategies=["frozen", "fine_tune_top"],
                             epochs=1, weights=None)["toy"]  # fmt: skip
    assert curves.sizes == [2, 6]
    for values in curves.accuracy.values():
        assert len(values) == 2 and all(0 <= v <= 1 for v in values)
    assert set(curves.seconds) == {"frozen", "fine_tune_top"}
    assert "fine_tune_top" in curves.table()


def test_epochs_to_reach():
    assert epochs_to_reach([0.2, 0.5, 0.9, 0.95], 0.9) == 3
    assert epochs_to_reach([0.2, 0.5], 0.9) is None
    # an accuracy of 0.76 as Keras reports it (float32) reaches a target of 0.76, and only that
    assert epochs_to_reach([float(np.float32(0.75)), float(np.float32(0.76))], 0.76) == 2
    assert epochs_to_reach([float(np.float32(0.75))], 0.76) is None


def test_warm_start_continues_from_the_previous_run():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-1, 1, (40, 4)), rng.normal(1, 1, (40, 4))]).astype("float32")
    y = np.repeat([0, 1], 40)
    cold = learning_rate_sweep(x, y, (x, y), 2, [0.05, 0.05], target=0.9, warm_start=False, epochs=3)
    warm = learning_rate_sweep(x, y, (x, y), 2, [0.05, 0.05], target=0.9, warm_start=True, epochs=3)
    assert cold[0].val_accuracy == warm[0].val_accuracy  # same start, same first run
    assert cold[1].val_accuracy == cold[0].val_accuracy  # cold: every run starts afresh
    assert warm[1].val_accuracy != warm[0].val_accuracy  # warm: the second run goes on from the first
    with pytest.raises(ValueError, match="empty"):
        learning_rate_sweep(x, y, (x, y), 2, [], target=0.9, warm_start=True)
