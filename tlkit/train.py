"""Training in two phases: the new head first, then fine-tuning at a lower learning rate.

With a `workdir`, every epoch is backed up (`keras.callbacks.BackupAndRestore`), logged to
CSV and the best model kept (`ModelCheckpoint`): a run that is interrupted (a Colab
disconnect, a killed process) continues from its last finished epoch when started again.
"""

from __future__ import annotations

import csv
import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path

import keras

from tlkit.checks import check_training_data
from tlkit.memory import batch_size_hint


@dataclasses.dataclass
class History:
    """Per-epoch metrics of one run, both phases merged; `fine_tune_at` marks phase two."""

    history: dict[str, list[float]]
    fine_tune_at: int | None = None

    @property
    def epochs(self) -> int:
        return len(next(iter(self.history.values()), []))

    def best(self, metric: str = "val_accuracy") -> float:
        return max(self.history[metric])

    def last(self, metric: str = "val_accuracy") -> float:
        return self.history[metric][-1]

    def __add__(self, other: History) -> History:
        keys = dict.fromkeys([*self.history, *other.history])
        merged = {k: self.history.get(k, [None] * self.epochs) + other.history.get(k, [None] * other.epochs) for k in keys}
        return History(merged, fine_tune_at=self.epochs)


def compile_model(model: keras.Model, learning_rate: float = 1e-3, jit_compile: bool | str = "auto") -> None:
    """Adam, sparse categorical cross-entropy, accuracy. Call again after changing `trainable`."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )


def training_callbacks(workdir: str | Path | None, monitor: str = "val_accuracy", patience: int | None = None) -> list:
    """BackupAndRestore + CSVLogger + best-model ModelCheckpoint in `workdir` (and EarlyStopping)."""
    callbacks = []
    if patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, patience=patience, restore_best_weights=True))
    if workdir is None:
        return callbacks
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "log.csv"
    resuming = (workdir / "backup").exists()
    if not resuming and log.exists():
        log.unlink()  # a finished or never-started run: start the log afresh
    best_so_far = max(read_log(log).get(monitor, []) or [None], key=lambda v: -1 if v is None else v)
    # The backup goes last: a run killed before it finishes repeats the epoch, and `read_log`
    # keeps the repeat's row, instead of skipping an epoch the log never saw.
    callbacks += [
        keras.callbacks.CSVLogger(str(log), append=True),
        keras.callbacks.ModelCheckpoint(
            str(workdir / "best.keras"),
            monitor=monitor,
            mode="max" if "acc" in monitor else "min",
            save_best_only=True,
            initial_value_threshold=best_so_far,
        ),
        keras.callbacks.BackupAndRestore(str(workdir / "backup")),
    ]
    return callbacks


def read_log(path: str | Path) -> dict[str, list[float]]:
    """The per-epoch metrics that `keras.callbacks.CSVLogger` wrote, as lists of floats."""
    path = Path(path)
    if not path.exists():
        return {}
    with path.open() as f:
        rows = list(csv.DictReader(f))
    if rows and "epoch" in rows[0]:
        # An epoch logged twice (killed after logging, before its backup) keeps its last row.
        rows = sorted({int(r["epoch"]): r for r in rows}.values(), key=lambda r: int(r["epoch"]))
    return {k: [float(r[k]) for r in rows] for k in (rows[0] if rows else {}) if k != "epoch"}


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
    """`model.fit` with the standard callbacks; the history covers resumed epochs too."""
    monitor = "val_accuracy" if val is not None else "accuracy"
    if not hasattr(train, "__array__"):  # a tf.data pipeline or PyDataset shuffles itself
        fit_kwargs.setdefault("shuffle", False)
    batch_size = check_training_data(model, train, val, fit_kwargs.get("y")) or fit_kwargs.get("batch_size")
    # Keras keeps the epoch that BackupAndRestore restored on the model (`_initial_epoch`) and
    # starts every later `fit` there; clear it so each call starts where it is told to.
    model._initial_epoch = None
    try:
        with batch_size_hint(batch_size):
            result = model.fit(
                train,
                validation_data=val,
                epochs=epochs,
                initial_epoch=initial_epoch,
                callbacks=training_callbacks(workdir, monitor, patience) + list(fit_kwargs.pop("callbacks", [])),
                verbose=verbose,
                **fit_kwargs,
            )
    finally:
        model._initial_epoch = None
    logged = read_log(Path(workdir) / "log.csv") if workdir is not None else {}
    return History(logged or {k: [float(v) for v in vals] for k, vals in result.history.items()})


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
    `fine_tune_learning_rate` in between: Keras reads `trainable` at compile time.
    """
    workdir = Path(workdir) if workdir is not None else None
    done = workdir / "head_done.weights.h5" if workdir is not None else None
    base.trainable = False
    compile_model(model, head_learning_rate, jit_compile)
    if done is not None and done.exists():
        model.load_weights(str(done))
        head = History(read_log(workdir / "head" / "log.csv"))
    else:
        head = fit(model, train, val, head_epochs, workdir=workdir and workdir / "head", verbose=verbose)
        if done is not None:
            model.save_weights(str(done))
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
