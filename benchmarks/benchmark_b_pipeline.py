"""Benchmark B: does the input pipeline keep the model busy during fine-tuning?

Three throughputs, in images per second, measured in one process:

- pipeline alone: iterating `tlkit.to_tf(train, shuffle=True, augment=...)` with no model;
- model alone: `model.fit` on one augmented batch held in memory and repeated, so the
  training step never waits for data;
- together: `model.fit` on the real pipeline.

If the pipeline overlaps the model (parallel map, prefetch), together / model alone is
close to 1. Fine-tuning setting: 128 px, MobileNet alpha=0.25 with its top blocks
unfrozen. The augmentation runs in the pipeline, in the model, or not at all
(`--placements`), and is either tlkit's (`tlkit.augment.augmentation()`: one crop-zoom-flip
resampling) or the Keras guide's (`RandomFlip`, `RandomRotation(0.1)`, `RandomZoom(0.1)`)
(`--augmentations`). The settings take turns within each repeat, and model alone and
together follow each other, so a change in the machine's load hits both sides of a ratio
alike.

    TLKIT_PROFILE=offline TLKIT_ASSETS=../shared/data python benchmarks/benchmark_b_pipeline.py

Goal: together / model alone >= 0.9.
"""

from __future__ import annotations

import argparse
import statistics
import time

# isort: off
import tlkit  # first: it quiets TensorFlow's C++ log before TensorFlow loads
import keras
import tensorflow as tf

# isort: on
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


def fit_rates(model, dataset, steps: int, epochs: int, batch_size: int) -> list[float]:
    """Images/s of each epoch of `model.fit` on `dataset`, the first one (tracing, warm-up) left out."""
    timer = EpochTimer()
    model.fit(dataset, steps_per_epoch=steps, epochs=epochs, callbacks=[timer], verbose=0)
    return [steps * batch_size / seconds for seconds in timer.seconds[1:]]


def keras_guide_augmentation(seed: int = 0) -> keras.layers.Layer:
    """The augmentation of the Keras transfer-learning guide, plus the zoom of the TF tutorials."""
    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.RandomRotation(0.1, seed=seed),
            keras.layers.RandomZoom(0.1, seed=seed),
        ],
        name="keras_guide_augmentation",
    )


AUGMENTATIONS = {"tlkit": tlkit.augment.augmentation, "keras_guide": keras_guide_augmentation}


def setup_placement(splits, args, placement: str, augmentation: str) -> dict:
    """The pipeline, one held batch and a compiled model, with augmentation in `placement`.

    `placement` is "pipeline" (`to_tf(augment=...)`), "model" (`build_classifier(augment=...)`)
    or "none" (no augmentation: shuffle, batch and prefetch only).
    """
    augment = AUGMENTATIONS[augmentation](seed=0) if placement != "none" else None
    in_pipeline = placement == "pipeline"
    pipeline = tlkit.to_tf(
        splits.train, args.batch_size, shuffle=True, augment=augment if in_pipeline else None
    ).repeat()
    held = next(iter(pipeline))  # one batch, kept in memory, served with the pipeline's element spec
    base = tlkit.load_backbone(args.backbone, args.image_size)
    model = tlkit.build_classifier(
        base, splits.num_classes, args.backbone, augment=augment if placement == "model" else None
    )
    tlkit.unfreeze_top(base, args.blocks, args.backbone)
    tlkit.compile_model(model, 1e-4)
    in_memory = tf.data.Dataset.from_tensor_slices(held).batch(args.batch_size).repeat()
    return {"pipeline": pipeline, "in_memory": in_memory, "model": model}


def measure(setup: dict, args) -> tuple[list[float], list[float], list[float]]:
    """Pipeline alone, model alone (per epoch), together (per epoch), in images/s."""
    fit = {"steps": args.steps, "epochs": args.epochs, "batch_size": args.batch_size}
    alone = pipeline_rate(setup["pipeline"], args.steps * (args.epochs - 1), args.batch_size)
    model_alone = fit_rates(setup["model"], setup["in_memory"], **fit)
    together = fit_rates(setup["model"], setup["pipeline"], **fit)
    return [alone], model_alone, together


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40, help="steps per timed epoch")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per fit, the first one not timed")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--blocks", type=int, default=2, help="top blocks unfrozen")
    parser.add_argument("--backbone", default="mobilenet_0.25")
    parser.add_argument("--placements", default="pipeline,model,none", help="where augmentation runs")
    parser.add_argument("--augmentations", default="tlkit,keras_guide", help=f"any of {', '.join(AUGMENTATIONS)}")
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
    settings = [
        (placement, augmentation)
        for placement in args.placements.split(",")
        for augmentation in (args.augmentations.split(",") if placement != "none" else ["-"])
    ]
    setups = {setting: setup_placement(splits, args, *setting) for setting in settings}
    samples = {setting: ([], [], []) for setting in settings}  # pipeline alone, model alone, together
    for repeat in range(args.repeats):
        for setting in settings:
            measured = measure(setups[setting], args)
            for pooled, new in zip(samples[setting], measured):
                pooled.extend(new)
            alone, model_alone, together = (statistics.median(m) for m in measured)
            print(
                f"  repeat {repeat}, augmentation {setting[1]:11s} in {setting[0]:8s}: pipeline alone {alone:7.0f} "
                f"images/s | model alone {model_alone:5.0f} | together {together:5.0f} | "
                f"ratio {together / model_alone:.2f}",
                flush=True,
            )
    print(
        f"\nMedians of every timed epoch of the {args.repeats} repeats (images/s; the ratios are of the medians; "
        "last column: together, relative to no augmentation):"
    )
    header = ("augmentation", "in", "pipeline alone", "model alone", "together", "together / model", "vs none")
    print(
        f"  {header[0]:12s} {header[1]:9s} {header[2]:>14s} {header[3]:>11s} {header[4]:>8s} {header[5]:>16s} "
        f"{header[6]:>7s}"
    )
    medians = {setting: [statistics.median(column) for column in pooled] for setting, pooled in samples.items()}
    plain = medians.get(("none", "-"), [None] * 3)[2]
    for (placement, augmentation), (alone, model_alone, together) in medians.items():
        ratio = together / model_alone
        versus = f"{together / plain:7.2f}" if plain else "      -"
        print(
            f"  {augmentation:12s} {placement:9s} {alone:14.0f} {model_alone:11.0f} {together:8.0f} {ratio:16.2f} "
            f"{versus}"
        )
    # tlkit's advice (tlkit.augment.augmentation's docstring): in the model without a GPU, in the pipeline with one.
    recommended = "pipeline" if tf.config.list_physical_devices("GPU") else "model"
    if (recommended, "tlkit") in medians:
        _, model_alone, together = medians[recommended, "tlkit"]
        ratio = together / model_alone
        device = "a GPU" if recommended == "pipeline" else "no GPU"
        print(f"  with {device}, tlkit.augment.augmentation() in the {recommended}: together / model alone {ratio:.2f}")
    print("  goal: together / model alone >= 0.9")


if __name__ == "__main__":
    main()
