"""Training in two phases: the new head first, then fine-tuning at a lower learning rate.

With a `workdir`, every epoch is backed up, logged to CSV and the best model kept (see
`tlkit.runs`): a run that is interrupted (a Colab disconnect, a killed process, even mid-way
through writing a backup) continues from its last finished epoch when started again.
A loss that becomes NaN or infinite stops training with an error that says what to check.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import shutil
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import keras

from tlkit.backbones import takes_raw_pixels
from tlkit.checks import check_compiled, check_output_dtype, check_training_data
from tlkit.data import ImageSet
from tlkit.errors import check_int, check_number, invalid
from tlkit.layers import nested_layers
from tlkit.memory import batch_size_hint
from tlkit.runs import (
    NonFiniteStop,
    RunFolder,
    RunFolderError,
    RunState,
    history_of,
    load_state_weights,
    read_state,
    save_weights_atomic,
)


@dataclasses.dataclass
class History:
    """What every tlkit training function returns: per-epoch metrics and the trained model.

    As Keras's `model.fit` returns a `keras.callbacks.History` with `.history` and `.model`, so
    do `tlkit.fit`, `tlkit.train_head`, `tlkit.train_probes` and `tlkit.train.fit_two_phase`:
    `history.history` maps each metric to its per-epoch values (resumed epochs included, both
    phases merged, `fine_tune_at` marking where phase two starts) and `history.model` is the
    model that was trained (the new head, for the functions that build one).

    Example:

    ```python
    history = tlkit.train_head(features, splits.train.labels, splits.num_classes)
    head = history.model
    history.last("accuracy")  # the last epoch's training accuracy
    ```
    """

    history: dict[str, list[float]]
    fine_tune_at: int | None = None
    model: keras.Model | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def epochs(self) -> int:
        """The number of epochs recorded."""
        return len(next(iter(self.history.values()), []))

    def best(self, metric: str = "val_accuracy") -> float:
        """The highest value `metric` reached."""
        return max(self.history[metric])

    def last(self, metric: str = "val_accuracy") -> float:
        """The last epoch's value of `metric`."""
        return self.history[metric][-1]

    def __add__(self, other: History) -> History:
        keys = dict.fromkeys([*self.history, *other.history])
        merged = {
            k: self.history.get(k, [None] * self.epochs) + other.history.get(k, [None] * other.epochs) for k in keys
        }
        return History(merged, fine_tune_at=self.epochs, model=other.model or self.model)


def history_from(result, model: keras.Model) -> History:
    """A `History` of a Keras `fit` result (`keras.callbacks.History`), its values as floats."""
    return History({k: [float(v) for v in values] for k, values in result.history.items()}, model=model)


def compile_model(
    model: keras.Model,
    learning_rate: float = 1e-3,
    jit_compile: bool | str = "auto",
    metrics: Sequence[str] = ("accuracy",),
) -> None:
    """Adam, sparse categorical cross-entropy, accuracy. Call again after changing `trainable`.

    Every classifier of the course, heads and probes included, is compiled here. A model with
    several outputs (`tlkit.train_probes`) gets the same loss on each, summed.

    Keras fixes what trains at the first `fit` after a compile: after unfreezing the layers of a
    model that has trained, compile again (with a lower learning rate to fine-tune), or `fit`
    keeps training only what was trainable before.

    Args:
        model: the model to compile.
        learning_rate: Adam's learning rate.
        jit_compile: passed to `model.compile` (`"auto"`: XLA where Keras chooses it).
        metrics: the metrics `fit` reports; `()` for none (a little faster when only the
            weights matter).

    Example:

    ```python
    tlkit.compile_model(model, 1e-3)  # the head, on a frozen base
    tlkit.unfreeze_top(base, 2)
    tlkit.compile_model(model, 1e-4)  # again: the unfrozen blocks learn, at a lower rate
    ```
    """
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"Invalid value for argument `model`. Received: {type(model).__name__}. Expected a Keras model."
        )
    check_number("learning_rate", learning_rate, 0, 1, exclusive_minimum=True, fix="Typical values: 1e-3 for a new "
                 "head, 1e-5 to 1e-4 for fine-tuning.")  # fmt: skip
    if jit_compile not in (True, False, "auto"):
        raise invalid("jit_compile", jit_compile, "True, False or 'auto'")
    if isinstance(metrics, str) or not isinstance(metrics, Sequence):
        raise invalid("metrics", metrics, "a list of metric names such as ['accuracy'], or () for none")
    check_output_dtype(model)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=list(metrics) or None,
        jit_compile=jit_compile,
    )


def build_before_tracing(model: keras.Model) -> None:
    """Creates the optimizer's and the compiled loss's and metrics' variables now, not while `fit` traces.

    Keras creates them inside the first trace of the training step, and a TensorFlow `tf.function`
    that created variables is traced a second time: a new model's first `fit` then traces its step
    twice, seconds per model on a CPU (`benchmarks/benchmark_h_first_fit.py` measures it). Created
    here, eagerly, as Keras creates them (the optimizer for `model.trainable_variables` as they are
    now; the loss trackers and metrics from one batch of zeros shaped as the outputs, then reset, as
    `fit` resets them), the step is traced once and trains the same: the same variables with the same
    start values. An optimizer built already is kept as it is. A model whose loss is not given by name,
    or whose outputs have a size unknown before data, keeps Keras's lazy build. On JAX and PyTorch,
    whose `fit` traces once anyway, it does nothing. `tlkit.fit` calls it.

    Args:
        model: a compiled model, its `trainable` flags set as `fit` should train it.

    Example:

    ```python
    tlkit.compile_model(model, 1e-3)
    tlkit.train.build_before_tracing(model)
    model.fit(x, y, epochs=3)  # the training step is traced once
    ```
    """
    check_compiled(model, "before building its training state")
    if keras.backend.backend() != "tensorflow":
        return
    model.optimizer.build(model.trainable_variables)  # a no-op once built, as in Keras's own `fit`
    outputs = getattr(model, "outputs", None) or []
    shapes = [tuple(output.shape[1:]) for output in outputs]
    if not isinstance(model.loss, str) or not shapes or any(None in shape for shape in shapes):
        return
    y_pred = [keras.ops.zeros((1, *shape), dtype="float32") for shape in shapes]
    sparse = model.loss == "sparse_categorical_crossentropy"  # integer labels, one a row
    y_true = [keras.ops.zeros((1,), dtype="int32") if sparse else zeros for zeros in y_pred]
    if len(outputs) == 1:
        y_true, y_pred = y_true[0], y_pred[0]
    model.compute_loss(None, y_true, y_pred, None)  # several outputs: a loss tracker each
    model.compute_metrics(None, y_true, y_pred, None)
    model.reset_metrics()  # as `fit` does before its first epoch


class Snapshot:
    """The weights and optimizer state of a compiled model, to put back after trying something.

    A learning-rate range test, a sweep over learning rates and a learning curve each train one
    compiled model many times from the same start. Restoring a snapshot is much cheaper than
    building and compiling the model again (tracing `fit` costs seconds; a step on a CPU,
    milliseconds). Every weight is kept (BatchNorm's moving statistics too), and every optimizer
    variable: its step count, its moments and its learning rate.

    Args:
        model: a compiled model; its optimizer is built first if it was not yet.

    Example:

    ```python
    start = tlkit.train.Snapshot(model)
    for learning_rate in (1e-4, 1e-3):
        start.restore()
        model.optimizer.learning_rate.assign(learning_rate)
        model.fit(x, y, epochs=3)
    ```
    """

    def __init__(self, model: keras.Model):
        check_compiled(model, "before taking a snapshot")
        model.optimizer.build(model.trainable_variables)  # no-op once built: the state exists before the snapshot
        self.model = model
        self.weights = [keras.ops.convert_to_numpy(w).copy() for w in model.weights]
        self.optimizer_state = [keras.ops.convert_to_numpy(v).copy() for v in model.optimizer.variables]

    def restore(self) -> None:
        """Puts the model's weights and optimizer state back as they were at the snapshot."""
        for variable, value in zip(self.model.weights, self.weights):
            variable.assign(value)
        for variable, value in zip(self.model.optimizer.variables, self.optimizer_state):
            variable.assign(value)


def training_callbacks(
    workdir: str | Path | None,
    monitor: str = "val_accuracy",
    patience: int | None = None,
    state: RunState | None = None,
) -> list:
    """The callbacks `fit` trains with: stop on NaN/inf, then the run's state (`tlkit.runs.RunFolder`).

    With a `workdir`, the state is backed up after every epoch (atomically: a kill at any
    moment leaves the last finished epoch), the metrics go to `log.csv` and the best model
    by `monitor` to `best.keras`; `patience` stops early, and its count survives a resume.
    """
    return [NonFiniteStop(), RunFolder(Path(workdir) if workdir is not None else None, monitor, patience, state)]


def read_log(path: str | Path) -> dict[str, list[float]]:
    """The per-epoch metrics of a `log.csv` (the one a workdir holds), as lists of floats."""
    path = Path(path)
    if not path.exists():
        return {}
    with path.open() as f:
        rows = [r for r in csv.DictReader(f) if None not in r.values()]  # a row cut short is no epoch
    if rows and "epoch" in rows[0]:
        # An epoch logged twice keeps its last row.
        rows = sorted({int(r["epoch"]): r for r in rows}.values(), key=lambda r: int(r["epoch"]))
    return {k: [float(r[k]) for r in rows] for k in (rows[0] if rows else {}) if k != "epoch"}


def _check_fit_arguments(model, epochs, initial_epoch, workdir, patience) -> None:
    check_compiled(model, "and again after changing `trainable`")
    check_output_dtype(model)
    check_int("epochs", epochs, 1)
    check_int("initial_epoch", initial_epoch, 0, epochs - 1, fix=f"It must be below epochs={epochs}: "
              "epochs is the number of the last epoch, not a count of more epochs.")  # fmt: skip
    if patience is not None:
        check_int("patience", patience, 1, fix="Pass None for no early stopping.")
    if workdir is not None and not isinstance(workdir, (str, os.PathLike)):
        raise invalid("workdir", workdir, "a folder path (str or pathlib.Path) or None")


def fit(
    model: keras.Model,
    train,
    val=None,
    epochs: int = 5,
    initial_epoch: int = 0,
    workdir: str | Path | None = None,
    patience: int | None = None,
    verbose: int | str = "auto",
    **fit_kwargs,
) -> History:
    """`model.fit` with the standard callbacks; the history covers resumed epochs too.

    Args:
        model: a compiled model (`compile_model`).
        train: a `tf.data` pipeline of `(images, labels)` batches (`tlkit.to_tf`), or images
            with `y=labels`.
        val: validation data in the same form (or `(images, labels)`), or None.
        epochs: the number of the last epoch, as in Keras (not a count of more epochs).
        initial_epoch: the epoch to start at (e.g. after a first phase).
        workdir: a folder that makes the run resumable: started again after a crash or a
            kill, it goes on from the last finished epoch. A run that finished returns its
            history without training (pass more `epochs` to go on, or another folder).
        patience: early stopping after this many epochs without improvement, restoring the
            best weights.

    Raises:
        FloatingPointError: the loss or a metric became NaN or infinite.
        tlkit.runs.RunFolderError: `workdir` is damaged or holds a run of another model.

    Returns:
        The `History` of every epoch of the run, resumed ones included.

    Example:

    ```python
    history = tlkit.fit(model, tlkit.to_tf(splits.train, 32, shuffle=True), epochs=5,
                        workdir="runs/head")  # run again after a crash: it resumes
    ```
    """
    _check_fit_arguments(model, epochs, initial_epoch, workdir, patience)
    monitor = "val_accuracy" if val is not None else "accuracy"
    if not hasattr(train, "__array__"):  # a tf.data pipeline or PyDataset shuffles itself
        fit_kwargs.setdefault("shuffle", False)
    for role, data in (("train", train), ("validation", val)):
        if isinstance(data, ImageSet):
            raise TypeError(
                f"The {role} data is an ImageSet; pass it as a tf.data pipeline: tlkit.to_tf(data, batch_size) "
                "(or train, val, test = splits.to_tf(batch_size))."
            )
    raw_pixels = takes_raw_pixels(model)
    batch_size = check_training_data(model, train, val, fit_kwargs.get("y"), raw_pixels) or fit_kwargs.get("batch_size")
    workdir = Path(workdir) if workdir is not None else None
    state = None
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        state = read_state(workdir, model)
        if state is not None and (state.stopped or state.epoch >= epochs):
            load_state_weights(model, workdir, state)
            warnings.warn(
                f"{workdir} holds a finished run ({state.epoch} epochs{', stopped early' if state.stopped else ''}): "
                "its weights are loaded and nothing is trained. Pass more epochs to go on, another workdir, or "
                f"tlkit.train.clear({str(workdir)!r}) to train again from scratch.",
                stacklevel=2,
            )
            return History(history_of(state), model=model)
        if state is not None:
            initial_epoch = state.epoch
    callbacks = training_callbacks(workdir, monitor, patience, state)
    build_before_tracing(model)
    with batch_size_hint(batch_size):
        result = model.fit(
            train,
            validation_data=val,
            epochs=epochs,
            initial_epoch=initial_epoch,
            callbacks=callbacks + list(fit_kwargs.pop("callbacks", [])),
            verbose=verbose,
            **fit_kwargs,
        )
    run = next(c.state for c in callbacks if isinstance(c, RunFolder))
    if run is not None and run.epochs:
        return History(history_of(run), model=model)
    return history_from(result, model)


def fit_two_phase(
    model: keras.Model,
    base: keras.Model,
    train,
    val,
    head_epochs: int,
    fine_tune_epochs: int,
    unfreeze: Callable[[keras.Model], None],
    head_learning_rate: float = 1e-3,
    fine_tune_learning_rate: float = 1e-5,
    workdir: str | Path | None = None,
    jit_compile: bool | str = "auto",
    verbose: int | str = "auto",
) -> History:
    """Trains the head on a frozen base, then unfreezes part of the base and fine-tunes.

    `unfreeze(base)` chooses what learns in phase two (e.g.
    `lambda b: tlkit.unfreeze_top(b, 2, "mobilenet_0.25")`). The model is recompiled with
    `fine_tune_learning_rate` in between: a model that has trained keeps training its old
    trainable weights until it is compiled again.
    """
    check_int("head_epochs", head_epochs, 1)
    check_int("fine_tune_epochs", fine_tune_epochs, 1)
    if not callable(unfreeze):
        raise invalid("unfreeze", unfreeze, "a function of the base, e.g. lambda b: tlkit.unfreeze_top(b, 2)")
    if not isinstance(model, keras.Model) or base not in nested_layers(model):
        raise ValueError(
            f"Invalid value for argument `base`. Received: {getattr(base, 'name', base)!r}, which is not a layer of "
            f"{getattr(model, 'name', model)!r}. Expected the base the model was built on "
            "(tlkit.build_classifier(base, ...)): freezing another model changes nothing in this one."
        )
    check_number("fine_tune_learning_rate", fine_tune_learning_rate, 0, 1, exclusive_minimum=True)
    workdir = Path(workdir) if workdir is not None else None
    done = workdir / "head_done.weights.h5" if workdir is not None else None
    base.trainable = False
    compile_model(model, head_learning_rate, jit_compile)
    if done is not None and done.exists():
        try:
            model.load_weights(str(done))
        except Exception as error:  # noqa: BLE001 (whatever h5py or Keras raise: the file is unusable)
            raise RunFolderError(
                f"The resume folder {workdir} is damaged: {done.name} cannot be loaded ({str(error)[:200]}). "
                f"Received: workdir={str(workdir)!r}. Delete {done} to redo phase one from its own backup, or "
                "pass another workdir."
            ) from None
        head = History(read_log(workdir / "head" / "log.csv"), model=model)
    else:
        head = fit(model, train, val, head_epochs, workdir=workdir and workdir / "head", verbose=verbose)
        if done is not None:
            save_weights_atomic(model, done)
    unfreeze(base)
    compile_model(model, fine_tune_learning_rate, jit_compile)
    tuned = fit(
        model,
        train,
        val,
        head_epochs + fine_tune_epochs,
        initial_epoch=head_epochs,
        workdir=workdir and workdir / "fine_tune",
        verbose=verbose,
    )
    return head + tuned


def clear(workdir: str | Path) -> None:
    """Deletes a run folder, to start that run from scratch."""
    shutil.rmtree(workdir, ignore_errors=True)
