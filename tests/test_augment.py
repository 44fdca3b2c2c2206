"""RandomCropFlip: one crop, zoom and flip per image, in a single resampling."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tlkit
from tlkit.augment import RandomCropFlip


def _smooth_images(n: int = 4, size: int = 32) -> np.ndarray:
    """Images with structure at every position (a ramp plus a random pattern), 0-255 float32."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 200, size, dtype=np.float32)
    return (ramp[None, :, None, None] + ramp[None, None, :, None] / 4 + rng.uniform(0, 40, (n, size, size, 3))).astype(
        np.float32
    )


def test_full_box_is_the_identity_and_a_reversed_box_a_mirror():
    images = _smooth_images()
    whole = tf.constant([[0.0, 0.0, 1.0, 1.0]] * 4)
    mirrored = tf.constant([[0.0, 1.0, 1.0, 0.0]] * 4)
    np.testing.assert_array_equal(RandomCropFlip.crop_and_resize(images, whole), images)
    np.testing.assert_array_equal(RandomCropFlip.crop_and_resize(images, mirrored), images[:, :, ::-1])


def test_the_affine_path_samples_like_crop_and_resize():
    """Other backends resample with `ops.image.affine_transform`: it must read the same pixels.

    Measured: largest difference 0.005 on the 0-255 scale (float round-off); allowed: 0.05.
    """
    images = _smooth_images()
    boxes = RandomCropFlip(zoom=0.3, seed=1).boxes(4)
    fused = RandomCropFlip.crop_and_resize(images, boxes)
    affine = RandomCropFlip.affine_resample(tf.constant(images), boxes)
    np.testing.assert_allclose(affine, fused, atol=0.05)


def test_boxes_stay_inside_the_image_and_mirror_half_of_them():
    boxes = np.asarray(RandomCropFlip(zoom=0.2, seed=0).boxes(2000))
    y1, x1, y2, x2 = boxes.T
    left, right = np.minimum(x1, x2), np.maximum(x1, x2)
    assert boxes.min() >= 0 and boxes.max() <= 1 + 1e-6
    side = y2 - y1
    np.testing.assert_allclose(right - left, side, atol=1e-6)  # square crops
    assert side.min() >= 0.8 - 1e-6 and side.max() <= 1 + 1e-6
    assert side.min() < 0.81 and side.max() > 0.99  # the whole range of zooms is drawn
    assert 0.45 < np.mean(x1 > x2) < 0.55  # mirrored with probability 1/2 (2000 draws: 4.5 sigma)


def test_inference_passes_images_through_and_training_changes_them():
    images = _smooth_images()
    layer = tlkit.augment.augmentation(seed=0)
    np.testing.assert_array_equal(layer(images, training=False), images)
    augmented = np.asarray(layer(images, training=True))
    assert augmented.shape == images.shape and augmented.dtype == np.float32
    assert np.abs(augmented - images).mean() > 1


def test_output_takes_the_compute_dtype_of_mixed_precision():
    layer = RandomCropFlip(seed=0, dtype="mixed_float16")
    assert layer(_smooth_images(), training=True).dtype == "float16"


def test_zoom_out_of_range_is_refused():
    with pytest.raises(ValueError, match="zoom"):
        RandomCropFlip(zoom=1.0)


def test_model_with_the_layer_saves_and_loads(tmp_path):
    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.Dense(2)(
        keras.layers.GlobalAveragePooling2D()(tlkit.augment.augmentation(0.15, seed=3)(inputs))
    )
    path = tmp_path / "model.keras"
    keras.Model(inputs, outputs).save(path)
    layer = keras.saving.load_model(path).get_layer("augmentation")
    assert isinstance(layer, RandomCropFlip) and layer.zoom == pytest.approx(0.15) and layer.seed == 3
