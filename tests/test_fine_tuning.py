"""fine_tune: the rate each variable really learns at, the rates by block, and the two phases end to end."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import tlkit
from tlkit.fine_tuning import DiscriminativeAdam, block_learning_rates, fine_tune, learning_rate_schedule
from tlkit.train import History


def two_layers() -> keras.Model:
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(4, name="early")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, name="late")(hidden))


FACTORS = {"early/kernel": 0.01, "early/bias": 0.1, "late/kernel": 0.5}  # late/bias: the default factor, 1


def test_variable_paths_are_the_layer_and_variable_names():
    assert [v.path for v in two_layers().weights] == ["early/kernel", "early/bias", "late/kernel", "late/bias"]


def test_each_variable_moves_by_the_learning_rate_times_its_factor():
    """Adam's first step moves every parameter by about the learning rate, whatever its gradient's size."""
    model = two_layers()
    optimizer = DiscriminativeAdam(FACTORS, learning_rate=1e-2)
    before = [v.numpy().copy() for v in model.trainable_variables]
    scales = (1.0, 1e-2, 30.0, 0.2)  # very different gradient sizes: the step does not depend on them
    gradients = [np.full(v.shape, s, "float32") for v, s in zip(model.trainable_variables, scales)]
    optimizer.apply(gradients, model.trainable_variables)
    for variable, start in zip(model.trainable_variables, before):
        moved = start - variable.numpy()
        np.testing.assert_allclose(moved, 1e-2 * FACTORS.get(variable.path, 1.0), rtol=1e-3, err_msg=variable.path)


def test_the_factors_hold_inside_a_compiled_training_step():
    model = two_layers()
    model.compile(DiscriminativeAdam(FACTORS, learning_rate=1e-2), "mse", jit_compile=False)
    before = {v.path: v.numpy().copy() for v in model.trainable_variables}
    x = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
    model.fit(x, np.ones((8, 2), "float32") * 5, batch_size=8, epochs=1, verbose=0, shuffle=False)
    for variable in model.trainable_variables:
        step = np.median(np.abs(before[variable.path] - variable.numpy()))
        np.testing.assert_allclose(step, 1e-2 * FACTORS.get(variable.path, 1.0), rtol=0.02, err_msg=variable.path)


def test_block_learning_rates_are_geometric_from_the_first_block_to_the_last(tiny_base):
    rates = block_learning_rates(tiny_base, 1e-3)
    assert set(rates) == {v.path for v in tiny_base.weights}
    assert rates["conv1/kernel"] == pytest.approx(1e-5) and rates["conv_pw_13/kernel"] == pytest.approx(1e-3)
    ends = tlkit.block_ends(tiny_base)  # conv1_relu, conv_pw_1_relu, ..., conv_pw_13_relu
    by_block = [rates["conv1/kernel"]] + [rates[f"conv_pw_{i}/kernel"] for i in range(1, len(ends))]
    ratios = np.array(by_block[1:]) / np.array(by_block[:-1])
    np.testing.assert_allclose(ratios, 100 ** (1 / (len(ends) - 1)), rtol=1e-9)  # geometric, rising
    assert rates["conv_dw_5/kernel"] == rates["conv_pw_5/kernel"] == rates["conv_pw_5_bn/gamma"]
    custom = block_learning_rates(tiny_base, 1e-2, lr_min=1e-3)
    assert min(custom.values()) == pytest.approx(1e-3) and max(custom.values()) == pytest.approx(1e-2)


def test_the_optimizer_round_trips_through_its_config(tmp_path):
    schedule = learning_rate_schedule("one_cycle", 1e-3, steps=10)
    optimizer = DiscriminativeAdam(FACTORS, learning_rate=schedule, default_factor=0.5, beta_1=0.8)
    again = DiscriminativeAdam.from_config(optimizer.get_config())
    assert again.factors == FACTORS and again.default_factor == 0.5 and again.beta_1 == 0.8
    assert again.get_config()["learning_rate"] == optimizer.get_config()["learning_rate"]
    assert isinstance(keras.optimizers.deserialize(keras.optimizers.serialize(optimizer)), DiscriminativeAdam)
    by_function = DiscriminativeAdam(lambda path: 0.1 if path.startswith("early/") else None)
    with pytest.raises(ValueError, match=r"function.*Build it first"):
        by_function.get_config()
    model = two_layers()
    by_function.build(model.trainable_variables)
    assert by_function.get_config()["factors"] == {"early/kernel": 0.1, "early/bias": 0.1, "late/kernel": 1.0,
                                                   "late/bias": 1.0}  # fmt: skip
    model.compile(DiscriminativeAdam(FACTORS), "mse")
    model.optimizer.build(model.trainable_variables)  # saved with its state, as after training
    model.save(tmp_path / "model.keras")
    assert keras.models.load_model(tmp_path / "model.keras").optimizer.factors == FACTORS


def test_schedules_warm_up_then_decay():
    one_cycle = learning_rate_schedule("one_cycle", 1e-3, steps=100, pct_start=0.3, div=5)
    rates = [float(one_cycle(step)) for step in (0, 30, 100)]
    assert rates[0] == pytest.approx(2e-4) and rates[1] == pytest.approx(1e-3) and rates[2] == pytest.approx(1e-8)
    cosine = learning_rate_schedule("cosine", 1e-3, steps=100)
    assert float(cosine(0)) == pytest.approx(1e-3) and float(cosine(100)) == pytest.approx(0, abs=1e-12)


def test_fine_tune_runs_both_phases_and_keeps_batchnorm_frozen(live_base, random_images):
    model = tlkit.build_classifier(live_base, 2)
    images, labels = random_images(16), np.arange(16) % 2
    history = fine_tune(model, live_base, (images, labels), epochs=1, batch_size=8, validation_data=(images[:8],
                        labels[:8]), jit_compile=False, verbose=0)  # fmt: skip
    assert isinstance(history, History) and history.model is model
    assert history.epochs == 2 and history.fine_tune_at == 1
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history.history)
    assert isinstance(model.optimizer, DiscriminativeAdam) and model.optimizer.factors["conv1/kernel"] == 0.01
    batchnorm = [layer for layer in live_base.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert batchnorm and not any(layer.trainable for layer in batchnorm)
    assert live_base.get_layer("conv1").trainable and live_base.get_layer("conv_pw_13").trainable


def test_gradual_unfreezing_opens_one_more_block_each_epoch(live_base, random_images):
    model = tlkit.build_classifier(live_base, 2)
    data = (random_images(8), np.arange(8) % 2)
    history = fine_tune(model, live_base, data, epochs=2, freeze_epochs=0, gradual=True, schedule="cosine",
                        batch_size=8, jit_compile=False, verbose=0)  # fmt: skip
    assert history.epochs == 2 and history.fine_tune_at == 0
    assert live_base.get_layer("conv_pw_13").trainable and live_base.get_layer("conv_pw_12").trainable
    assert not live_base.get_layer("conv_pw_11").trainable and not live_base.get_layer("conv1").trainable
    assert not live_base.get_layer("conv_pw_13_bn").trainable


def test_bad_arguments_fail_before_any_training(tiny_base, random_images, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(tlkit.fine_tuning, "fit", no_training)
    model = tlkit.build_classifier(tiny_base, 2)
    data = (random_images(8), np.arange(8) % 2)
    cases = [
        ({"epochs": 0}, r"epochs=0.*integer >= 1"),
        ({"epochs": 1, "schedule": "one-cycle"}, r"schedule='one-cycle'.*Did you mean 'one_cycle'"),
        ({"epochs": 1, "lr_mult": 0.5}, r"lr_mult=0.5.*>= 1"),
        ({"epochs": 1, "base_lr": 0}, r"base_lr=0.*> 0"),
        ({"epochs": 1, "freeze_epochs": -1}, r"freeze_epochs=-1"),
        ({"epochs": 1, "gradual": "yes"}, r"gradual='yes'.*True or False"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            fine_tune(model, tiny_base, data, **kwargs)
    other = tlkit.load_backbone("mobilenet_0.25", 32, weights=None)
    with pytest.raises(ValueError, match=r"not a layer of"):
        fine_tune(model, other, data, 1)
    with pytest.raises(ValueError, match=r"factors\['conv1/kernel'\]"):
        DiscriminativeAdam({"conv1/kernel": -1.0})
    with pytest.raises(ValueError, match=r"lr_min.*at most lr_max"):
        block_learning_rates(tiny_base, 1e-3, lr_min=1e-2)
    assert tiny_base.trainable and all(layer.trainable for layer in tiny_base.layers)  # nothing was frozen
