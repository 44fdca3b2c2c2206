"""A `.keras` file comes back the same: identical predictions, same frozen layers, safe_mode on."""

import keras
import numpy as np
import pytest

import tlkit

BACKBONE = "mobilenet_0.25"


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (16, 32, 32, 3)).astype(np.uint8)
    return tlkit.from_arrays(images, np.arange(16) % 3, ["a", "b", "c"])


def _classifier(augment=None):
    tlkit.set_seed(0)
    base = tlkit.load_backbone(BACKBONE, 32, weights=None)
    base.trainable = False
    model = tlkit.build_classifier(base, 3, BACKBONE, augment=augment)
    tlkit.compile_model(model, 1e-3)
    return model, base


def _reload(model, path):
    model.save(path)
    return keras.models.load_model(path, safe_mode=True)  # no arbitrary code is run on load


def test_frozen_base_model_reloads_identically(data, tmp_path):
    model, base = _classifier(augment=tlkit.augment.augmentation())
    tlkit.fit(model, tlkit.to_tf(data, 8, shuffle=True), tlkit.to_tf(data, 8), epochs=1, workdir=tmp_path, verbose=0)
    loaded = _reload(model, tmp_path / "frozen.keras")
    expected = model.predict(data.images, verbose=0)
    np.testing.assert_array_equal(expected, loaded.predict(data.images, verbose=0))
    assert loaded.get_layer(base.name).trainable is False
    assert not loaded.get_layer(base.name).trainable_weights
    assert isinstance(loaded.get_layer("preprocess"), tlkit.BackbonePreprocessing)
    assert loaded.get_layer("preprocess").backbone == BACKBONE
    # The run's best checkpoint (its only epoch here) loads in safe mode too.
    best = keras.models.load_model(tmp_path / "best.keras", safe_mode=True)
    np.testing.assert_array_equal(expected, best.predict(data.images, verbose=0))


def test_fine_tuned_model_reloads_identically(data, tmp_path):
    model, base = _classifier()
    tlkit.unfreeze_top(base, 2, BACKBONE)
    tlkit.compile_model(model, 1e-4)
    tlkit.fit(model, tlkit.to_tf(data, 8, shuffle=True), epochs=1, verbose=0)
    loaded = _reload(model, tmp_path / "tuned.keras")
    np.testing.assert_array_equal(model.predict(data.images, verbose=0), loaded.predict(data.images, verbose=0))
    trainable = [w.path for w in model.trainable_weights]
    assert trainable and [w.path for w in loaded.trainable_weights] == trainable
    # The reloaded model trains on from where it was (its optimizer state came along).
    assert loaded.optimizer.iterations.numpy() == model.optimizer.iterations.numpy() > 0
