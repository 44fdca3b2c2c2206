"""Learning curves: each trained strategy follows the one BatchNorm rule, and the sets are nested."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tlkit.curves import Curves, strategy_model


def _batchnorm(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    layers = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            layers += _batchnorm(layer)
        elif isinstance(layer, keras.layers.BatchNormalization):
            layers.append(layer)
    return layers


def _moving_means_after_training_step(model, inputs):
    """How far one training-mode call (what `fit` makes at every step) moves each moving mean."""
    before = [bn.moving_mean.numpy().copy() for bn in _batchnorm(model)]
    model(inputs, training=True)
    return [float(np.abs(bn.moving_mean.numpy() - b).max()) for bn, b in zip(_batchnorm(model), before)]


@pytest.mark.parametrize("strategy", ["fine_tune_all", "fine_tune_top"])
def test_fine_tuning_strategies_keep_batchnorm_frozen(strategy, random_images):
    # The base is called with training=False, but fit overrides it: only trainable=False keeps
    # BatchNorm's statistics. Random weights (weights=None) stand in for ImageNet's here.
    model = strategy_model(strategy, "mobilenet_0.25", 32, 3, cut_layer="conv_pw_11_relu", weights=None)
    batchnorm = _batchnorm(model)
    assert batchnorm and not any(bn.trainable for bn in batchnorm)
    assert model.trainable_weights, "the other layers learn"
    if strategy == "fine_tune_all":
        inputs = random_images(16).astype("float32")
    else:  # the top blocks take the feature map of the layer below them
        inputs = np.random.default_rng(0).normal(size=(16, *model.input_shape[1:])).astype("float32")
    moved = _moving_means_after_training_step(model, inputs)
    assert max(moved) == 0.0


def test_scratch_lets_batchnorm_learn(random_images):
    model = strategy_model("scratch", "mobilenet_0.25", 32, 3)
    assert all(bn.trainable for bn in _batchnorm(model))
    moved = _moving_means_after_training_step(model, random_images(16).astype("float32"))
    assert min(moved) > 0.0


def test_strategy_model_rejects_an_unknown_strategy():
    with pytest.raises(ValueError, match="Invalid value for argument `strategy`.*frozen"):
        strategy_model("frozen", "mobilenet_0.25", 32, 3)
    with pytest.raises(ValueError, match="cut_layer"):
        strategy_model("fine_tune_top", "mobilenet_0.25", 32, 3, weights=None)


def test_crossing_needs_every_larger_size_ahead():
    curves = Curves([5, 10, 25], {"frozen": [0.5, 0.6, 0.7], "fine_tune_all": [0.6, 0.55, 0.8]}, {}, 0.1)
    assert curves.crossing("fine_tune_all") == 25
    assert curves.crossing("fine_tune_all", margin=0.2) is None


def test_learning_curves_takes_strategies_per_dataset(random_images):
    import tlkit
    from tlkit.curves import learning_curves

    def toy(seed):
        return tlkit.data.Splits(
            tlkit.from_arrays(random_images(8, seed=seed), np.repeat([0, 1], 4)),
            tlkit.from_arrays(random_images(2, seed=seed + 1), np.array([0, 1])),
            tlkit.from_arrays(random_images(4, seed=seed + 2), np.repeat([0, 1], 2)),
        )

    datasets = {"a": toy(1), "b": toy(5)}
    with pytest.raises(ValueError, match=r"Invalid value for argument `strategies`.*\['b'\]"):
        learning_curves(datasets, "mobilenet_0.25", [2], strategies={"a": ["frozen"]}, weights=None)
    chosen = {"a": ["frozen"], "b": ["frozen", "fine_tune_top"]}
    curves = learning_curves(datasets, "mobilenet_0.25", [2, 4], strategies=chosen, epochs=1, weights=None)
    assert set(curves["a"].accuracy) == {"frozen"}
    assert set(curves["b"].accuracy) == {"frozen", "fine_tune_top"}


def test_learning_curves_report_progress_and_their_clock(random_images, capsys):
    import tlkit
    from tlkit.curves import learning_curves

    toy = tlkit.data.Splits(
        tlkit.from_arrays(random_images(8, seed=1), np.repeat([0, 1], 4)),
        tlkit.from_arrays(random_images(2, seed=2), np.array([0, 1])),
        tlkit.from_arrays(random_images(4, seed=3), np.repeat([0, 1], 2)),
    )
    curves = learning_curves({"toy": toy}, "mobilenet_0.25", [2, 4], ["frozen", "fine_tune_top"], epochs=1,
                             weights=None, verbose=1)  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    # the frozen heads count as one run, then one run per size of each trained strategy
    assert [line.split(" (")[0] for line in lines] == ["run 1/3", "run 2/3", "run 3/3"]
    assert "toy, fine_tune_top, 4 images/class" in lines[2] and "0 left" in lines[2] and "so far" in lines[2]
    assert curves["toy"].clock == "CPU s"  # no GPU here: CPU seconds, and the table says so
    assert curves["toy"].table().splitlines()[0].endswith("CPU s")
    learning_curves({"toy": toy}, "mobilenet_0.25", [2], ["frozen"], weights=None)
    assert capsys.readouterr().out == ""  # verbose=0 (the default) prints nothing
