"""Benchmark B: does the input pipeline keep the model busy during fine-tuning?

Three throughputs, in images per second, measured in one process:

- pipeline alone: iterating `tlkit.to_tf(train, shuffle=True, augment=...)` with no model;
- model alone: `model.fit` on one augmented batch held in memory and repeated, so the
  training step never waits for data;
- together: `model.fit` on the real pipeline.

If the pipeline overlaps the model (parallel map, prefetch), together / model alone is
close to 1. Fine-tuning setting: 128 px, MobileNet alpha=0.25 with its top blocks
unfrozen, and the augmentation (`tlkit.augmentation()`) in the pipeline, in the model, or
left out (`--placements`).

    TLKIT_PROFILE=offline TLKIT_ASSETS=../shared/data python benchmarks/benchmark_b_pipeline.py

Goal: together / model alone >= 0.9.
"""

from __future__ import annotations

import argparse
import statistics
import time

import keras
import tensorflow as tf

import tlkit
from common import CLASSES, EpochTimer


def pipeline_rate(dataset, batches: int, batch_size: int) -> float:
    """Images/s of iterating `dataset` alone (after a few warm-up batches)."""
    iterator = iter(dataset)
    for _ in range(5):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - start)


def fit_rate(model, dataset, steps: int, epochs: int, batch_size: int) -> float:
    """Images/s of `model.fit` on `dataset`: median epoch, the first one (tracing) left out."""
    timer = EpochTimer()
    model.fit(dataset, steps_per_epoch=steps, epochs=epochs, callbacks=[timer], verbose=0)
    return steps * batch_size / statistics.median(timer.seconds[1:])


def measure(splits, args, placement: str) -> list[tuple[float, float, float]]:
    """Pipeline alone, model alone, together (images/s) with augmentation in `placement`.

    `placement` is "pipeline" (`to_tf(augment=...)`), "model" (`build_classifier(augment=...)`)
    or "none" (no augmentation: shuffle, batch and prefetch only).
    """
    augment = tlkit.augmentation(seed=0)
    in_pipeline = placement == "pipeline"
    pipeline = tlkit.to_tf(
        splits.train, args.batch_size, shuffle=True, augment=augment if in_pipeline else None
    ).repeat()
    held = next(iter(pipeline))  # one batch, kept in memory
    in_memory = tf.data.Dataset.from_tensors(held).repeat()

    base = tlkit.load_backbone(args.backbone, args.image_size)
    model = tlkit.build_classifier(
        base, splits.num_classes, args.backbone, augment=augment if placement == "model" else None
    )
    tlkit.unfreeze_top(base, args.blocks, args.backbone)
    tlkit.compile_model(model, 1e-4)
    rows = []
    for repeat in range(args.repeats):
        alone = pipeline_rate(pipeline, args.steps * (args.epochs - 1), args.batch_size)
        model_alone = fit_rate(model, in_memory, args.steps, args.epochs, args.batch_size)
        together = fit_rate(model, pipeline, args.steps, args.epochs, args.batch_size)
        rows.append((alone, model_alone, together))
        print(
            f"  augmentation: {placement:8s} repeat {repeat}: pipeline alone {alone:7.0f} images/s | "
            f"model alone {model_alone:5.0f} | together {together:5.0f} | ratio {together / model_alone:.2f}"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30, help="steps per timed epoch")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per fit, the first one not timed")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--blocks", type=int, default=2, help="top blocks unfrozen")
    parser.add_argument("--backbone", default="mobilenet_0.25")
    parser.add_argument("--placements", default="pipeline,model,none", help="where augmentation runs")
    parser.add_argument(
        "--no-determinism",
        action="store_true",
        help="seed without TensorFlow op determinism (tlkit.setup turns it on on a CPU)",
    )
    args = parser.parse_args()

    if args.no_determinism:
        tlkit.setup(seed=None)
        keras.utils.set_random_seed(0)
    else:
        tlkit.setup(seed=0)
    splits = tlkit.load_dataset("caltech101", args.image_size, classes=CLASSES, seed=0)
    print(
        f"{splits}; fine-tuning {args.backbone} (top {args.blocks} blocks), batch {args.batch_size}, "
        f"op determinism {'off' if args.no_determinism else 'on'}"
    )
    summary = {}
    for placement in args.placements.split(","):
        summary[placement] = measure(splits, args, placement)
    print(f"\nMedians over {args.repeats} repeats (images/s):")
    header = ("pipeline alone", "model alone", "together", "together / model")
    print(f"  {'augmentation in':18s} {header[0]:>14s} {header[1]:>11s} {header[2]:>8s} {header[3]:>16s}")
    for placement, rows in summary.items():
        alone, model_alone, together = (statistics.median(column) for column in zip(*rows))
        ratio = statistics.median(t / m for _, m, t in rows)
        print(f"  {placement:18s} {alone:14.0f} {model_alone:11.0f} {together:8.0f} {ratio:16.2f}")
    print("  goal: together / model alone >= 0.9")


if __name__ == "__main__":
    main()
