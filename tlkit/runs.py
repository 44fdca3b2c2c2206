"""A training run's folder: a backup after every epoch that a kill at any moment cannot break.

`workdir/backup/state.json` is the run's one commit point: it names the weight file of the
last finished epoch (model and optimizer, `epoch_NNNN.weights.h5`) and holds what else the
run needs to go on: the per-epoch metrics and the early-stopping state (best value, best
epoch, epochs without improvement). Every file is written under a temporary name and then
renamed over the old one (`os.replace`, atomic on POSIX and Windows), and the state is
renamed last: a run killed at any moment, mid-write included, leaves the state of its last
finished epoch and the weight file that state names. `workdir/log.csv` (the metrics) and
`workdir/best.keras` (the best model) are rewritten the same way.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
import os
from pathlib import Path

import keras
import numpy as np

STATE_FILE = "state.json"
FORMAT = 1


def fingerprint(model: keras.Model) -> str:
    """A short hash of the model's weight shapes and which of them train: what a backup must match."""
    parts = [(tuple(w.shape), str(w.dtype)) for w in model.weights]
    parts.append(("trainable", len(model.trainable_weights)))
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:16]


@dataclasses.dataclass
class RunState:
    """Where a run stands after its last finished epoch."""

    epoch: int = 0  # the next epoch to run (= the number of the last finished one + 1)
    weights: str | None = None  # file in backup/ holding model and optimizer after that epoch
    fingerprint: str = ""
    history: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    epochs: list[int] = dataclasses.field(default_factory=list)  # the epoch number of each history row
    best: float | None = None
    best_epoch: int | None = None
    wait: int = 0  # epochs since the best one
    best_weights: str | None = None  # file in backup/ with the best epoch's weights (early stopping only)
    stopped: bool = False  # early stopping ended the run
    finished: bool = False
    format: int = FORMAT


def _fsync(path: Path) -> None:
    """Flushes a written file to disk before it is renamed into place."""
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".tmp_{path.name}")
    tmp.write_bytes(data)
    _fsync(tmp)
    os.replace(tmp, path)


def save_weights_atomic(model: keras.Model, path: Path) -> None:
    """`model.save_weights(path)` that leaves either the old file or the complete new one."""
    tmp = path.with_name(f".tmp_{path.name}")  # still ends in .weights.h5, as Keras requires
    model.save_weights(str(tmp))
    _fsync(tmp)
    os.replace(tmp, path)


def save_model_atomic(model: keras.Model, path: Path) -> None:
    """`model.save(path)` (a `.keras` file) that leaves either the old file or the complete new one."""
    tmp = path.with_name(f".tmp_{path.name}")
    model.save(str(tmp))
    _fsync(tmp)
    os.replace(tmp, path)


class RunFolderError(ValueError):
    """A run folder that cannot be resumed: damaged, or made by another model."""


def read_state(workdir: Path, model: keras.Model) -> RunState | None:
    """The state of the run in `workdir`, or None for a new run; raises `RunFolderError` if it cannot resume."""
    backup = workdir / "backup"
    path = backup / STATE_FILE
    restart = (
        f"To start this run again from epoch 0, delete {backup} (tlkit.train.clear({str(workdir)!r}) deletes the "
        "whole run); to keep it, pass another workdir."
    )
    if not path.exists():
        if (backup / "training_metadata.json").exists():
            raise RunFolderError(
                f"The resume folder {backup} holds a backup in Keras's BackupAndRestore format, not tlkit's "
                f"(no {STATE_FILE}). Received: workdir={str(workdir)!r}. {restart}"
            )
        return None  # no epoch finished yet (at most the files of the first one, half written)
    try:
        raw = json.loads(path.read_text())
        fields = {f.name for f in dataclasses.fields(RunState)}
        state = RunState(**{k: v for k, v in raw.items() if k in fields})
        int(state.epoch)
    except (OSError, ValueError, TypeError) as error:
        raise RunFolderError(
            f"The resume folder {backup} is damaged: {path.name} cannot be read ({error}). "
            f"Received: workdir={str(workdir)!r}. {restart}"
        ) from None
    if state.fingerprint != fingerprint(model):
        raise RunFolderError(
            f"The resume folder {backup} belongs to another model: its backup has other weight shapes or another "
            f"set of trainable layers than {model.name!r}. Received: workdir={str(workdir)!r}. Expected the folder "
            f"of a run of this model. Pass a new workdir for this model. {restart}"
        )
    named = [state.weights, *([state.best_weights] if state.best_weights else [])]
    missing = [name for name in named if name is None or not (backup / name).is_file()]
    if missing:
        raise RunFolderError(
            f"The resume folder {backup} is damaged: {STATE_FILE} names {missing[0]}, which is missing. "
            f"Received: workdir={str(workdir)!r}. {restart}"
        )
    return state


def load_state_weights(model: keras.Model, workdir: Path, state: RunState) -> None:
    """Loads the model and optimizer of `state`; raises `RunFolderError` naming the folder if it fails."""
    backup = workdir / "backup"
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and not optimizer.built:  # else Keras skips the saved optimizer state
        optimizer.build(model.trainable_variables)
    try:
        model.load_weights(str(backup / state.weights))
    except Exception as error:  # noqa: BLE001 (h5py's OSError, "file signature not found"; a shape ValueError...)
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise RunFolderError(
            f"The resume folder {backup} is damaged: {state.weights} cannot be loaded ({first}). "
            f"Received: workdir={str(workdir)!r}. To start this run again from epoch 0, delete {backup}; "
            "to keep it, pass another workdir."
        ) from None


def write_log(path: Path, state: RunState) -> None:
    """Writes the metrics of every finished epoch as CSV (epoch column first), atomically."""
    keys = sorted(state.history)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["epoch", *keys])
    for row, epoch in enumerate(state.epochs):
        writer.writerow([epoch, *(repr(state.history[k][row]) for k in keys)])
    _write_atomic(path, out.getvalue().encode())


class NonFiniteStop(keras.callbacks.TerminateOnNaN):
    """Keras's `TerminateOnNaN(raise_error=True)`, for the metrics too, with what to check.

    Keras would train on (every later step is NaN too). `TerminateOnNaN(raise_error=True)`
    raises as soon as the loss is NaN or infinite, before other callbacks clean up (so a
    workdir keeps its last finished epoch); this one also watches every metric, checks at
    the end of every epoch too, and raises a `FloatingPointError` that names the learning
    rate to lower and the inputs to check.
    """

    def __init__(self, learning_rate_hint: str = ""):
        super().__init__(raise_error=True)
        self.learning_rate_hint = learning_rate_hint

    def _check(self, logs, where: str) -> None:
        for key, value in (logs or {}).items():
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            if not math.isfinite(number):
                lr = self.learning_rate_hint or _learning_rate(self.model)
                raise FloatingPointError(
                    f"Training stopped: {key} became {number} {where}. Received: non-finite {key}. Expected finite "
                    f"values. Check the learning rate first (now {lr}; try 10x lower), then the input range "
                    "(tlkit models take 0-255 RGB images: no NaN, no huge values) and the labels. With a workdir, "
                    "the last finished epoch is kept: lower the learning rate and run again to resume from it."
                )

    def on_batch_end(self, batch, logs=None):
        self._check(logs, f"at step {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs, f"at the end of epoch {epoch}")


def _learning_rate(model) -> str:
    try:
        return f"{float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)):g}"
    except Exception:  # noqa: BLE001 (a schedule, or an optimizer without one: only a hint is lost)
        return "unknown"


class RunFolder(keras.callbacks.Callback):
    """Keeps a run's state after every epoch: history, early stopping and (with a workdir) backups.

    Args:
        workdir: the run folder, or None to keep the state in memory only.
        monitor: the metric early stopping and the best model watch.
        patience: stop after this many epochs without improvement (None: never).
        state: the state to resume from (`read_state`), or None for a new run.
    """

    def __init__(self, workdir: Path | None, monitor: str, patience: int | None, state: RunState | None = None):
        super().__init__()
        self.workdir = workdir
        self.monitor = monitor
        self.patience = patience
        self.mode = "max" if "acc" in monitor else "min"
        self.state = state
        self._best_weights = None

    def _improved(self, value: float) -> bool:
        best = self.state.best
        return best is None or (value > best if self.mode == "max" else value < best)

    def on_train_begin(self, logs=None):
        if self.workdir is not None:  # what a kill mid-write left behind
            for leftover in [*self.workdir.glob(".tmp_*"), *(self.workdir / "backup").glob(".tmp_*")]:
                leftover.unlink(missing_ok=True)
        if self.state is None:
            self.state = RunState(fingerprint=fingerprint(self.model))
        elif self.workdir is not None:
            load_state_weights(self.model, self.workdir, self.state)
            write_log(self.workdir / "log.csv", self.state)  # drops rows of epochs after the backup
            self.state.finished = False  # going on to more epochs

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        state = self.state
        rows = len(state.epochs)
        state.epochs.append(int(epoch))
        for key in dict.fromkeys([*state.history, *logs]):
            values = state.history.setdefault(key, [float("nan")] * rows)  # a metric that appeared late
            values.append(float(logs.get(key, float("nan"))))
        value = logs.get(self.monitor)
        improved = value is not None and self._improved(float(value))
        if improved:
            state.best, state.best_epoch, state.wait = float(value), int(epoch), 0
        else:
            state.wait += 1
        state.epoch = int(epoch) + 1
        if self.patience and state.wait >= self.patience:
            state.stopped = True
            self.model.stop_training = True
        if improved and self.patience:
            self._keep_best(int(epoch))
        if self.workdir is not None:
            if improved:
                save_model_atomic(self.model, self.workdir / "best.keras")
            self._commit()

    def _keep_best(self, epoch: int) -> None:
        if self.workdir is None:
            self._best_weights = self.model.get_weights()
        else:  # on disk, named in the state, so that a resumed run can still restore it
            (self.workdir / "backup").mkdir(parents=True, exist_ok=True)
            self.state.best_weights = f"best_{epoch:04d}.weights.h5"
            save_weights_atomic(self.model, self.workdir / "backup" / self.state.best_weights)

    def _commit(self) -> None:
        """Weights first, then the state that names them (the commit), then the log; old weights last."""
        backup = self.workdir / "backup"
        backup.mkdir(parents=True, exist_ok=True)
        self.state.weights = f"epoch_{self.state.epoch:04d}.weights.h5"
        save_weights_atomic(self.model, backup / self.state.weights)
        _write_atomic(backup / STATE_FILE, json.dumps(dataclasses.asdict(self.state)).encode())
        write_log(self.workdir / "log.csv", self.state)
        for old in [*backup.glob("epoch_*.weights.h5"), *backup.glob("best_*.weights.h5")]:
            if old.name not in (self.state.weights, self.state.best_weights):  # the state names the new files now
                old.unlink(missing_ok=True)

    def on_train_end(self, logs=None):
        if self.patience and self.state.stopped and self.state.best_epoch is not None:
            self._restore_best()
        if self.workdir is not None and not self.state.finished:
            self.state.finished = True
            self._commit()

    def _restore_best(self) -> None:
        if self._best_weights is not None:
            self.model.set_weights(self._best_weights)
        elif self.workdir is not None and self.state.best_weights:
            self.model.load_weights(str(self.workdir / "backup" / self.state.best_weights))


def history_of(state: RunState) -> dict[str, list[float]]:
    """The metrics of a run state, as lists of floats."""
    return {k: [float(v) for v in np.asarray(values, float)] for k, values in state.history.items()}
