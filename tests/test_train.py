"""Two-phase training: merged history, recompiling with the fine-tune learning rate, run folders."""

from __future__ import annotations

import csv
import zipfile

import keras
import numpy as np
import pytest

import tlkit
from tlkit.train import History

BACKBONE = "mobilenet_0.25"


def test_history_addition():
    head = History({"loss": [3.0, 2.0], "val_accuracy": [0.5, 0.6]})
    tuned = History({"loss": [1.0], "val_accuracy": [0.8], "lr": [1e-5]})
    merged = head + tuned
    assert merged.history == {"loss": [3.0, 2.0, 1.0], "val_accuracy": [0.5, 0.6, 0.8], "lr": [None, None, 1e-5]}
    assert merged.epochs == 3 and merged.fine_tune_at == 2
    assert merged.best() == 0.8 and merged.last("loss") == 1.0
    assert head.epochs == 2 and head.fine_tune_at is None and head.best("val_accuracy") == 0.6
    assert History({}).epochs == 0


@pytest.fixture
def tiny_data(random_images):
    data = tlkit.from_arrays(random_images(12), np.arange(12) % 2, ["even", "odd"])
    return tlkit.to_tf(data, batch_size=6, shuffle=True), tlkit.to_tf(data, batch_size=6)


def test_fit_two_phase(live_base, tiny_data):
    model = tlkit.build_classifier(live_base, 2, BACKBONE, dropout=0)
    seen = {}
    start = {w.path: w.numpy().copy() for w in live_base.weights}

    def unfreeze(base):
        seen["learning_rate"] = float(model.optimizer.learning_rate)
        seen["optimizer"] = model.optimizer
        seen["weights"] = {w.path: w.numpy().copy() for w in base.weights}
        tlkit.unfreeze_top(base, 1, BACKBONE)

    history = tlkit.train.fit_two_phase(
        model, live_base, *tiny_data, head_epochs=2, fine_tune_epochs=1, unfreeze=unfreeze,
        head_learning_rate=1e-2, fine_tune_learning_rate=1e-4, verbose=0,
    )  # fmt: skip
    assert history.epochs == 3 and history.fine_tune_at == 2
    assert set(history.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(v is not None for values in history.history.values() for v in values)

    assert seen["learning_rate"] == pytest.approx(1e-2)  # phase one
    assert model.optimizer is not seen["optimizer"]  # recompiled for phase two
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-4)
    after = {w.path: w.numpy() for w in live_base.weights}
    changed = {p for p in after if not np.array_equal(after[p], seen["weights"][p])}
    assert changed == {"conv_dw_13/kernel", "conv_pw_13/kernel"}  # phase two: the unfrozen block only
    assert all(np.array_equal(start[p], seen["weights"][p]) for p in start)  # phase one: base untouched


def test_fit_with_workdir_logs_and_keeps_the_best_model(tiny_base, tiny_data, tmp_path):
    model = tlkit.build_classifier(tiny_base, 2, BACKBONE)
    tiny_base.trainable = False
    tlkit.compile_model(model, 1e-2)
    history = tlkit.fit(model, *tiny_data, epochs=2, workdir=tmp_path / "run", verbose=0)
    with open(tmp_path / "run" / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert {"accuracy", "loss", "val_accuracy", "val_loss"} <= set(rows[0])
    assert history.epochs == 2
    assert history.history["val_loss"] == pytest.approx([float(r["val_loss"]) for r in rows])
    assert zipfile.is_zipfile(tmp_path / "run" / "best.keras")  # the .keras format is a zip archive
    # A finished run keeps its last state: called again, it trains nothing and says so...
    weights = [w.copy() for w in model.get_weights()]
    keras.utils.set_random_seed(1)
    model.set_weights([np.zeros_like(w) for w in weights])
    with pytest.warns(UserWarning, match="holds a finished run \\(2 epochs\\).*nothing is trained"):
        again = tlkit.fit(model, *tiny_data, epochs=2, workdir=tmp_path / "run", verbose=0)
    assert again.history == history.history
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), weights))  # the finished weights
    # ...and asked for more epochs, it goes on from the last one.
    more = tlkit.fit(model, *tiny_data, epochs=3, workdir=tmp_path / "run", verbose=0)
    assert more.epochs == 3 and more.history["loss"][:2] == history.history["loss"]


def test_a_snapshot_puts_back_weights_and_optimizer_state_exactly():
    from tlkit.train import Snapshot

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.BatchNormalization()(inputs)))
    tlkit.compile_model(model, 1e-2)
    x, y = np.random.default_rng(0).normal(size=(16, 4)).astype("float32"), np.arange(16) % 2
    start = Snapshot(model)
    before = [w.numpy().copy() for w in model.weights]

    def run():
        keras.utils.set_random_seed(1)
        model.fit(x, y, epochs=2, batch_size=4, verbose=0)
        return [w.numpy().copy() for w in model.weights]

    first = run()
    model.optimizer.learning_rate.assign(0.5)
    start.restore()
    assert all(np.array_equal(a, b) for a, b in zip(before, (w.numpy() for w in model.weights)))
    assert int(model.optimizer.iterations.numpy()) == 0 and np.isclose(float(model.optimizer.learning_rate), 1e-2)
    assert all(np.array_equal(a, b) for a, b in zip(first, run()))  # the same run again, to the last bit


def test_one_head_ends_every_classifier(tiny_base):
    from tlkit.features import head_model
    from tlkit.probes import probe_model

    names = {layer.name for layer in tlkit.build_classifier(tiny_base, 3).layers}
    assert {"dropout", "head"} <= names
    assert [layer.name for layer in head_model(8, 3, hidden=(4,)).layers][1:] == [
        "hidden_1_dropout", "hidden_1", "dropout", "head"
    ]  # fmt: skip
    probes = probe_model([np.ones((4, 2))], 3, names=["early"])
    assert {"early_dropout", "early"} <= {layer.name for layer in probes.layers}
    assert probes.get_layer("early").dtype_policy.compute_dtype == "float32"


def _small_classifier(seed: int) -> keras.Model:
    tlkit.set_seed(seed)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.3)(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    tlkit.compile_model(model, 1e-2)
    return model


def count_traces(model: keras.Model) -> list:
    """Grows by one each time TensorFlow traces `model`'s training step (on other backends: stays empty)."""
    traced = []
    if keras.backend.backend() == "tensorflow":
        step = model.train_step
        model.train_step = lambda data: traced.append(1) or step(data)
    return traced


def _two_output_model(seed: int) -> keras.Model:
    tlkit.set_seed(seed)
    inputs = keras.Input((6,))
    hidden = keras.layers.Dropout(0.2)(keras.layers.Dense(5, activation="relu")(inputs))
    heads = [keras.layers.Dense(3, activation="softmax", name=f"p{k}")(hidden) for k in (1, 2)]
    model = keras.Model(inputs, heads)
    tlkit.compile_model(model, 1e-2, metrics=())
    return model


@pytest.mark.parametrize("built", [False, True])
def test_building_before_tracing_a_two_output_model_trains_exactly_as_keras_alone(built):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(32, 6)).astype("float32"), rng.integers(0, 3, 32)
    plain = _two_output_model(seed=3)
    tlkit.set_seed(4)
    plain_history = plain.fit(x, [y, y], epochs=2, batch_size=8, verbose=0).history
    model = _two_output_model(seed=3)
    traced = count_traces(model)
    if built:
        tlkit.train.build_before_tracing(model)
    tlkit.set_seed(4)
    assert model.fit(x, [y, y], epochs=2, batch_size=8, verbose=0).history == plain_history
    for mine, theirs in zip(model.weights, plain.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(mine), keras.ops.convert_to_numpy(theirs))
    if keras.backend.backend() == "tensorflow":
        assert len(traced) == (1 if built else 2)  # a loss tracker per output, created while tracing


@pytest.mark.parametrize("built", [False, True])
def test_building_before_tracing_trains_exactly_as_keras_alone(built):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 8, 8, 3)).astype("float32"), rng.integers(0, 3, 40)
    plain = _small_classifier(seed=1)
    tlkit.set_seed(2)
    plain_history = plain.fit(x, y, epochs=2, batch_size=8, verbose=0).history
    model = _small_classifier(seed=1)
    traced = count_traces(model)
    if built:
        tlkit.train.build_before_tracing(model)
        assert model.optimizer.built or keras.backend.backend() != "tensorflow"
    tlkit.set_seed(2)
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0).history
    assert history == plain_history
    for mine, theirs in zip(model.weights, plain.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(mine), keras.ops.convert_to_numpy(theirs))
    if keras.backend.backend() == "tensorflow":
        # Keras alone creates the optimizer's and the metrics' variables inside the first trace, and
        # TensorFlow traces a function that created variables again.
        assert len(traced) == (1 if built else 2)


def test_tlkit_fit_traces_the_training_step_once():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the second trace is TensorFlow's (a tf.function that created variables)")
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (16, 8, 8, 3)).astype("uint8"), rng.integers(0, 3, 16)
    model = _small_classifier(seed=0)
    traced = count_traces(model)
    train = tlkit.to_tf(tlkit.from_arrays(images, labels, ["a", "b", "c"]), batch_size=8)
    history = tlkit.fit(model, train, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    assert len(traced) == 1


def test_what_trains_is_fixed_at_the_first_fit_after_a_compile():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 4)).astype("float32"), rng.integers(0, 2, 16)
    first, second = keras.layers.Dense(3, name="first"), keras.layers.Dense(2, activation="softmax", name="second")
    model = keras.Sequential([keras.Input((4,)), first, second])
    first.trainable = False
    tlkit.compile_model(model, 1e-1)
    first.trainable = True  # after compile, before the first fit: it trains
    before = first.get_weights()[0].copy()
    model.fit(x, y, epochs=1, verbose=0)
    assert not np.array_equal(before, first.get_weights()[0])
    if keras.backend.backend() == "tensorflow":  # the course's backend: its traced step is kept
        first.trainable = False  # after a fit, without compiling again: no effect
        before = first.get_weights()[0].copy()
        model.fit(x, y, epochs=1, verbose=0)
        assert not np.array_equal(before, first.get_weights()[0])
