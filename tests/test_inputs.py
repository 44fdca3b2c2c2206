"""Bad inputs through the public API end in a clear error or warning, before any long work.

Images in the wrong value range, a base that is not the named backbone, argument values
out of range, too few images for `advise`: each is refused (or, where the intent is clear,
fixed with a warning) with a message that names the problem and the fix.
"""

from __future__ import annotations

import time

import keras
import numpy as np
import pytest

import tlkit
from tlkit.advice import CALIBRATION


@pytest.fixture(scope="module")
def mobilenet():
    return tlkit.load_backbone("mobilenet_0.25", 32, weights=None)


def _images(n=8, size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3)).astype(np.uint8)


class _Started(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        raise AssertionError("training started although the input is bad")


# ---------------------------------------------------------------------------- image values


def test_floats_in_0_1_are_scaled_with_a_warning_not_cast_to_black():
    pixels = _images()
    with pytest.warns(UserWarning, match="read as 0-1 images and scaled to 0-255"):
        data = tlkit.from_arrays(pixels / 255.0, np.arange(8) % 2)
    assert np.abs(data.images.astype(int) - pixels).max() <= 1  # not 0 (black), as a plain cast gives
    with pytest.warns(UserWarning, match="will look black"):  # uint8 0/1 masks
        tlkit.from_arrays((pixels > 127).astype(np.uint8), np.arange(8) % 2)


@pytest.mark.parametrize(
    ("values", "match"),
    [
        (-1.0, r"values from -1 to .*normalised already"),
        (300.0, r"values up to 300.*Scale them to 0-255"),
        (np.nan, "NaN or infinite"),
        (np.inf, "NaN or infinite"),
    ],
)
def test_pixel_values_that_cannot_be_images_are_refused(values, match):
    images = _images().astype(np.float32)
    images[0, 0, 0, 0] = values
    with pytest.raises(ValueError, match=match):
        tlkit.from_arrays(images, np.arange(8) % 2)


def test_non_numeric_images_and_labels_are_refused():
    with pytest.raises(ValueError, match="dtype <U1"):
        tlkit.from_arrays(np.full((4, 8, 8, 3), "a"), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="np.unique"):
        tlkit.from_arrays(_images(4), np.array(["cat", "dog", "cat", "dog"]))
    with pytest.raises(ValueError, match=r"single class \(0\) in 4 images"):
        tlkit.from_arrays(_images(4), [0, 0, 0, 0], ["cat", "dog"])
    with pytest.raises(ValueError, match="distinct names"):
        tlkit.from_arrays(_images(4), [0, 1, 0, 1], ["cat", "cat"])


def test_fit_and_extract_refuse_0_1_floats_for_a_tlkit_model(mobilenet):
    model = tlkit.build_classifier(mobilenet, 2)
    tlkit.compile_model(model)
    scaled = _images().astype(np.float32) / 255
    with pytest.raises(ValueError, match=r"images scaled to 0-1.*images \* 255"):
        tlkit.fit(model, scaled, y=np.arange(8) % 2, epochs=1, verbose=0, callbacks=[_Started()])
    with pytest.raises(ValueError, match="scaled to 0-1"):
        tlkit.extract(tlkit.feature_extractor(mobilenet), scaled)
    with pytest.raises(ValueError, match="normalised already"):
        tlkit.extract(tlkit.feature_extractor(mobilenet), scaled * 2 - 1)
    import tensorflow as tf

    nan = tf.data.Dataset.from_tensor_slices((np.full((4, 32, 32, 3), np.nan, np.float32), np.arange(4) % 2)).batch(2)
    with pytest.raises(ValueError, match="NaN or infinite"):
        tlkit.fit(model, nan, epochs=1, verbose=0, callbacks=[_Started()])


def test_a_to_tf_pipeline_is_checked_on_all_its_pixels(mobilenet):
    model = tlkit.build_classifier(mobilenet, 2)
    tlkit.compile_model(model)
    pixels = _images(8).astype(np.float32)
    pixels[5] /= 255  # one image of eight in 0-1: not in the first batch
    mixed = tlkit.data.ImageSet(pixels, np.arange(8) % 2, ["a", "b"])  # an ImageSet made by hand, unchecked
    assert tlkit.fit(model, tlkit.to_tf(mixed, 4), epochs=1, verbose=0).epochs == 1  # a mix is 0-255 data
    scaled = tlkit.data.ImageSet(pixels / 255, np.arange(8) % 2, ["a", "b"])
    with pytest.raises(ValueError, match="scaled to 0-1"):
        tlkit.fit(model, tlkit.to_tf(scaled, 4, shuffle=True), epochs=1, verbose=0, callbacks=[_Started()])
    pixels[6, 0, 0, 0] = np.nan  # in the second batch
    with pytest.raises(ValueError, match="NaN or infinite"):
        tlkit.fit(model, tlkit.to_tf(tlkit.data.ImageSet(pixels, np.arange(8) % 2, ["a", "b"]), 4), epochs=1,
                  verbose=0, callbacks=[_Started()])  # fmt: skip


def test_training_on_one_class_or_nothing_is_refused():
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs)))
    tlkit.compile_model(model)
    with pytest.raises(ValueError, match="single class"):
        tlkit.fit(model, np.zeros((4, 8, 8, 3)), y=np.zeros(4, int), epochs=1, verbose=0, callbacks=[_Started()])
    with pytest.raises(ValueError, match="0 images"):
        tlkit.fit(model, np.zeros((0, 8, 8, 3)), y=np.zeros(0, int), epochs=1, verbose=0, callbacks=[_Started()])
    with pytest.raises(ValueError, match="single class"):
        tlkit.train_head(np.ones((6, 4), np.float32), np.zeros(6, int), 2)


# ---------------------------------------------------------------------------- the base carries its backbone


def test_a_base_says_which_backbone_it_is():
    for name in ("mobilenet_0.25", "mobilenet_v2", "vgg16"):  # three builds keep it quick
        base = tlkit.load_backbone(name, 32, weights=None)
        assert tlkit.backbones.backbone_of(base) == name
        assert tlkit.backbones.backbone_of(tlkit.cut(base, base.layers[-3].name)) == name
    renamed = tlkit.load_backbone("mobilenet_0.5", 32, weights=None)
    renamed.name = "my_base"  # recognised by its layers (and width)
    assert tlkit.backbones.backbone_of(renamed) == "mobilenet_0.5"
    assert tlkit.backbones.backbone_of(keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3)])) is None


def test_build_classifier_reads_the_backbone_from_the_base_and_refuses_another(mobilenet, tmp_path):
    model = tlkit.build_classifier(mobilenet, 3)  # no name needed
    assert model.get_layer("preprocess").backbone == "mobilenet_0.25"
    assert tlkit.build_classifier(mobilenet, 3, "mobilenet_0.25").get_layer("preprocess").backbone == "mobilenet_0.25"
    start = time.perf_counter()
    with pytest.raises(
        ValueError, match=r"is a mobilenet_0.25, but backbone='resnet50'.*Expected backbone='mobilenet_0.25'"
    ):
        tlkit.build_classifier(mobilenet, 3, "resnet50")
    with pytest.raises(ValueError, match="is a mobilenet_0.25, but backbone='mobilenet_v2'"):
        tlkit.feature_extractor(mobilenet, "mobilenet_v2")
    with pytest.raises(ValueError, match="is a mobilenet_0.25, but name='vgg16'"):
        tlkit.block_ends(mobilenet, "vgg16")
    assert time.perf_counter() - start < 2
    # A base of one's own must be named: nothing tells which preprocessing it wants.
    own = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(2, 3)], name="own")
    with pytest.raises(ValueError, match="Cannot tell which backbone 'own' is"):
        tlkit.build_classifier(own, 2)
    assert tlkit.build_classifier(own, 2, "vgg16").get_layer("preprocess").backbone == "vgg16"
    # The name survives saving: a loaded base still says what it is.
    mobilenet.save(tmp_path / "base.keras")
    assert tlkit.backbones.backbone_of(keras.models.load_model(tmp_path / "base.keras")) == "mobilenet_0.25"


# ---------------------------------------------------------------------------- argument values


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda b: tlkit.build_classifier(b, 3, dropout=1.5), r"Received: dropout=1.5"),
        (lambda b: tlkit.build_classifier(b, 3, pooling="mean"), r"Received: pooling='mean'.*'avg'"),
        (lambda b: tlkit.build_classifier(b, 3, augment="flip"), r"Received: augment='flip'"),
        (lambda b: tlkit.build_classifier(np.zeros(3), 3), r"Received: ndarray"),
        (lambda b: tlkit.feature_extractor(b, pooling="average"), r"Received: pooling='average'"),
        (lambda b: tlkit.feature_extractor(b, layers="conv_pw_1_relu"), r"non-empty list of layer names"),
        (lambda b: tlkit.feature_extractor(b, layers=["conv_pw1_relu"]), r"Did you mean 'conv_pw_1_relu'"),
        (lambda b: tlkit.extract(tlkit.feature_extractor(b), _images(), batch_size=0), r"Received: batch_size=0"),
        (lambda b: tlkit.extract(tlkit.feature_extractor(b), _images()[:0]), r"Expected at least one image"),
        (lambda b: tlkit.extract(tlkit.feature_extractor(b), _images(size=40)), r"40x40 pixels"),
        (lambda b: tlkit.unfreeze_top(b, True), r"Received: blocks=True"),
        (lambda b: tlkit.unfreeze_top(b, 2, train_batchnorm="yes"), r"train_batchnorm"),
        (lambda b: tlkit.load_backbone("mobilenet_0.25", 0, weights=None), r"Received: image_size=0"),
        (lambda b: tlkit.load_backbone("mobilenet_0.25", 32, weights="ImageNet"), r"Received: weights='ImageNet'"),
        (lambda b: tlkit.load_backbone("mobilenet_0.25", 32, weights=1), r"Received: weights=1"),
        (lambda b: tlkit.compile_model(tlkit.build_classifier(b, 2), -1e-3), r"Received: learning_rate=-0.001"),
        (lambda b: tlkit.compile_model(tlkit.build_classifier(b, 2), "1e-3"), r"Received: learning_rate='1e-3'"),
        (lambda b: tlkit.to_tf(tlkit.from_arrays(_images(4), [0, 1, 0, 1]), 0), r"Received: batch_size=0"),
        (lambda b: tlkit.to_tf(_images(4), 2), r"Expected an ImageSet"),
        (lambda b: tlkit.train_head(np.ones((4, 3)), [0, 1, 0, 1], 2, epochs=0), r"Received: epochs=0"),
        (lambda b: tlkit.train_head(np.ones((4, 3)), [0, 1, 0, 1], 2, learning_rate=0), r"learning_rate=0"),
        (lambda b: tlkit.train_head(np.ones((4, 3)), [0, 1, 0], 2), r"4 feature rows but 3 labels"),
        (lambda b: tlkit.train_head(np.full((4, 3), np.nan), [0, 1, 0, 1], 2), r"NaN or infinite"),
        (lambda b: tlkit.load_dataset(42), r"Received: source=42"),
        (lambda b: tlkit.load_dataset("x/y", 0), r"Received: image_size=0"),
        (lambda b: tlkit.load_dataset("x/y", 32, classes=True), r"Received: classes=True"),
        (lambda b: tlkit.load_dataset("x/y", 32, val_per_class="10%"), r"val_per_class='10%'"),
        (lambda b: tlkit.feature_extractor(b, layers=["conv_pw_1_relu"] * 2), r"each layer named once"),
        (lambda b: tlkit.from_arrays(np.repeat(_images(1), 4, axis=0), [0, 1, 0, 1]), r"4 copies of one image"),
        (lambda b: tlkit.trainable_report("model"), r"Received: model='str'"),
        (lambda b: tlkit.cut(np.zeros(3), "conv_pw_1_relu"), r"Received: ndarray"),
        (lambda b: tlkit.set_seed(float("nan")), r"Received: seed=nan"),
        (lambda b: tlkit.sample_per_class([0, 1, 1], 2), r"smallest class has 1 images"),
        (lambda b: tlkit.accuracy(tlkit.build_classifier(b, 2), _images(4), [0, 1]), r"labels of shape \(2,\) for 4"),
        (
            lambda b: tlkit.copy_head(
                tlkit.train_head(np.eye(4), [0, 1, 0, 1], 2, epochs=1).model, tlkit.build_classifier(b, 2)
            ),
            r"Expected weights \[\(256, 2\)",
        ),
        (lambda b: tlkit.train_probes(np.ones((4, 3)), [0, 1, 0, 1], 2), r"Received: features='ndarray'"),
        (lambda b: tlkit.train_probes([np.ones((4, 3))] * 2, [0, 1, 0, 1], 2, names=["a", "a"]), r"one distinct name"),
        (lambda b: tlkit.train_probes([np.full((4, 3), np.inf)], [0, 1, 0, 1], 2), r"NaN or infinite"),
        (
            lambda b: tlkit.probe_accuracies(tlkit.build_classifier(b, 2), [np.ones((4, 3))] * 2, [0, 1, 0, 1]),
            r"Expected 1 arrays",
        ),  # fmt: skip
        (
            lambda b: tlkit.experiments.learning_rate_sweep(
                np.ones((4, 3)), [0, 1, 0, 1], (np.ones((2, 3)), [0, 1]), 2, [1e-3, float("nan")], 0.9, False
            ),
            r"learning_rates=nan",
        ),  # fmt: skip
        (
            lambda b: tlkit.experiments.learning_rate_sweep(
                np.ones((4, 3)), [0, 1, 0, 1], (np.ones((2, 2)), [0, 1]), 2, [1e-3], 0.9, False
            ),
            r"val features have 2 columns",
        ),  # fmt: skip
    ],
)
def test_argument_values_out_of_range_are_errors_not_defaults(mobilenet, call, match):
    start = time.perf_counter()
    with pytest.raises((ValueError, TypeError), match=match):
        call(mobilenet)
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": 0}, r"Received: epochs=0"),
        ({"epochs": 3, "initial_epoch": 3}, r"Received: initial_epoch=3.*below epochs=3"),
        ({"patience": 0}, r"Received: patience=0.*None for no early stopping"),
        ({"workdir": 5}, r"Received: workdir=5"),
    ],
)
def test_fit_arguments_are_checked(mobilenet, kwargs, match):
    model = tlkit.build_classifier(mobilenet, 2)
    tlkit.compile_model(model)
    with pytest.raises((ValueError, TypeError), match=match):
        tlkit.fit(model, _images(4), y=[0, 1, 0, 1], verbose=0, callbacks=[_Started()], **{"epochs": 1, **kwargs})


def test_fit_refuses_an_uncompiled_model_and_a_base_outside_the_model(mobilenet):
    model = tlkit.build_classifier(mobilenet, 2)
    with pytest.raises(ValueError, match="not compiled.*tlkit.compile_model"):
        tlkit.fit(model, _images(4), y=[0, 1, 0, 1], epochs=1, verbose=0)
    other = tlkit.load_backbone("mobilenet_0.25", 32, weights=None)
    with pytest.raises(ValueError, match="not a layer of"):
        tlkit.train.fit_two_phase(model, other, _images(4), None, 1, 1, unfreeze=tlkit.unfreeze_all)


# ---------------------------------------------------------------------------- advise


def test_advise_refuses_a_handful_of_images(mobilenet):
    start = time.perf_counter()
    data = tlkit.from_arrays(_images(6), [0, 1, 0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"Received: 6 images. Expected at least 10"):
        tlkit.advise(data, base=mobilenet)
    with pytest.raises(ValueError, match=r"Received: sample=5"):
        tlkit.advise(tlkit.from_arrays(_images(20), np.arange(20) % 2), sample=5)
    with pytest.raises(ValueError, match=r"Received: distance_threshold=-1"):
        tlkit.advise(tlkit.from_arrays(_images(20), np.arange(20) % 2), distance_threshold=-1)
    assert time.perf_counter() - start < 3  # before loading or measuring anything


def test_advise_gives_its_intervals(weight_file):
    base = tlkit.load_backbone("mobilenet_0.25", CALIBRATION["mobilenet_0.25"][0], weights=weight_file)
    data = tlkit.from_arrays(_images(12, 96), np.arange(12) % 2)
    advice = tlkit.advise(data, base=base)
    low, high = advice.distance_interval
    assert low <= advice.domain_distance <= high and low < high
    low, high = advice.cut_gain_interval
    assert low <= advice.cut_gain <= high
    assert advice.confident == (not low <= advice.cut_margin < high)
    # The distance's threshold labels how the images look; it does not decide the quadrant.
    looks = tlkit.advise(data, base=base, distance_threshold=advice.domain_distance * 2)
    assert looks.looks == "similar" and looks.quadrant == advice.quadrant
    with pytest.raises(ValueError, match="is a mobilenet_0.25, but backbone='resnet50'"):
        tlkit.advise(data, "resnet50", base=base)
