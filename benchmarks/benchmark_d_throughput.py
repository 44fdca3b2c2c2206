"""Benchmark D: images per second of each backbone and size the lessons use, and what they predict for a T4.

For every (backbone, image size) it times, on this machine and in this one run:

- `forward`: one pass of the frozen base (feature extraction, `predict`), batch 64;
- `train`: a training step of the whole network with a new softmax head (fine-tuning everything, the most
  expensive step a lesson takes), batch 32;

and ResNet-50 at 224 px, forward, float32, batch 64: the anchor. NVIDIA publishes that figure for a T4
(ResNet-50 v1.5, FP32 inference at batch 64: 428 images/s; mixed precision 1,165; DeepLearningExamples,
PyTorch/Classification/ConvNets/resnet50v1.5, NGC 21.03). The T4/CPU ratio is the published FP32 figure over
the anchor measured here; this machine's figure times that ratio is the compute-bound estimate (FP32 is the
conservative choice: MobileNets' depthwise convolutions gain less from float16 tensor cores than ResNet-50's).
Small models on a GPU are bound by memory traffic instead: every layer's float16 output is written and read
once in a forward pass, and about three times as much moves in a training step (the backward pass reads
the activations and writes and reads their gradients). At half the T4's 320 GB/s that bounds the rate too;
the estimate is the lower of the two bounds.

Peak GPU memory of a training step is estimated from the model, not measured: weights, gradients and two
Adam moments in float32, plus every layer's output for the batch in float16 (mixed precision), kept for the
backward pass, doubled for its gradient.

    TLKIT_PROFILE=offline TLKIT_ASSETS=../shared/data python benchmarks/benchmark_d_throughput.py

Prints one table, and `--json FILE` writes it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

import keras
import numpy as np

import tlkit

T4_RESNET50_FP32 = 428.0  # images/s, ResNet-50 v1.5 FP32 inference, batch 64 (NVIDIA, see above)
T4_MEMORY_GB = 16.0
T4_BANDWIDTH = 320e9 * 0.5  # bytes/s: half the T4's peak memory bandwidth, sustained
SETTINGS = [  # (backbone, image size): the full profile's, then the offline profile's
    ("mobilenet_v2", 96),
    ("mobilenet_v2", 160),
    ("mobilenet_0.25", 64),
    ("mobilenet_0.25", 96),
    ("mobilenet_0.25", 128),
]


def images_per_second(step, batch: int, repeats: int) -> float:
    step()  # the first call traces and compiles
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return batch * repeats / (time.perf_counter() - start)


def forward_rate(base: keras.Model, size: int, batch: int, repeats: int) -> float:
    images = np.random.default_rng(0).uniform(-1, 1, (batch, size, size, 3)).astype("float32")
    return images_per_second(lambda: base.predict_on_batch(images), batch, repeats)


def train_rate(base: keras.Model, size: int, batch: int, repeats: int) -> float:
    inputs = keras.Input((size, size, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(base(inputs))
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax", dtype="float32")(pooled))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    images = np.random.default_rng(0).uniform(-1, 1, (batch, size, size, 3)).astype("float32")
    labels = np.arange(batch) % 10
    return images_per_second(lambda: model.train_on_batch(images, labels), batch, repeats)


def activation_bytes(base: keras.Model) -> int:
    """Bytes of every layer's output for one image, in float16."""
    total = 0
    for layer in base.layers:
        output = layer.output[0] if isinstance(layer.output, list) else layer.output
        total += math.prod(d for d in output.shape[1:] if d) * 2
    return total


def training_memory_gb(base: keras.Model, batch: int) -> float:
    """Weights + gradients + Adam moments (float32), and every layer's float16 output and its gradient."""
    weights = sum(math.prod(w.shape) for w in base.weights) * 4 * 4
    return (weights + activation_bytes(base) * 2 * batch) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=4, help="timed batches per figure")
    parser.add_argument("--json", help="also write the table to this file")
    args = parser.parse_args()
    tlkit.setup("offline", seed=0)
    anchor = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(224, 224, 3))
    anchor_rate = forward_rate(anchor, 224, 64, max(2, args.repeats // 2))
    ratio = T4_RESNET50_FP32 / anchor_rate
    print(f"ResNet-50 224 px forward, float32: {anchor_rate:.1f} images/s here; T4 {T4_RESNET50_FP32:.0f} "
          f"(published): T4/this machine = {ratio:.1f}x, on {os.cpu_count()} CPU cores\n")  # fmt: skip
    rows = []
    columns = ["backbone", "px", "forward here", "train here", "forward T4 (est.)", "train T4 (est.)"]
    print("| " + " | ".join([*columns, "train memory, batch 64"]) + " |")
    print("|" + "---|" * 7)
    print("(T4 estimates: the lower of this machine's rate x the ratio and the memory-traffic bound)")
    for name, size in SETTINGS:
        base = tlkit.load_backbone(name, size, weights=None)
        forward = forward_rate(base, size, 64, args.repeats)
        train = train_rate(base, size, 32, args.repeats)
        memory = training_memory_gb(base, 64)
        moved = activation_bytes(base)
        t4_forward = min(forward * ratio, T4_BANDWIDTH / (2 * moved))
        t4_train = min(train * ratio, T4_BANDWIDTH / (6 * moved))
        rows.append(dict(backbone=name, size=size, forward=forward, train=train, t4_forward=t4_forward,
                         t4_train=t4_train, memory_gb=memory))  # fmt: skip
        print(f"| {name} | {size} | {forward:.0f}/s | {train:.0f}/s | {t4_forward:,.0f}/s | "
              f"{t4_train:,.0f}/s | {memory:.2f} GB of {T4_MEMORY_GB:.0f} |", flush=True)  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"anchor_images_per_second": anchor_rate, "t4_over_here": ratio, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
