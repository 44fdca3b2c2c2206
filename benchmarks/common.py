"""What the benchmark scripts share: the Caltech-101 classes they time, and an epoch timer."""

import os
import platform
import sys
import time

import keras
import numpy as np

CLASSES = [
    "Leopards", "Motorbikes", "airplanes", "bonsai", "car_side",
    "chandelier", "grand_piano", "hawksbill", "ketch", "watch",
]  # fmt: skip


class EpochTimer(keras.callbacks.Callback):
    """Records the wall time of every epoch."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def provenance(argv: list[str] | None = None) -> dict:
    """What produced a results file: the command, the library versions and the machine."""
    args = sys.argv[1:] if argv is None else argv
    return {
        "command": " ".join(["python", sys.argv[0], *args]),
        "versions": {
            "keras": keras.__version__,
            "backend": keras.backend.backend(),
            "numpy": np.__version__,
            "python": platform.python_version(),
        },  # fmt: skip
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, no GPU",
    }
