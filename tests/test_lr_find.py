"""The learning-rate range test: an exponential ramp, early stop on divergence, the model left as it was."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import tlkit
from tlkit.range_test import ExponentialRange, summarise


def small_model(optimizer=None) -> keras.Model:
    inputs = keras.Input(shape=(8,))
    x = keras.layers.Dense(16, activation="relu")(inputs)
    x = keras.layers.BatchNormalization()(x)  # moving statistics: non-trainable weights to restore
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=optimizer or keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    return model


@pytest.fixture
def data() -> tf.data.Dataset:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 1).astype("int64")
    return tf.data.Dataset.from_tensor_slices((x, y)).shuffle(96, seed=0).batch(16)


def test_learning_rate_rises_exponentially_and_is_applied(data):
    model = small_model()
    ramp = ExponentialRange(1e-5, 1e-1, 9, smoothing=0.0, diverge=1e9)
    applied = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: applied.append(float(model.optimizer.learning_rate.numpy()))
    )
    model.fit(data.repeat(), steps_per_epoch=1, epochs=9, callbacks=[ramp, record], shuffle=False, verbose=0)
    lrs = np.array(ramp.lrs)
    np.testing.assert_allclose(lrs[[0, -1]], [1e-5, 1e-1])
    np.testing.assert_allclose(lrs[1:] / lrs[:-1], 10**0.5)  # the same factor at every step
    np.testing.assert_allclose(applied, lrs, rtol=1e-6)  # what the optimizer actually used
    assert len(ramp.raw) == 9 and ramp.smoothed == ramp.raw  # smoothing 0: the raw losses


def test_range_test_leaves_model_and_optimizer_untouched(data):
    model = small_model()
    model.fit(data, epochs=1, shuffle=False, verbose=0)  # non-zero Adam moments and BatchNorm statistics
    weights = [w.numpy().copy() for w in model.weights]
    state = [v.numpy().copy() for v in model.optimizer.variables]
    result = tlkit.experiments.lr_find(model, data, min_lr=1e-6, max_lr=1e-1, steps=12)
    assert len(result.lrs) > 1
    for w, before in zip(model.weights, weights):
        np.testing.assert_array_equal(w.numpy(), before, err_msg=w.path)
    for v, before in zip(model.optimizer.variables, state):
        np.testing.assert_array_equal(v.numpy(), before, err_msg=v.path)
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(1e-3)


def test_unbuilt_optimizer_is_left_fresh(data):
    model = small_model()
    weights = [w.numpy().copy() for w in model.weights]
    tlkit.experiments.lr_find(model, data, min_lr=1e-6, max_lr=1e-2, steps=5)
    for w, before in zip(model.weights, weights):
        np.testing.assert_array_equal(w.numpy(), before)
    state = [v for v in model.optimizer.variables if "learning_rate" not in v.path]
    assert state and all(not np.any(v.numpy()) for v in state)  # iterations and moments: zero


def test_divergence_stops_early(data):
    model = small_model(keras.optimizers.SGD(1e-3))
    result = tlkit.experiments.lr_find(model, data, min_lr=1e-3, max_lr=1e6, steps=60)
    assert result.diverged
    assert len(result.lrs) < 60
    assert result.lr_at_minimum < result.lrs[-1] == result.climb
    assert result.suggestion == pytest.approx(result.climb / 10)


def test_suggestion_rule_and_range():
    lrs = np.logspace(-6, 0, 7)
    losses = np.array([2.0, 1.9, 1.8, 0.8, 0.5, 0.9, 3.0])
    result = summarise(lrs, losses, losses, False, 1e-6, 1.0)
    assert result.lr_at_minimum == pytest.approx(1e-2) and result.climb is None
    assert result.suggestion == pytest.approx(1e-3)  # never climbed: a tenth of the minimum's rate
    climbed = summarise(lrs, losses, losses, True, 1e-6, 1.0)  # stopped at the last step
    assert climbed.climb == pytest.approx(1.0)
    assert climbed.suggestion == pytest.approx(0.1)  # a tenth of where the loss climbed
    assert climbed.minimum_rule == pytest.approx(1e-3)
    flat = np.array([0.001, 0.02, 0.02, 0.02, 0.02, 0.5, 3.0])
    assert summarise(lrs, flat, flat, False, 1e-6, 1.0, warmup=2).lr_at_minimum > 1e-6  # warm-up not trusted
    assert result.steepest == pytest.approx(1e-3)  # where the loss falls fastest
    rising = np.sort(losses)  # lowest at the first step
    early = summarise(lrs, rising, rising, False, 1e-6, 1.0)
    assert early.suggestion == pytest.approx(1e-6)  # kept within the range


def test_suggestion_within_range_on_a_real_run(data):
    result = tlkit.experiments.lr_find(small_model(), data, min_lr=1e-5, max_lr=10.0, steps=20)
    assert 1e-5 <= result.suggestion <= 10.0
    expected = (result.climb if result.diverged else result.lr_at_minimum) / 10
    assert result.suggestion == pytest.approx(min(10.0, max(1e-5, expected)))
    assert result.seconds > 0
    fig = result.plot(title="range test")
    assert fig.axes[0].get_xscale() == "log"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(min_lr=1e-2, max_lr=1e-2), "`min_lr`.*below max_lr"),
        (dict(min_lr=1.0, max_lr=1e-3), "`min_lr`.*below max_lr"),
        (dict(min_lr=0.0), "`min_lr`"),
        (dict(steps=1), "`steps`.*at least two"),
        (dict(smoothing=1.0), "`smoothing`"),
        (dict(diverge=1.0), "`diverge`"),
    ],
)
def test_bad_arguments_raise_clear_errors(data, kwargs, match):
    with pytest.raises(ValueError, match=match):
        tlkit.experiments.lr_find(small_model(), data, **kwargs)


def test_uncompiled_model_and_array_data_raise(data):
    model = small_model()
    with pytest.raises(ValueError, match="not compiled"):
        tlkit.experiments.lr_find(keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)]), data)
    with pytest.raises(ValueError, match="tf.data.Dataset"):
        tlkit.experiments.lr_find(model, np.zeros((4, 8)))


def test_a_model_compiled_with_a_schedule_is_refused_with_the_fix(data):
    model = small_model()
    schedule = keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=10)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"learning-rate schedule.*tlkit.compile_model"):
        tlkit.experiments.lr_find(model, data)
