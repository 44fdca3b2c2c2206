"""Run folders: damaged or foreign ones are refused clearly, early stopping survives a resume,
and a loss or feature that becomes NaN stops the work with what to check.

In-process (no subprocess): a run is interrupted by a callback that raises after an
epoch's backup, as a kill at that point would leave it. The kills themselves, at every
step of the backup, are in test_resume.py.
"""

from __future__ import annotations

import json
import warnings

import keras
import numpy as np
import pytest

import tlkit
from tlkit.runs import RunFolderError


def _model(name="tiny", units=2, learning_rate=1e-2, optimizer=None):
    inputs = keras.Input((4, 4, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(units, activation="softmax", name="head")(x), name=name)
    if optimizer is None:
        tlkit.compile_model(model, learning_rate)
    else:
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _data(n=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 4, 4, 3)).astype(np.uint8)
    return tlkit.to_tf(tlkit.from_arrays(x, np.arange(n) % 2), 8)


class _StopAfter(keras.callbacks.Callback):
    """Interrupts the run after epoch `epoch` is backed up (it runs after tlkit's callbacks)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch, self.ran = epoch, []

    def on_epoch_begin(self, epoch, logs=None):
        self.ran.append(epoch)

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt("killed")


def test_truncated_backup_names_the_folder_and_the_fix(tmp_path):
    model, data = _model(), _data()
    tlkit.fit(model, data, data, epochs=2, workdir=tmp_path / "run", verbose=0)
    backup = tmp_path / "run" / "backup"
    weights = next(backup.glob("epoch_*.weights.h5"))
    weights.write_bytes(weights.read_bytes()[:100])  # a backup cut short (a copy that did not finish)
    with pytest.raises(RunFolderError, match="resume folder .*backup is damaged") as info:
        tlkit.fit(_model(), data, data, epochs=4, workdir=tmp_path / "run", verbose=0)
    text = str(info.value)
    assert str(backup) in text and "delete" in text and "another workdir" in text
    assert "file signature not found" in text or weights.name in text
    (backup / "state.json").write_text("{not json")
    with pytest.raises(RunFolderError, match="state.json cannot be read"):
        tlkit.fit(_model(), data, data, epochs=4, workdir=tmp_path / "run", verbose=0)


def test_folder_of_another_model_is_refused(tmp_path):
    data = _data()
    tlkit.fit(_model(), data, data, epochs=1, workdir=tmp_path / "run", verbose=0)
    wider = _model(units=3)
    with pytest.raises(RunFolderError, match="belongs to another model") as info:
        tlkit.fit(wider, data, data, epochs=2, workdir=tmp_path / "run", verbose=0)
    assert str(tmp_path / "run" / "backup") in str(info.value) and "new workdir" in str(info.value)
    keras_style = tmp_path / "keras_run" / "backup"
    keras_style.mkdir(parents=True)
    (keras_style / "training_metadata.json").write_text(json.dumps({"epoch": 1, "batch": -1}))
    with pytest.raises(RunFolderError, match="BackupAndRestore format"):
        tlkit.fit(_model(), data, data, epochs=2, workdir=tmp_path / "keras_run", verbose=0)


def test_early_stopping_count_survives_a_resume(tmp_path):
    # lr 0: nothing improves after epoch 0, so patience 2 stops after epoch 2 - resumed or not.
    data, workdir = _data(), tmp_path / "run"
    frozen = keras.optimizers.SGD(learning_rate=0.0)
    stop = _StopAfter(1)
    with pytest.raises(KeyboardInterrupt):
        tlkit.fit(_model(optimizer=frozen), data, data, epochs=10, workdir=workdir, patience=2, verbose=0,
                  callbacks=[stop])  # fmt: skip
    assert json.loads((workdir / "backup" / "state.json").read_text())["wait"] == 1
    again = _StopAfter(-1)
    history = tlkit.fit(_model(optimizer=keras.optimizers.SGD(learning_rate=0.0)), data, data, epochs=10,
                        workdir=workdir, patience=2, verbose=0, callbacks=[again])  # fmt: skip
    assert again.ran == [2]  # one more epoch without improvement: stopped (a fresh count would run 2 and 3)
    assert history.epochs == 3
    with pytest.warns(UserWarning, match="stopped early"):  # a stopped run is finished
        tlkit.fit(_model(optimizer=frozen), data, data, epochs=10, workdir=workdir, patience=2, verbose=0)


def test_early_stopping_restores_the_best_weights_after_a_resume(tmp_path):
    # lr 0, and from epoch 1 on the head is zeroed: it then predicts class 0 for every image, and
    # every validation label is 1, so epoch 0 stays the best and only its weights can be restored.
    x = np.random.default_rng(0).integers(0, 256, (16, 4, 4, 3)).astype(np.uint8)
    data = _data()
    val = tlkit.to_tf(tlkit.data.ImageSet(x, np.ones(16, np.int32), ["a", "b"]), 8)
    workdir, seen = tmp_path / "run", {}

    class Spoil(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 0:
                seen["best"] = [w.copy() for w in self.model.get_weights()]
            else:
                self.model.get_layer("head").kernel.assign(np.zeros((3, 2), np.float32))

    def run(*callbacks):
        model = _model(optimizer=keras.optimizers.SGD(learning_rate=0.0))
        history = tlkit.fit(model, data, val, epochs=10, workdir=workdir, patience=3, verbose=0,
                            callbacks=[Spoil(), *callbacks])  # fmt: skip
        return model, history

    with pytest.raises(KeyboardInterrupt):
        run(_StopAfter(1))
    model, history = run()
    assert history.epochs == 4  # epochs 1, 2, 3 without improvement
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), seen["best"]))
    assert not np.array_equal(model.get_layer("head").kernel.numpy(), 0)


def test_nan_loss_stops_training_and_keeps_the_last_good_epoch(tmp_path):
    data, workdir = _data(), tmp_path / "run"

    class Poison(keras.callbacks.Callback):  # what a too-high learning rate ends in
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                self.model.get_layer("head").kernel.assign(np.full((3, 2), np.nan, np.float32))

    with pytest.raises(FloatingPointError, match=r"loss became nan at step 1.*learning rate.*input range"):
        tlkit.fit(_model(), data, data, epochs=6, workdir=workdir, verbose=0, callbacks=[Poison()])
    assert json.loads((workdir / "backup" / "state.json").read_text())["epoch"] == 2  # epochs 0-1 kept
    resumed = _model()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # e.g. Keras's "Skipping variable loading for optimizer"
        history = tlkit.fit(resumed, data, data, epochs=4, workdir=workdir, verbose=0)
    assert int(resumed.optimizer.iterations) == 4 * 2  # Adam's state came back with the weights: 2 steps an epoch
    assert history.epochs == 4 and np.isfinite(history.history["loss"]).all()
    huge = np.full((16, 3), 3e38, np.float32)
    with pytest.raises(FloatingPointError, match="learning rate"):
        tlkit.train_head(huge * np.array([1, -1, 1], np.float32), np.arange(16) % 2, 2, epochs=3, learning_rate=0.5)


def test_extract_refuses_nan_features():
    base = tlkit.load_backbone("mobilenet_0.25", 32, weights=None)
    base.get_layer("conv1").kernel.assign(np.full(base.get_layer("conv1").kernel.shape, np.nan, np.float32))
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3)).astype(np.uint8)
    with pytest.raises(FloatingPointError, match="NaN or infinite features for 3 of 3 images.*base's weights"):
        tlkit.extract(tlkit.feature_extractor(base), images)
