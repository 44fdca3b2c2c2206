"""One head per cut point, trained in one `fit`: each head sees only its own features."""

import numpy as np
import pytest

from tlkit.probes import probe_accuracies, probe_model, train_probes


def _depths(seed=0, n=200):
    """Three "depths": features that hold the label, pure noise, and the label at a large scale."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n).astype("int32")
    onehot = np.eye(3, dtype="float32")[labels]
    informative = onehot + 0.3 * rng.normal(size=(n, 3)).astype("float32")
    noise = rng.normal(size=(n, 5)).astype("float32")
    scaled = 500.0 + 100.0 * informative  # like an early layer's large activations
    return [informative, noise, scaled], labels


def test_each_head_learns_only_from_its_own_depth():
    train, y = _depths(0)
    test, y_test = _depths(1)
    probes = train_probes(train, y, 3, names=["good", "noise", "scaled"], epochs=40, learning_rate=1e-2).model
    good, noise, scaled = probe_accuracies(probes, test, y_test)
    # Measured over three data/training seeds: good and scaled 0.965-1.0, noise 0.315-0.36 (chance 0.33).
    assert good > 0.9
    assert scaled > 0.9  # the Normalization layer makes the scale irrelevant
    assert noise < 0.6


def test_names_must_match_features():
    train, _ = _depths()
    with pytest.raises(ValueError, match="one name per cut point"):
        probe_model(train, 3, names=["only_one"])


def test_rows_must_match_labels():
    train, y = _depths()
    with pytest.raises(ValueError, match="one row per label"):
        train_probes([train[0][:10], train[1]], y, 3, epochs=1)


def test_heads_compute_in_float32_under_mixed_precision():
    import keras

    train, y = _depths(0)
    test, y_test = _depths(1)
    large = 1e3  # activations of about 1e3: a variance of about 1e6, past float16's largest value (65504)
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        probes = train_probes([(train[0] * large).astype("float16")], y, 3, epochs=40, learning_rate=1e-2).model
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert {probes.get_layer(f"depth_0_{part}").compute_dtype for part in ("norm", "dropout")} == {"float32"}
    [accuracy] = probe_accuracies(probes, [test[0] * large], y_test)
    # Measured with the head in float16: 0.375 (chance is 0.33); in float32, as on the unscaled features.
    assert accuracy > 0.9
