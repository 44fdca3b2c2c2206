"""What the benchmark scripts share: the Caltech-101 classes they time, and an epoch timer."""

import time

import keras

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
