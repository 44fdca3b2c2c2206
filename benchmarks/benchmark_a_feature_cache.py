"""Benchmark A: a frozen base inside `model.fit` every epoch vs features cached once.

The plain way (the Keras transfer-learning guide, the TensorFlow tutorial) trains the head
of `images -> preprocess -> frozen base -> pool -> dropout -> Dense` with `model.fit`, so
every epoch runs the frozen base over every image again. The cached way runs the base
once (`tlkit.extract`) and trains the same head on the features (`tlkit.train_head`).
Both use the same head, optimizer, learning rate, batch size and epochs, and no
augmentation. Both are timed in the same process, alternating, and the medians are
printed (the machine may be shared: compare within one run).

    TLKIT_PROFILE=offline TLKIT_ASSETS=../shared/data python benchmarks/benchmark_a_feature_cache.py

Goals: plain / cached >= 5, test accuracies within 1 point, cached / one forward pass <= 1.5.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

# isort: off
import tlkit  # first: it quiets TensorFlow's C++ log before TensorFlow loads
from common import CLASSES

# isort: on


class Clock:
    """Wall and CPU (user + sys of this process) seconds since it was made.

    It collects garbage first, so that the objects of an earlier run are not freed inside
    the timed region.
    """

    def __init__(self):
        gc.collect()
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def plain_run(splits, args, seed: int) -> dict:
    """The whole model in `model.fit`: the frozen base runs on every image every epoch."""
    tlkit.set_seed(seed)
    base = tlkit.load_backbone(args.backbone, args.image_size)
    base.trainable = False
    model = tlkit.build_classifier(base, splits.num_classes, args.backbone)
    tlkit.compile_model(model, args.learning_rate)
    train = tlkit.to_tf(splits.train, args.batch_size, shuffle=True, seed=seed)
    clock = Clock()
    model.fit(train, epochs=args.epochs, verbose=0)
    wall, cpu = clock.stop()
    accuracy = tlkit.accuracy(model, splits.test.images, splits.test.labels)
    return {"wall": wall, "cpu": cpu, "accuracy": accuracy}


def cached_run(splits, args, seed: int) -> dict:
    """The base once over the training set, then the same head on the cached features."""
    tlkit.set_seed(seed)
    base = tlkit.load_backbone(args.backbone, args.image_size)
    extractor = tlkit.feature_extractor(base, args.backbone)
    clock = Clock()
    features = tlkit.extract(extractor, splits.train.images)
    extract_wall, extract_cpu = clock.stop()
    head = tlkit.train_head(
        features,
        splits.train.labels,
        splits.num_classes,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
    ).model
    wall, cpu = clock.stop()
    # The extraction above is one forward pass of a fresh model (tracing included). Time a
    # second pass too, on the model already traced: pure compute, the stricter yardstick.
    clock = Clock()
    tlkit.extract(extractor, splits.train.images)
    pass_wall, pass_cpu = clock.stop()
    accuracy = tlkit.accuracy(head, tlkit.extract(extractor, splits.test.images), splits.test.labels)
    return {
        "wall": wall,
        "cpu": cpu,
        "extract_wall": extract_wall,
        "extract_cpu": extract_cpu,
        "head_wall": wall - extract_wall,
        "pass_wall": pass_wall,
        "pass_cpu": pass_cpu,
        "accuracy": accuracy,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--backbone", default="mobilenet_0.25")
    args = parser.parse_args()

    tlkit.setup(seed=0)
    splits = tlkit.load_dataset("caltech101", args.image_size, classes=CLASSES, seed=0)
    print(f"{splits}; {args.backbone}, {args.epochs} epochs, batch {args.batch_size}, lr {args.learning_rate}")
    runs = []
    for repeat in range(args.repeats):
        plain, cached = plain_run(splits, args, seed=repeat), cached_run(splits, args, seed=repeat)
        runs.append((plain, cached))
        print(
            f"repeat {repeat}: plain {plain['wall']:.1f} s (cpu {plain['cpu']:.1f}, {plain['cpu'] / plain['wall']:.1f} "
            f"cores) acc {plain['accuracy']:.3f} | cached {cached['wall']:.1f} s = extract {cached['extract_wall']:.1f}"
            f" + head {cached['head_wall']:.1f} (cpu {cached['cpu']:.1f}, {cached['cpu'] / cached['wall']:.1f} cores) "
            f"acc {cached['accuracy']:.3f} | one pass {cached['pass_wall']:.1f} s (cpu {cached['pass_cpu']:.1f})"
        )

    def median(f):
        return statistics.median(f(p, c) for p, c in runs)

    speedup = median(lambda p, c: p["wall"] / c["wall"])
    speedup_cpu = median(lambda p, c: p["cpu"] / c["cpu"])
    to_pass = median(lambda p, c: c["wall"] / c["extract_wall"])
    to_pass_cpu = median(lambda p, c: c["cpu"] / c["extract_cpu"])
    to_warm = median(lambda p, c: c["wall"] / c["pass_wall"])
    to_warm_cpu = median(lambda p, c: c["cpu"] / c["pass_cpu"])
    plain_acc, cached_acc = median(lambda p, c: p["accuracy"]), median(lambda p, c: c["accuracy"])
    gap = median(lambda p, c: abs(p["accuracy"] - c["accuracy"]) * 100)
    print(f"\nMedians over {args.repeats} repeats (wall seconds; cpu = user + sys of this process):")
    print(f"  plain (base in model.fit)     {median(lambda p, c: p['wall']):6.1f} s   test accuracy {plain_acc:.3f}")
    print(f"  cached (extract + head)       {median(lambda p, c: c['wall']):6.1f} s   test accuracy {cached_acc:.3f}")
    print(f"    of which one forward pass   {median(lambda p, c: c['extract_wall']):6.1f} s   (the extraction)")
    print(f"    of which head training      {median(lambda p, c: c['head_wall']):6.1f} s")
    print(f"  a second, warm forward pass   {median(lambda p, c: c['pass_wall']):6.1f} s")
    print(f"  plain / cached                {speedup:6.2f} x   (cpu {speedup_cpu:.2f} x)   goal >= 5")
    print(f"  accuracy gap                  {gap:6.2f} points                 goal <= 1")
    print(f"  cached / one forward pass     {to_pass:6.2f}     (cpu {to_pass_cpu:.2f})     goal <= 1.5")
    print(f"  cached / warm forward pass    {to_warm:6.2f}     (cpu {to_warm_cpu:.2f})")
    plain_cores, cached_cores = median(lambda p, c: p["cpu"] / p["wall"]), median(lambda p, c: c["cpu"] / c["wall"])
    print(
        f"  cores busy (cpu / wall)       plain {plain_cores:.1f}, cached {cached_cores:.1f}: "
        "a run that was lent fewer "
        "cores than it could use is slower in wall time only"
    )


if __name__ == "__main__":
    main()
