"""The learning-rate range test (fast.ai's `lr_find`): loss against a rising learning rate.

One short probe run trains the model for `steps` batches while the learning rate rises
exponentially from `min_lr` to `max_lr`, and records the loss of every batch. Too low a rate
and the loss barely moves; past a point it falls fastest; too high and it climbs and
diverges, which ends the probe early. Afterwards the model's weights and its optimizer's
state are put back exactly as they were: the probe's weights are thrown away.

It is not a warm restart. A warm restart (SGDR) raises the learning rate again at intervals
*during* training and keeps the weights, to go on from where training is; the range test is
a probe before training whose only output is the curve and a suggested learning rate.

The suggestion follows one stated rule: an order of magnitude below the learning rate at which
the loss began to climb (the smoothed loss passed `diverge` times its lowest value, where the
probe stops). A probe that never diverged falls back on a tenth of the learning rate of the
lowest smoothed loss (fast.ai's `lr_min`, kept as `minimum_rule`). On a model whose head is
already trained the loss starts near zero and stays flat until it climbs: its minimum is
wherever the batch-to-batch noise puts it, while the climb is sharp.
"""

from __future__ import annotations

import dataclasses
import math
import time

import keras
import numpy as np
import tensorflow as tf

from tlkit.checks import check_compiled
from tlkit.errors import check_int, check_number, invalid
from tlkit.train import Snapshot

BELOW = 10.0  # the suggestion is this many times below where the loss began to climb


@dataclasses.dataclass(frozen=True)
class RangeTest:
    """The result of `lr_find`: one loss per step, and the suggested learning rate.

    Attributes:
        lrs: the learning rate of each step that ran.
        losses: the smoothed loss of each step (bias-corrected exponential moving average).
        raw_losses: the loss of each step's batch, as it was.
        suggestion: `climb / 10` (`lr_at_minimum / 10` if the loss never climbed), within
            `[min_lr, max_lr]`.
        climb: the learning rate at which the loss diverged and the probe stopped; None if it
            never did within the range.
        lr_at_minimum: the learning rate where the smoothed loss was lowest.
        minimum_rule: `lr_at_minimum / 10` (fast.ai's `lr_min`), for comparison.
        steepest: the learning rate where the smoothed loss fell fastest (per log-step).
        diverged: True when the probe stopped early because the loss diverged.
        seconds: how long the probe took.
    """

    lrs: np.ndarray
    losses: np.ndarray
    raw_losses: np.ndarray
    suggestion: float
    climb: float | None
    lr_at_minimum: float
    minimum_rule: float
    steepest: float
    diverged: bool
    min_lr: float
    max_lr: float
    seconds: float

    def plot(self, ax=None, title: str | None = None):
        """Smoothed loss against learning rate (log axis), the suggestion marked. Returns the figure."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(self.lrs, self.raw_losses, color="0.75", lw=1, label="loss per batch")
        ax.plot(self.lrs, self.losses, color="C0", lw=2, label="smoothed")
        ax.axvline(self.lr_at_minimum, color="C3", ls=":", label=f"minimum {self.lr_at_minimum:.1e}")
        ax.axvline(self.suggestion, color="C2", ls="--", label=f"suggestion {self.suggestion:.1e}")
        if self.climb is not None:
            ax.axvline(self.climb, color="C1", ls="-.", label=f"loss climbs {self.climb:.1e}")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        finite = self.losses[np.isfinite(self.losses)]
        if finite.size:  # the smoothed curve sets the scale; single batches may spike above it
            ax.set_ylim(0, 1.2 * finite.max())
        ax.legend(fontsize=8)
        if title:
            ax.set_title(title)
        ax.figure.tight_layout()
        return ax.figure


class ExponentialRange(keras.callbacks.Callback):
    """Sets the optimizer's learning rate before every batch; records the loss after it.

    One batch per epoch (`fit(..., steps_per_epoch=1, epochs=steps)`), so the loss Keras
    reports at the end of a batch is that batch's loss, not a running mean. For the first
    `1 / (1 - smoothing)` steps (at most a quarter of them) the average holds too few batches
    to trust: they count neither as the lowest loss nor as divergence.
    """

    def __init__(self, min_lr: float, max_lr: float, steps: int, smoothing: float, diverge: float):
        super().__init__()
        self.warmup = min(round(1 / (1 - smoothing)), steps // 4)
        self.lrs = [min_lr * (max_lr / min_lr) ** (i / (steps - 1)) for i in range(steps)]
        self.smoothing, self.diverge = smoothing, diverge
        self.raw, self.smoothed, self.diverged = [], [], False
        self._average, self._best = 0.0, math.inf

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate = self.lrs[len(self.raw)]

    def on_train_batch_end(self, batch, logs=None):
        loss = float((logs or {}).get("loss", math.nan))
        self.raw.append(loss)
        if not math.isfinite(loss):
            self.smoothed.append(math.inf)
            self.diverged = True
            self.model.stop_training = True
            return
        self._average = self.smoothing * self._average + (1 - self.smoothing) * loss
        smooth = self._average / (1 - self.smoothing ** len(self.raw))
        self.smoothed.append(smooth)
        if len(self.raw) <= self.warmup:
            return
        self._best = min(self._best, smooth)
        if smooth > self.diverge * self._best:
            self.diverged = True
            self.model.stop_training = True


def _check_arguments(model, min_lr, max_lr, steps, smoothing, diverge) -> None:
    check_compiled(model, "the range test uses its optimizer and loss")
    if isinstance(model.optimizer.get_config().get("learning_rate"), dict):  # a schedule, serialised
        raise ValueError(
            f"Invalid value for argument `model`. Received: {model.name!r}, compiled with a learning-rate schedule "
            "(e.g. by tlkit.fine_tuning.fine_tune). Expected an optimizer with a plain learning rate, which the range "
            "test sets at every step: recompile first, e.g. tlkit.compile_model(model, 1e-3)."
        )
    check_number("min_lr", min_lr, 0, exclusive_minimum=True)
    check_number("max_lr", max_lr, 0, exclusive_minimum=True)
    if min_lr >= max_lr:
        raise invalid("min_lr", min_lr, f"a learning rate below max_lr={max_lr!r}",
                      "The range rises from min_lr to max_lr, e.g. min_lr=1e-7, max_lr=1.")  # fmt: skip
    check_int("steps", steps, 2, fix="The range needs at least two steps; 50-100 are usual.")
    check_number("smoothing", smoothing, 0, 1, exclusive_maximum=True, fix="0 keeps the raw losses; 0.9 is usual.")
    check_number("diverge", diverge, 1, exclusive_minimum=True, fix="fast.ai stops at 4x the lowest loss.")


def lr_find(
    model: keras.Model,
    data,
    min_lr: float = 1e-7,
    max_lr: float = 1.0,
    steps: int = 100,
    smoothing: float = 0.9,
    diverge: float = 4.0,
) -> RangeTest:
    """Runs the learning-rate range test on `model` and leaves the model as it was.

    Args:
        model: a compiled model, with `trainable` set as it will be trained (recompiled
            after changing it); its optimizer's learning rate must be a plain number.
        data: a `tf.data` pipeline of `(inputs, labels)` batches (`tlkit.to_tf`); it is
            repeated as needed.
        min_lr, max_lr: the first and the last learning rate; `min_lr < max_lr`.
        steps: the number of batches; the rate rises by the same factor at each.
        smoothing: the exponential moving average's weight on the past, in [0, 1).
        diverge: stop once the smoothed loss exceeds this many times its lowest value.

    Returns:
        A `RangeTest` with the learning rates, losses and the suggested learning rate.
    """
    _check_arguments(model, min_lr, max_lr, steps, smoothing, diverge)
    if not isinstance(data, tf.data.Dataset):
        raise invalid("data", type(data).__name__, "a tf.data.Dataset of (inputs, labels) batches",
                      "Build one with tlkit.to_tf(splits.train, batch_size, shuffle=True).")  # fmt: skip
    start_state = Snapshot(model)  # the learning rate too: the probe changes it every step
    probe = ExponentialRange(float(min_lr), float(max_lr), steps, float(smoothing), float(diverge))
    start = time.perf_counter()
    try:
        model.fit(data.repeat(), steps_per_epoch=1, epochs=steps, callbacks=[probe], shuffle=False, verbose=0)
    finally:
        start_state.restore()
    seconds = time.perf_counter() - start
    return summarise(
        probe.lrs[: len(probe.raw)], probe.raw, probe.smoothed, probe.diverged, min_lr, max_lr, seconds, probe.warmup
    )


def summarise(
    lrs, raw, smoothed, diverged: bool, min_lr: float, max_lr: float, seconds: float = 0.0, warmup: int = 0
) -> RangeTest:
    """The `RangeTest` of recorded losses; when `diverged`, the last step is where the loss climbed."""
    lrs, raw, smoothed = (np.asarray(a, dtype="float64") for a in (lrs, raw, smoothed))
    trusted = np.isfinite(smoothed) & (np.arange(len(smoothed)) >= min(warmup, len(smoothed) - 1))
    if not trusted.any():
        raise FloatingPointError(
            f"The loss was not finite from the first step (lr {min_lr:g}). Check the data and the model "
            "(the labels' range, the preprocessing), or lower min_lr."
        )
    at_minimum = float(lrs[trusted][int(np.argmin(smoothed[trusted]))])
    slopes = np.gradient(smoothed[trusted], np.log(lrs[trusted])) if trusted.sum() > 1 else np.zeros(1)
    steepest = float(lrs[trusted][int(np.argmin(slopes))])
    climb = float(lrs[-1]) if diverged else None
    suggestion = float(np.clip((climb if diverged else at_minimum) / BELOW, min_lr, max_lr))
    minimum_rule = float(np.clip(at_minimum / BELOW, min_lr, max_lr))
    return RangeTest(lrs, smoothed, raw, suggestion, climb, at_minimum, minimum_rule, steepest, diverged,
                     float(min_lr), float(max_lr), seconds)  # fmt: skip
