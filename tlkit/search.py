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

from tlkit.checks import check_feature_data
from tlkit.errors import check_int, check_number, invalid
from tlkit.features import head_model
from tlkit.train import Snapshot, compile_model


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
    if isinstance(learning_rates, (str, bytes)) or not isinstance(learning_rates, Sequence) or not learning_rates:
        raise invalid("learning_rates", learning_rates, "a non-empty list of learning rates, e.g. [1e-3, 3e-3, 1e-2]")
    for lr in learning_rates:
        check_number("learning_rates", lr, 0, 1, exclusive_minimum=True)
    check_number("target", target, 0, 1, exclusive_minimum=True, fix="The target is an accuracy.")
    check_int("num_classes", num_classes, 2)
    check_int("epochs", epochs, 1)
    check_int("batch_size", batch_size, 1)
    check_int("seed", seed, 0)
    features, labels, val = check_feature_data(features, labels, num_classes, val, val_required=True)
    keras.utils.set_random_seed(seed)
    head = head_model(features.shape[-1], num_classes, dropout=0.0)
    compile_model(head, learning_rates[0])
    start = Snapshot(head)
    runs = []
    for lr in learning_rates:
        ended = head.get_weights()
        start.restore()  # the initial weights and a fresh Adam state
        if warm_start:
            head.set_weights(ended)  # from where the previous run ended
        head.optimizer.learning_rate.assign(lr)
        keras.utils.set_random_seed(seed)
        result = head.fit(features, labels, validation_data=val, epochs=epochs, batch_size=batch_size, verbose=0)
        values = [float(v) for v in result.history["val_accuracy"]]
        runs.append(SweepRun(float(lr), values, epochs_to_reach(values, target)))
    return runs
