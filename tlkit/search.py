"""Warm starts in a hyperparameter search: does starting a run from the last run's weights help?

`learning_rate_sweep` trains one head per learning rate on cached features, either each from
the same random initialisation (cold) or each from where the previous run ended (warm), and
records, per run, the epochs it took to reach a target accuracy on held-out data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import keras
import numpy as np

from tlkit.features import head_model


def epochs_to_reach(values: Sequence[float], target: float) -> int | None:
    """The first epoch (1-based) whose value is at least `target`; None if none is.

    Keras reports accuracies in float32, so 0.76 arrives as 0.7599999904: values within
    1e-6 below the target count as reaching it.
    """
    for epoch, value in enumerate(values, start=1):
        if value >= target - 1e-6:
            return epoch
    return None


@dataclasses.dataclass
class SweepRun:
    """One run of a sweep: its learning rate, held-out accuracy per epoch, epochs to the target."""

    learning_rate: float
    val_accuracy: list[float]
    epochs_to_target: int | None

    @property
    def best(self) -> float:
        return max(self.val_accuracy)


def learning_rate_sweep(
    features: np.ndarray,
    labels: np.ndarray,
    val: tuple[np.ndarray, np.ndarray],
    num_classes: int,
    learning_rates: Sequence[float],
    target: float,
    warm_start: bool,
    epochs: int = 30,
    batch_size: int = 32,
    seed: int = 0,
) -> list[SweepRun]:
    """Trains a softmax head on `features` once per learning rate, in order.

    Cold (`warm_start=False`): every run starts from the same random head. Warm: each run
    starts from the weights the previous run ended with. Either way each run gets a fresh
    Adam state, and the model is compiled once (the learning rate is assigned, not recompiled).
    """
    if not learning_rates:
        raise ValueError("learning_rates is empty: pass the learning rates to try, e.g. [1e-3, 3e-3, 1e-2].")
    if not 0 < target <= 1:
        raise ValueError(f"target is an accuracy in (0, 1]; got {target}.")
    keras.utils.set_random_seed(seed)
    head = head_model(features.shape[-1], num_classes, dropout=0.0)
    head.compile(optimizer=keras.optimizers.Adam(learning_rates[0]), loss="sparse_categorical_crossentropy",
                 metrics=["accuracy"])  # fmt: skip
    head.optimizer.build(head.trainable_variables)
    initial = head.get_weights()
    fresh_optimizer = [v.numpy() for v in head.optimizer.variables]
    runs = []
    for lr in learning_rates:
        if not warm_start:
            head.set_weights(initial)
        for variable, value in zip(head.optimizer.variables, fresh_optimizer):
            variable.assign(value)
        head.optimizer.learning_rate.assign(lr)
        keras.utils.set_random_seed(seed)
        result = head.fit(features, labels, validation_data=val, epochs=epochs, batch_size=batch_size, verbose=0)
        values = [float(v) for v in result.history["val_accuracy"]]
        runs.append(SweepRun(float(lr), values, epochs_to_reach(values, target)))
    return runs
