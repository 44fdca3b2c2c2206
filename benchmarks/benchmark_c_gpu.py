"""Benchmark C: fine-tuning throughput with and without mixed precision and XLA.

Fine-tunes the top blocks of a pretrained backbone (augmentation inside the model, NumPy
input: no `tf.data`, no TensorFlow needed) once per configuration on the same device and
prints images per second and test accuracy side by side:

- `float32`: the baseline;
- `mixed_float16`: float16 compute, float32 weights and a float32 softmax head
  (`build_classifier`'s head always has `dtype="float32"`);
- `jit_compile=True` (XLA) vs `False` on the TensorFlow backend. On JAX every step is
  compiled by XLA anyway (`jax.jit`), so only the precision is compared there.

On a GPU (the `full` profile, data and weights from `$TLKIT_ASSETS`, no network needed):

    KERAS_BACKEND=jax TLKIT_PROFILE=full TLKIT_ASSETS=../shared/data \
        python benchmarks/benchmark_c_gpu.py --batch-sizes 64,128,256

A small smoke run on a CPU (checks that the script works; the figures mean nothing):

    KERAS_BACKEND=jax TLKIT_PROFILE=offline TLKIT_ASSETS=../shared/data \
        python benchmarks/benchmark_c_gpu.py --classes 3 --images-per-class 24 --image-size 96 \
        --batch-sizes 8 --head-epochs 1 --epochs 2

Goals: mixed precision (+ XLA) faster than float32 on a GPU; test accuracy not lower by
more than 1 point.
"""

from __future__ import annotations

import argparse

import keras
import numpy as np
from common import CLASSES, EpochTimer

import tlkit


def fine_tune(splits, args, precision: str, jit_compile: bool, batch_size: int, seed: int) -> dict:
    """Head on a frozen base, then the top blocks unfrozen; returns images/s and test accuracy."""
    keras.mixed_precision.set_global_policy(precision)
    tlkit.set_seed(seed)
    base = tlkit.load_backbone(args.backbone, args.image_size)
    model = tlkit.build_classifier(
        base, splits.num_classes, args.backbone, augment=tlkit.augment.augmentation(seed=seed)
    )
    x, y = splits.train.images, splits.train.labels

    base.trainable = False
    tlkit.compile_model(model, args.head_learning_rate, jit_compile=jit_compile)
    model.fit(x, y, batch_size=batch_size, epochs=args.head_epochs, verbose=0)

    tlkit.unfreeze_top(base, args.blocks, args.backbone)
    tlkit.compile_model(model, args.learning_rate, jit_compile=jit_compile)
    timer = EpochTimer()
    model.fit(x, y, batch_size=batch_size, epochs=args.epochs, callbacks=[timer], verbose=0)
    # The first epoch of a freshly compiled model includes tracing and compiling: skip it.
    steady = timer.seconds[1:] or timer.seconds
    accuracy = tlkit.accuracy(model, splits.test.images, splits.test.labels, batch_size=batch_size)
    return {
        "xla": bool(model.jit_compile),  # Keras falls back to False for layers XLA cannot compile
        "images_per_s": len(x) / float(np.median(steady)),
        "first_epoch_s": timer.seconds[0],
        "accuracy": accuracy,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="mobilenet_0.25")
    parser.add_argument("--image-size", type=int, default=None, help="default: the profile's")
    parser.add_argument("--batch-sizes", default=None, help="comma-separated; default: the profile's batch size")
    parser.add_argument("--classes", type=int, default=None, help="that many largest classes (default: the 10 named)")
    parser.add_argument("--images-per-class", type=int, default=None)
    parser.add_argument("--blocks", type=int, default=2, help="top blocks unfrozen for fine-tuning")
    parser.add_argument("--head-epochs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5, help="fine-tuning epochs (the first is not timed)")
    parser.add_argument("--head-learning-rate", type=float, default=1e-3)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    profile = tlkit.setup(seed=args.seed)
    args.image_size = args.image_size or profile.image_size
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")] if args.batch_sizes else [profile.batch_size]
    splits = tlkit.load_dataset(
        "caltech101", args.image_size, classes=args.classes or CLASSES, images_per_class=args.images_per_class
    )
    device = ", ".join(str(d) for d in tlkit.profiles.gpus()) or "CPU only"
    print(f"{splits}\nbackend {keras.backend.backend()}, profile {profile.name}, device: {device}")
    jit_options = [True] if keras.backend.backend() == "jax" else [False, True]
    configs = [(p, j) for j in jit_options for p in ("float32", "mixed_float16")]

    print(f"{'batch':>5} {'precision':>14} {'XLA':>5} {'images/s':>9} {'1st epoch s':>11} {'test acc':>8}")
    for batch_size in batch_sizes:
        results = {}
        for precision, jit in configs:
            r = fine_tune(splits, args, precision, jit, batch_size, args.seed)
            results[precision, jit] = r
            print(
                f"{batch_size:5d} {precision:>14} {r['xla']!s:>5} {r['images_per_s']:9.1f} "
                f"{r['first_epoch_s']:11.1f} {r['accuracy']:8.3f}"
            )
        base, fast = results[configs[0]], results[configs[-1]]
        print(
            f"      {configs[-1][0]} + XLA vs {configs[0][0]}"
            + ("" if configs[0][1] else " without XLA")
            + f": {fast['images_per_s'] / base['images_per_s']:.2f}x images/s, "
            f"accuracy {fast['accuracy'] - base['accuracy']:+.3f} (goal: no drop beyond 0.01)"
        )
    keras.mixed_precision.set_global_policy("float32")


if __name__ == "__main__":
    main()
