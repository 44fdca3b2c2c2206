"""Grad-CAM: heatmaps of tlkit classifiers, a model whose answer is known, peaks and the pointing game."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import tlkit
from tlkit.gradcam import gradcam, peak, pointing_game, upsample

# The hand-built model's region: the bottom-left quarter of a 16x16 image (rows 8-15, columns 0-7).
REGION = (8, 0, 16, 8)  # y0, x0, y1, x1


class FixedMask(keras.layers.Layer):
    """Multiplies a feature map by a constant 0/1 mask: what lies outside the mask cannot reach the output."""

    def __init__(self, mask, **kwargs):
        super().__init__(**kwargs)
        self.mask = np.asarray(mask, "float32")

    def call(self, x):
        return x * keras.ops.convert_to_tensor(self.mask)[None, :, :, None]


def region_model() -> keras.Model:
    """16x16 RGB -> 8x8 red and green detectors -> masked to the region -> pooled -> softmax.

    Class 1's logit reads the red detector, class 0's the green one, both only inside REGION.
    """
    inputs = keras.Input((16, 16, 3))
    conv = keras.layers.Conv2D(2, 2, strides=2, activation="relu", name="detectors")
    mask = np.zeros((8, 8))
    mask[4:, :4] = 1  # REGION at the feature map's resolution
    x = FixedMask(mask, name="mask")(conv(inputs))
    head = keras.layers.Dense(2, activation="softmax", name="head")
    outputs = head(keras.layers.GlobalAveragePooling2D(name="pool")(x))
    kernel = np.zeros((2, 2, 3, 2), "float32")
    kernel[:, :, 0, 0] = 1 / 255  # channel 0: red
    kernel[:, :, 1, 1] = 1 / 255  # channel 1: green
    conv.set_weights([kernel, np.zeros(2, "float32")])
    head.set_weights([np.array([[0, 5], [5, 0]], "float32"), np.zeros(2, "float32")])
    return keras.Model(inputs, outputs)


def red_and_green() -> np.ndarray:
    """A red square inside REGION and a green one at the transposed place, outside it."""
    image = np.zeros((1, 16, 16, 3), "float32")
    image[0, 10:14, 2:6, 0] = 255
    image[0, 2:6, 10:14, 1] = 255
    return image


def inside(point, box) -> bool:
    return box[0] <= point[0] < box[2] and box[1] <= point[1] < box[3]


def test_the_peak_lands_in_the_region_the_class_score_reads():
    model, images = region_model(), red_and_green()
    assert model.predict(images, verbose=0).argmax() == 1  # the red square, inside the region, wins
    heatmaps = gradcam(model, images, "detectors")
    assert heatmaps.shape == (1, 8, 8) and heatmaps.max() == 1
    assert inside(peak(heatmaps[0], image_size=16), REGION)  # not the transposed place: rows and columns kept
    assert pointing_game(heatmaps, [REGION], image_size=16).tolist() == [True]
    # Class 0 reads the green detector: Grad-CAM weighs whole channels, so it points at the green square.
    green = gradcam(model, images, "detectors", class_index=0)
    assert not inside(peak(green[0], image_size=16), REGION) and inside(peak(green[0], 16), (2, 10, 6, 14))


def test_log_probability_finds_the_evidence_a_logit_leaves_out():
    """Class 1's logit is a constant and the red square lowers class 0's: class 1's evidence lies in class 0's logit."""
    model, images = region_model(), red_and_green()
    model.get_layer("head").set_weights([np.array([[-5, 0], [0, 0]], "float32"), np.zeros(2, "float32")])
    assert model.predict(images, verbose=0).argmax() == 1
    logit = gradcam(model, images, "detectors", class_index=1)
    assert logit.max() == 0  # no position raises a constant: the map is empty
    assert pointing_game(logit, [(0, 0, 16, 16)], image_size=16).tolist() == [False]  # an empty map points nowhere
    probability = gradcam(model, images, "detectors", class_index=1, score="log_probability")
    assert inside(peak(probability[0], image_size=16), (10, 2, 14, 6))  # the red square, which lowers class 0
    assert pointing_game(probability, [REGION], image_size=16).tolist() == [True]
    # Class 0's own logit falls on the red square too: neither score finds anything raising it.
    assert gradcam(model, images, "detectors", class_index=0, score="log_probability").max() == 0


def test_heatmaps_of_a_tlkit_classifier_have_the_feature_map_shape_and_lie_in_0_1(live_base, random_images):
    model = tlkit.build_classifier(live_base, 3)
    images = random_images(3)
    inner = gradcam(model, images, "conv_pw_5_relu", batch_size=2)
    assert inner.shape == (3, 4, 4) and inner.dtype == np.float32
    assert inner.min() >= 0 and np.all((inner.max(axis=(1, 2)) == 1) | (inner.max(axis=(1, 2)) == 0))
    assert gradcam(model, images).shape == (3, 1, 1)  # the base's last feature map: 1x1 at 32 px
    predicted = model.predict(images, verbose=0).argmax(-1)
    np.testing.assert_allclose(gradcam(model, images, "conv_pw_5_relu", class_index=predicted), inner, atol=1e-6)


def test_at_the_last_feature_map_gradcam_is_the_class_activation_map_of_the_head():
    """After global average pooling and a Dense head, Grad-CAM's weights are the head's (Zhou et al.'s CAM)."""
    base = tlkit.load_backbone("mobilenet_0.25", 64, weights=None)
    rng = np.random.default_rng(0)
    for layer in base.layers:  # He-normal kernels, so the features do not vanish (see conftest.live_base)
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
            depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
            fan_in = int(np.prod(layer.kernel.shape[:2])) * (1 if depthwise else layer.kernel.shape[2])
            layer.kernel.assign(rng.normal(0, np.sqrt(2 / fan_in), layer.kernel.shape).astype("float32"))
    model = tlkit.build_classifier(base, 4)
    head = model.get_layer("head")
    head.kernel.assign(rng.normal(0, 1, head.kernel.shape).astype("float32"))  # the same on every backend
    images = rng.integers(0, 256, (2, 64, 64, 3)).astype("float32")
    features = keras.ops.convert_to_numpy(base(model.get_layer("preprocess")(images), training=False))
    kernel = keras.ops.convert_to_numpy(model.get_layer("head").kernel)
    cam = np.maximum(features @ kernel[:, 2], 0)
    assert np.all(cam.max(axis=(1, 2)) > 0), "a class the features raise somewhere"
    cam /= cam.max(axis=(1, 2), keepdims=True)
    heatmaps = gradcam(model, images, class_index=2)
    assert heatmaps.shape == (2, 2, 2)
    np.testing.assert_allclose(heatmaps, cam, atol=1e-4)


def test_upsample_and_peak_work_in_image_pixels():
    heatmap = np.zeros((4, 4), "float32")
    heatmap[3, 0] = 1
    assert peak(heatmap) == (3, 0) and peak(heatmap, image_size=32) == (28, 4)  # the cell's centre
    assert peak(heatmap, image_size=(16, 64)) == (14, 8)
    big = upsample(np.stack([heatmap, heatmap.T]), 32)
    assert big.shape == (2, 32, 32) and 0 <= big.min() and big.max() <= 1
    assert inside(peak(big)[0], (24, 0, 32, 8)) and inside(peak(big)[1], (0, 24, 8, 32))
    assert upsample(heatmap, (8, 12)).shape == (8, 12)


def test_pointing_game_on_handmade_heatmaps_and_boxes():
    heatmaps = np.zeros((3, 10, 10), "float32")
    heatmaps[0, 2, 7] = 1  # row 2, column 7
    heatmaps[1, 9, 9] = 1
    heatmaps[2, 5, 0] = 1
    boxes = [(0, 5, 4, 10), (0, 0, 9, 9), (5, 0, 6, 1)]  # y0, x0, y1, x1: the bottom and right edges are outside
    assert pointing_game(heatmaps, boxes).tolist() == [True, False, True]
    xyxy = [(x0, y0, x1, y1) for y0, x0, y1, x1 in boxes]
    assert pointing_game(heatmaps, xyxy, box_format="xyxy").tolist() == [True, False, True]
    assert pointing_game(heatmaps, boxes, tolerance=1).tolist() == [True, True, True]
    # At a feature map's resolution: 10x10 cells over a 100x100 image; cell (2, 7) is pixel (25, 75).
    assert pointing_game(heatmaps[:1], [(20, 70, 30, 80)], image_size=100).tolist() == [True]
    assert pointing_game(heatmaps[:1], [(0, 0, 20, 70)], image_size=100).tolist() == [False]


def test_errors_name_the_problem_and_the_fix(tiny_base, random_images):
    model = tlkit.build_classifier(tiny_base, 2)
    images = random_images(2)
    with pytest.raises(ValueError, match=r"layer='conv_pw_5_rel'.*Did you mean 'conv_pw_5_relu'.*block_ends"):
        gradcam(model, images, "conv_pw_5_rel")
    with pytest.raises(ValueError, match=r"shape \(32, 32, 3\) \(rank 3\).*images\[None\]"):
        gradcam(model, images[0])
    with pytest.raises(ValueError, match=r"rank 2"):
        gradcam(model, images[0, 0])
    with pytest.raises(ValueError, match=r"layer='pool'.*feature map"):
        gradcam(model, images, "pool")
    with pytest.raises(ValueError, match=r"class_index=2.*2 outputs"):
        gradcam(model, images, class_index=2)
    with pytest.raises(ValueError, match=r"built for 32x32"):
        gradcam(model, random_images(1, size=48))
    with pytest.raises(ValueError, match=r"score='log_prob'.*Did you mean 'log_probability'"):
        gradcam(model, images, score="log_prob")
    with pytest.raises(ValueError, match=r"fractions of the image"):
        pointing_game(np.ones((1, 8, 8)), [(0.1, 0.1, 0.5, 0.5)])
    with pytest.raises(ValueError, match=r"y0 < y1"):
        pointing_game(np.ones((1, 8, 8)), [(4, 0, 2, 8)])
    with pytest.raises(ValueError, match=r"one box of 4"):
        pointing_game(np.ones((2, 8, 8)), [(0, 0, 4, 4)])


def test_a_feature_layer_that_a_skip_connection_crosses_is_refused_and_one_it_does_not_is_followed():
    inputs = keras.Input((8, 8, 3))
    stem = keras.layers.Conv2D(3, 3, padding="same", name="stem")(inputs)
    features = keras.layers.Conv2D(3, 3, padding="same", name="features")(stem)
    residual = keras.layers.Add()([features, keras.layers.Conv2D(3, 1)(features)])  # both sides after "features"
    crossed = keras.layers.Add()([stem, residual])  # "stem" skips past "features"
    pooled = keras.layers.GlobalAveragePooling2D()
    head = keras.layers.Dense(2, activation="softmax")
    images = np.random.default_rng(0).uniform(0, 1, (2, 8, 8, 3)).astype("float32")
    within = keras.Model(inputs, head(pooled(residual)))
    assert gradcam(within, images, "features").shape == (2, 8, 8)
    across = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(pooled(crossed)))
    with pytest.raises(ValueError, match=r"skip connection .* crosses.*block_ends"):
        gradcam(across, images, "features")


def test_log_probability_needs_a_final_softmax_dense_layer():
    inputs = keras.Input((8, 8, 3))
    features = keras.layers.Conv2D(3, 3, padding="same", name="features")(inputs)
    outputs = keras.layers.Dense(2, name="logits")(keras.layers.GlobalAveragePooling2D()(features))
    model = keras.Model(inputs, outputs)
    assert gradcam(model, np.ones((1, 8, 8, 3)), "features").shape == (1, 8, 8)  # its outputs are the scores
    with pytest.raises(ValueError, match=r"score='log_probability'.*'logits' is not a softmax Dense layer"):
        gradcam(model, np.ones((1, 8, 8, 3)), "features", score="log_probability")
