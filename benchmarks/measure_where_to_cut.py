"""Where the best cut lies, and what moves it: lesson 02's setting, lesson 05's, and each step between them.

    python benchmarks/measure_where_to_cut.py --seeds 0-4

Lessons 02 and 05 probe every block of the same backbone (MobileNet alpha=0.25, ImageNet weights, frozen) on
Caltech-101 (similar) and Fashion-MNIST (different), with a linear head at every block end, and they differ in
four settings: image size (128 px / 64 px), pooling (`grid`: the average plus a 2x2 grid / `grid4`: plus a 4x4
grid), the classes (10 / 5) and the probe's epochs (60 / 30). This script runs lesson 05's setting, each one-step
change from it toward lesson 02's, lesson 02's at 64 px and lesson 02's own, on the same seeds, and prints per
setting and dataset where the best block is (by test accuracy, over the 14 cut points 0-13) and what the blocks
after it cost (best minus last block): which setting moves the cut. The runs go to `--out` (JSON: command,
versions, machine).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import keras
import numpy as np
from common import provenance

import tlkit

BACKBONE = "mobilenet_0.25"
CLASSES = {  # lesson 02's ten and lesson 05's five Caltech-101 classes; Fashion-MNIST's first 10 or 5
    10: ["Leopards", "Motorbikes", "airplanes", "bonsai", "car_side", "chandelier", "grand_piano", "hawksbill",
         "ketch", "watch"],
    5: ["Leopards", "Motorbikes", "airplanes", "watch", "Faces_easy"],
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Setting:
    image_size: int
    pooling: str
    classes: int
    epochs: int
    images_per_class: int = 20

    def label(self) -> str:
        return f"{self.image_size} px, {self.pooling}, {self.classes} classes, {self.epochs} epochs"


LESSON_02 = Setting(128, "grid", 10, 60)
LESSON_05 = Setting(64, "grid4", 5, 30)


def settings() -> list[tuple[str, Setting]]:
    """Lesson 05's setting, each one-step change from it toward lesson 02's, lesson 02's at 64 px, and lesson 02's."""
    chosen = [("lesson 05", LESSON_05)]
    for field in ("image_size", "pooling", "classes", "epochs"):
        chosen.append(
            (f"lesson 05, {field} of lesson 02", dataclasses.replace(LESSON_05, **{field: getattr(LESSON_02, field)}))
        )
    chosen.append(
        ("lesson 02, image_size of lesson 05", dataclasses.replace(LESSON_02, image_size=LESSON_05.image_size))
    )
    chosen.append(("lesson 02", LESSON_02))
    return chosen


def sweep(setting: Setting, dataset: str, seed: int, test_per_class: int) -> list[float]:
    """Test accuracy of a linear probe at every block end."""
    classes = CLASSES[setting.classes] if dataset == "caltech101" else setting.classes
    splits = tlkit.load_dataset(
        dataset, setting.image_size, classes=classes, images_per_class=setting.images_per_class,
        val_per_class=0, test_per_class=test_per_class, seed=seed,
    )  # fmt: skip
    base = tlkit.load_backbone(BACKBONE, setting.image_size)
    base.trainable = False
    ends = tlkit.block_ends(base, BACKBONE)
    extractor = tlkit.feature_extractor(base, BACKBONE, layers=ends, pooling=setting.pooling)
    train = tlkit.extract(extractor, splits.train.images)
    test = tlkit.extract(extractor, splits.test.images)
    probes = tlkit.train_probes(train, splits.train.labels, splits.num_classes, names=ends, epochs=setting.epochs).model
    return tlkit.probe_accuracies(probes, test, splits.test.labels)


def seed_list(text: str) -> list[int]:
    low, _, high = text.partition("-")
    return list(range(int(low), int(high or low) + 1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=seed_list, default=seed_list("0-4"), help="e.g. 0-4")
    parser.add_argument("--test-per-class", type=int, default=30, help="Caltech-101's smallest class allows 79")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/where_to_cut.json"))
    args = parser.parse_args(argv)
    tlkit.setup("offline", seed=0)
    runs = []
    for name, setting in settings():
        print(f"\n{name}: {setting.label()}", flush=True)
        for dataset in ("caltech101", "fashion_mnist"):
            per_seed = []
            for seed in args.seeds:
                start = time.perf_counter()
                accuracy = sweep(setting, dataset, seed, args.test_per_class)
                keras.backend.clear_session()
                per_seed.append(accuracy)
                runs.append({"setting": name, **dataclasses.asdict(setting), "dataset": dataset, "seed": seed,
                             "accuracy": accuracy, "seconds": round(time.perf_counter() - start, 1)})  # fmt: skip
            acc = np.array(per_seed)
            best = acc.argmax(1)
            drop = acc.max(1) - acc[:, -1]
            print(f"  {dataset:13s} best block {' '.join(map(str, best))} of {acc.shape[1] - 1}; "
                  f"best minus last block {' '.join(f'{d:.3f}' for d in drop)}; "
                  f"last block {acc[:, -1].min():.3f}-{acc[:, -1].max():.3f}", flush=True)  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        **provenance(argv),
        "backbone": BACKBONE, "classes": CLASSES, "test_per_class": args.test_per_class,
        "runs": runs,
    }, indent=1) + "\n")  # fmt: skip
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
