"""Where "large" starts: the training-set size from which fine-tuning beats the frozen base, measured.

    python benchmarks/measure_fine_tuning_by_size.py --image-sizes 48 64 --seeds 0-4
    python benchmarks/measure_fine_tuning_by_size.py --image-sizes 96 --seeds 0-2 --epochs 8

On the five Caltech-101 classes with at least 200 photos (natural photos: the "similar" side of the table), for
each image size, seed and training-set size (images per class, nested), it trains three strategies at one budget
(`tlkit.experiments.learning_curves`): the frozen base with a linear head, the head then the top blocks fine-tuned,
the head then the whole network fine-tuned (BatchNorm frozen in both). Per image size it prints the frozen base's test
accuracy and each fine-tuning strategy's gain over it, per seed, and the size from which the gain is beyond
noise: the smallest size from which the lowest gain over the seeds is above the margin (`--margin`, default 0.02:
two test images in a hundred) at that size and every larger one. The runs are written to `--out` (JSON: the
command, versions, machine, every accuracy).

The answer depends on how far the frozen base is from its ceiling: at 96 px the frozen base is at 0.98-0.99 on
these classes and no strategy can beat it by much; at 48-64 px it is not (lesson 03 uses the size this finds).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from common import provenance

import tlkit

CLASSES = ["airplanes", "Motorbikes", "Faces_easy", "watch", "Leopards"]
STRATEGIES = ["frozen", "fine_tune_top", "fine_tune_all"]


def seed_list(text: str) -> list[int]:
    low, _, high = text.partition("-")
    return list(range(int(low), int(high or low) + 1))


def first_size_beyond_noise(sizes: list[int], gains: np.ndarray, margin: float) -> int | None:
    """The smallest size from which the worst seed's gain exceeds `margin` at it and every larger size."""
    worst = gains.min(axis=0)
    for i, size in enumerate(sizes):
        if np.all(worst[i:] > margin):
            return size
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-sizes", type=int, nargs="+", default=[48, 64])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 25, 50, 100, 150], help="images per class")
    parser.add_argument("--seeds", type=seed_list, default=seed_list("0-4"), help="e.g. 0-4")
    parser.add_argument("--epochs", type=int, default=6, help="fine-tuning epochs (both strategies)")
    parser.add_argument("--top-blocks", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=3e-4, help="fine-tuning learning rate")
    parser.add_argument("--test-per-class", type=int, default=50)
    parser.add_argument("--margin", type=float, default=0.02)
    parser.add_argument("--classes", nargs="+", default=CLASSES, help="Caltech-101 classes with 200+ photos")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/fine_tuning_by_size.json"))
    args = parser.parse_args(argv)
    tlkit.setup("offline", seed=0)
    runs = []
    for image_size in args.image_sizes:
        for seed in args.seeds:
            start = time.perf_counter()
            splits = tlkit.load_dataset(
                "caltech101", image_size, classes=args.classes, images_per_class=max(args.sizes),
                val_per_class=0, test_per_class=args.test_per_class, seed=seed,
            )  # fmt: skip
            curves = tlkit.experiments.learning_curves(
                {"caltech101": splits}, "mobilenet_0.25", args.sizes, STRATEGIES, args.epochs,
                top_blocks=args.top_blocks, fine_tune_learning_rate=args.learning_rate, seed=seed,
            )["caltech101"]  # fmt: skip
            runs.append({"image_size": image_size, "seed": seed, "accuracy": curves.accuracy,
                         "seconds": round(time.perf_counter() - start, 1)})  # fmt: skip
            print(f"{image_size} px, seed {seed} ({runs[-1]['seconds']:.0f} s)\n{curves.table()}", flush=True)
    summary = {}
    print(f"\nGain over the frozen base, per seed (rows) and size ({args.sizes} images a class):")
    for image_size in args.image_sizes:
        chosen = [r for r in runs if r["image_size"] == image_size]
        frozen = np.array([r["accuracy"]["frozen"] for r in chosen])
        print(f"\n{image_size} px: frozen base " + "  ".join(
            f"{s}: {lo:.3f}-{hi:.3f}" for s, lo, hi in zip(args.sizes, frozen.min(0), frozen.max(0))))  # fmt: skip
        summary[image_size] = {}
        for strategy in STRATEGIES[1:]:
            gains = np.array([r["accuracy"][strategy] for r in chosen]) - frozen
            crossing = first_size_beyond_noise(args.sizes, gains, args.margin)
            summary[image_size][strategy] = crossing
            print(f"  {strategy:14s} worst seed " + " ".join(f"{g:+.3f}" for g in gains.min(0)) +
                  "   best seed " + " ".join(f"{g:+.3f}" for g in gains.max(0)) +
                  f"   beats the frozen base beyond {args.margin} from: {crossing}")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        **provenance(argv),
        "classes": args.classes, "sizes": args.sizes, "epochs": args.epochs, "top_blocks": args.top_blocks,
        "learning_rate": args.learning_rate, "test_per_class": args.test_per_class, "margin": args.margin,
        "first_size_beyond_noise": summary, "runs": runs,
    }, indent=1) + "\n")  # fmt: skip
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
