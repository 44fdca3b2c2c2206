"""Benchmark H: the seconds of a new model's first `fit`, with and without `tlkit.train.build_before_tracing`.

Keras creates the optimizer's and the compiled metrics' variables inside the first trace of the training
step; on TensorFlow a `tf.function` that created variables is traced a second time. The lessons train many
new models (every arm, every size, every seed), each traced anew, so the second trace is paid once per model.

For each backbone and size the lessons train through, this script builds the same classifier (the
backbone with its preprocessing, average pooling, a softmax head; ImageNet weights from the pack), compiles
it, and times its first `fit` of one epoch over 64 images, batch 32: *Keras alone* (`model.fit`) and
*built first* (`build_before_tracing`, then `model.fit`), alternating, `--repeats` pairs. It prints the
median seconds of each and their ratio, the CPU seconds beside them (a busy machine disturbs them less),
and the number of traces of the training step each took.

    TLKIT_PROFILE=offline TLKIT_ASSETS=../shared/data python benchmarks/benchmark_h_first_fit.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import keras
import numpy as np

import tlkit

SETTINGS = [("mobilenet_0.25", 32), ("mobilenet_0.25", 64), ("mobilenet_0.25", 96)]


def first_fit(backbone: str, size: int, built: bool, images: np.ndarray, labels: np.ndarray) -> tuple:
    """A new classifier's first `fit`: (wall seconds, CPU seconds, traces of the training step)."""
    base = tlkit.load_backbone(backbone, size)
    model = tlkit.build_classifier(base, 10, backbone)
    tlkit.compile_model(model, 1e-3)
    traced = []
    step = model.train_step
    model.train_step = lambda data: traced.append(1) or step(data)
    wall, cpu = time.perf_counter(), time.process_time()
    if built:
        tlkit.train.build_before_tracing(model)
    model.fit(images, labels, epochs=1, batch_size=32, verbose=0)
    return time.perf_counter() - wall, time.process_time() - cpu, len(traced)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="pairs of runs per setting (medians are quoted)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"Keras {keras.__version__}, backend {keras.backend.backend()}; medians of {args.repeats} pairs")
    print(f"{'backbone':16s} {'px':>4s} {'Keras alone':>16s} {'built first':>16s} {'ratio':>6s} {'traces':>7s}")
    for backbone, size in SETTINGS:
        images = rng.integers(0, 256, (64, size, size, 3)).astype("uint8")
        labels = rng.integers(0, 10, 64)
        runs = {False: [], True: []}
        for _ in range(args.repeats):
            for built in (False, True):
                runs[built].append(first_fit(backbone, size, built, images, labels))
        wall = {b: statistics.median(r[0] for r in rows) for b, rows in runs.items()}
        cpu = {b: statistics.median(r[1] for r in rows) for b, rows in runs.items()}
        traces = {b: rows[-1][2] for b, rows in runs.items()}
        alone, first = (f"{wall[b]:5.1f} s ({cpu[b]:4.1f} cpu)" for b in (False, True))
        print(f"{backbone:16s} {size:4d} {alone:>16s} {first:>16s} {wall[False] / wall[True]:5.2f}x "
              f"{traces[False]:>3d} / {traces[True]}")  # fmt: skip


if __name__ == "__main__":
    main()
