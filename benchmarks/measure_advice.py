"""The adviser against ground truth: every strategy of the table, measured on many tasks, beside the scores.

    python benchmarks/measure_advice.py                       # every task, sizes, seeds 0-2 (about an hour, 2 cores)
    python benchmarks/measure_advice.py --tasks caltech_big5 digits --seeds 0 --quick   # a slice that checks the code

Each task is a classification problem built from the asset pack: Caltech-101 subsets (coarse and fine-grained
classes), the five large Caltech-101 classes under corruptions of growing strength (blur, noise, pixelation,
greyscale, colour inversion, edge maps, rotation: a dial from "similar" to "different" whose truth is known),
Fashion-MNIST, EuroSAT and scikit-learn's digits. Each is measured at two training-set sizes (images per class;
the larger at `tlkit.LARGE_FROM` or above where the classes have the images) and several seeds, with every
strategy of the table at one budget:

- `frozen`: the frozen base and a linear head (`tlkit.experiments.learning_curves`'s, L-BFGS to convergence);
- `best_cut`: a linear probe at every block end, the cut chosen on validation images (`tlkit.train_probes`);
- `fine_tune_top`, `fine_tune_all`: the head, then the top blocks or every block fine-tuned (BatchNorm frozen);
- `scratch`: the same network from random weights.

Beside them, on the same training images and frozen features: `tlkit.advise`'s domain distance and quadrant,
and the published transferability scores of `tlkit.transferability` (LogME, N-LEEP and NCE on mixture-model
pseudo-labels, H-score, k-NN accuracy). `benchmarks/score_advice.py` reads the file this writes and reports how
each score ranks the measured gains and how often the advice picks a strategy within noise of the best.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from common import provenance
from score_advice import ADVISED

import tlkit
from tlkit.data import ImageSet, Splits, split_index

BACKBONE = "mobilenet_0.25"
BIG5 = ["airplanes", "Motorbikes", "Faces_easy", "watch", "Leopards"]
TRAINED = ["fine_tune_top", "fine_tune_all", "scratch"]


# ---------------------------------------------------------------------------------------------- corruptions
def _grey(x: np.ndarray) -> np.ndarray:
    return (x.astype("float32") @ np.array([0.299, 0.587, 0.114], "float32"))[..., None].repeat(3, -1)


def blur(images: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return np.clip(gaussian_filter(images.astype("float32"), (0, sigma, sigma, 0)), 0, 255).astype(np.uint8)


def noise(images: np.ndarray, std: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(images + rng.normal(0, std, images.shape), 0, 255).astype(np.uint8)


def pixelate(images: np.ndarray, factor: int) -> np.ndarray:
    size = images.shape[1]
    small = images[:, ::factor, ::factor]
    return np.repeat(np.repeat(small, factor, axis=1), factor, axis=2)[:, :size, :size]


def edges(images: np.ndarray) -> np.ndarray:
    from scipy.ndimage import sobel

    grey = _grey(images)[..., 0]
    magnitude = np.hypot(sobel(grey, axis=1), sobel(grey, axis=2))
    scale = np.percentile(magnitude, 99, axis=(1, 2), keepdims=True) + 1e-6
    return np.clip(255 * magnitude / scale, 0, 255).astype(np.uint8)[..., None].repeat(3, -1)


CORRUPTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "blur_mild": lambda x: blur(x, 1.0),
    "blur_strong": lambda x: blur(x, 2.5),
    "noise_mild": lambda x: noise(x, 25),
    "noise_strong": lambda x: noise(x, 70),
    "pixelate": lambda x: pixelate(x, 4),
    "greyscale": lambda x: _grey(x).astype(np.uint8),
    "invert": lambda x: 255 - x,
    "edges": edges,
    "rotate180": lambda x: x[:, ::-1, ::-1],
}


# ---------------------------------------------------------------------------------------------------- tasks
def caltech(classes: list[str], large: int) -> Callable:
    def build(image_size, seed, val, test):
        return tlkit.load_dataset("caltech101", image_size, classes=classes, images_per_class=large,
                                  val_per_class=val, test_per_class=test, seed=seed)  # fmt: skip

    return build


def corrupted(name: str, large: int) -> Callable:
    def build(image_size, seed, val, test):
        splits = caltech(BIG5, large)(image_size, seed, val, test)
        change = CORRUPTIONS[name]
        return Splits(*(ImageSet(change(s.images), s.labels, s.class_names) for s in (splits.train, splits.val,
                                                                                      splits.test)))  # fmt: skip

    return build


def packed(source: str, classes: list[str] | int, large: int) -> Callable:
    def build(image_size, seed, val, test):
        return tlkit.load_dataset(source, image_size, classes=classes, images_per_class=large,
                                  val_per_class=val, test_per_class=test, seed=seed)  # fmt: skip

    return build


def digits(large: int) -> Callable:
    """scikit-learn's 8x8 handwritten digits (1,797 images), grey levels 0-16, scaled up to the image size."""

    def build(image_size, seed, val, test):
        from PIL import Image
        from sklearn.datasets import load_digits

        data = load_digits()
        pixels = (data.images * 255 / 16).astype(np.uint8)
        images = np.stack([np.asarray(Image.fromarray(p).resize((image_size, image_size), Image.BILINEAR))
                           for p in pixels])[..., None].repeat(3, -1)  # fmt: skip
        names = [str(d) for d in range(10)]
        parts = split_index(data.target, names, large, val, test, seed)
        return Splits(*(ImageSet(images[i], data.target[i].astype(np.int32), names) for i in parts))

    return build


# name -> (builder of the largest training set, sizes per class)
TASKS: dict[str, tuple[Callable, list[int]]] = {
    "caltech_big5": (caltech(BIG5, 150), [20, 150]),
    "caltech_mixed5": (caltech(["chandelier", "bonsai", "car_side", "hawksbill", "grand_piano"], 40), [10, 40]),
    "caltech_boats3": (caltech(["ketch", "schooner", "ferry"], 30), [10, 30]),
    "caltech_mammals4": (caltech(["kangaroo", "llama", "elephant", "rhino"], 25), [10, 25]),  # rhino: 59 photos
    "caltech_crustaceans3": (caltech(["crab", "crayfish", "scorpion"], 30), [10, 30]),
    **{f"caltech_big5_{name}": (corrupted(name, 150), [20, 150]) for name in CORRUPTIONS},
    "fashion_mnist5": (packed("fashion_mnist", 5, 150), [20, 150]),
    "eurosat5": (packed("eurosat", 5, 150), [20, 150]),
    "digits": (digits(100), [20, 100]),
}


# ----------------------------------------------------------------------------------------------- measuring
def best_cut(splits: Splits, base, size_index: dict[int, np.ndarray], seed: int, epochs: int) -> dict:
    """Per size: the probe accuracies on validation and test at every block end, and the cut validation picks."""
    ends = tlkit.block_ends(base)
    extractor = tlkit.feature_extractor(base, layers=ends)
    train, val, test = (tlkit.extract(extractor, s.images) for s in (splits.train, splits.val, splits.test))
    out = {}
    for size, keep in size_index.items():
        tlkit.set_seed(seed)
        probes = tlkit.train_probes([f[keep] for f in train], splits.train.labels[keep], splits.num_classes,
                                    names=ends, epochs=epochs).model  # fmt: skip
        on_val = tlkit.probe_accuracies(probes, val, splits.val.labels)
        on_test = tlkit.probe_accuracies(probes, test, splits.test.labels)
        chosen = int(np.argmax(on_val))
        out[size] = {"val": on_val, "test": on_test, "chosen": ends[chosen], "chosen_depth": chosen,
                     "best_cut": on_test[chosen], "last_block": on_test[-1]}  # fmt: skip
    return out, train[-1]


def scores(features: np.ndarray, labels: np.ndarray, seed: int) -> dict[str, float]:
    """The published transferability scores on frozen features; N-LEEP and NCE on mixture-model pseudo-labels.

    The asset pack's base has no ImageNet classifier, so the source model's class probabilities that LEEP and
    NCE need are replaced as in N-LEEP (Li et al., 2021): a Gaussian mixture on the PCA-reduced features.
    """
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    from tlkit import transferability as t

    reduced = PCA(n_components=min(32, features.shape[1], len(features) - 1), random_state=seed).fit_transform(features)
    mixture = GaussianMixture(n_components=min(len(features) // 2, 5 * (labels.max() + 1)), covariance_type="diag",
                              random_state=seed, reg_covar=1e-3).fit(reduced)  # fmt: skip
    posteriors = mixture.predict_proba(reduced)
    return {
        "logme": t.logme(features, labels),
        "nleep": t.leep(posteriors, labels),
        "nce": t.nce(posteriors.argmax(-1), labels),
        "h_score": t.h_score(features, labels),
        "knn": t.knn_accuracy(
            features,
            labels,
            k=min(5, int(np.bincount(labels).min()) - 1) or 1,
            folds=min(5, int(np.bincount(labels).min())),
        ),  # fmt: skip
    }


def measure_seed(names: list[str], args, seed: int, cache: dict) -> Iterator[dict]:
    """Every strategy, the advice and the scores for each task in `names`, with one seed, task by task.

    Tasks with the same sizes share one `learning_curves` call, so its compiled models are built once.
    """
    if "base" not in cache:
        cache["base"] = tlkit.load_backbone(BACKBONE, args.image_size)
        cache["advise_base"] = tlkit.load_backbone(BACKBONE, tlkit.advice.CALIBRATION[BACKBONE][0])
    groups: dict[tuple[int, ...], list[str]] = {}
    for name in names:
        sizes = TASKS[name][1]
        capped = sorted({min(s, args.max_size) if args.max_size else s for s in sizes})
        groups.setdefault(tuple(capped), []).append(name)
    for sizes, group in groups.items():
        start = time.perf_counter()
        splits = {name: TASKS[name][0](args.image_size, seed, args.val_per_class, args.test_per_class)
                  for name in group}  # fmt: skip
        curves = tlkit.experiments.learning_curves(
            {name: Splits(s.train, s.train, s.test) for name, s in splits.items()}, BACKBONE, list(sizes),
            ["frozen", *TRAINED], epochs=args.epochs, top_blocks=args.top_blocks,
            fine_tune_learning_rate=args.learning_rate, seed=seed,
        )  # fmt: skip
        shared = (time.perf_counter() - start) / len(group)
        for name in group:
            result = measure_task(name, splits[name], curves[name], list(sizes), args, seed, cache)
            result["seconds"] = round(result["seconds"] + shared, 1)
            yield result


def measure_task(name: str, splits: Splits, curves, sizes: list[int], args, seed: int, cache: dict) -> dict:
    """The best cut, the advice and the scores of one task, beside its learning curves."""
    start = time.perf_counter()
    size_index = {size: tlkit.sample_per_class(splits.train.labels, size, seed) for size in sizes}
    cuts, pooled = best_cut(splits, cache["base"], size_index, seed, args.probe_epochs)
    result = {"task": name, "seed": seed, "sizes": sizes, "num_classes": splits.num_classes, "per_size": {}}
    for i, size in enumerate(sizes):
        keep = size_index[size]
        measured = {s: curves.accuracy[s][i] for s in curves.accuracy} | {"best_cut": cuts[size]["best_cut"]}
        result["per_size"][str(size)] = {
            "accuracy": measured,
            "cut": cuts[size],
            "advice": advice_record(splits.train, keep, args, seed, cache),
            "scores": scores(pooled[keep], splits.train.labels[keep], seed),
        }
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


def advice_record(train: ImageSet, keep: np.ndarray, args, seed: int, cache: dict) -> dict:
    """`tlkit.advise` on the training images `keep`: what it measured and what it said, and its seconds."""
    subset = ImageSet(train.images[keep], train.labels[keep], train.class_names)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True):
        advice = tlkit.advise(subset, base=cache["advise_base"], sample=args.advise_sample, seed=seed)
    return {
        "quadrant": advice.quadrant,
        "strategy": ADVISED[advice.quadrant],
        "distance": advice.domain_distance,
        "interval": list(advice.distance_interval),
        "probe_accuracies": list(advice.probe_accuracies),
        "cut_layer": advice.cut_layer,
        "cut_depth": advice.block_ends.index(advice.cut_layer),
        "cut_gain": advice.cut_gain,
        "cut_gain_interval": list(advice.cut_gain_interval),
        "confident": advice.confident,
        "seconds": round(time.perf_counter() - start, 2),
    }


def readvise(args) -> None:
    """Measures `advise` again on every run of `args.out` (the same tasks, seeds and training images), in place.

    The strategies' accuracies are kept: only what the adviser measures and says is replaced, so a change to
    `advise` is scored against the same ground truth without training anything again.
    """
    data = _read(args.out)
    cache = {"advise_base": tlkit.load_backbone(BACKBONE, tlkit.advice.CALIBRATION[BACKBONE][0])}
    for run in data["runs"]:
        splits = TASKS[run["task"]][0](args.image_size, run["seed"], args.val_per_class, args.test_per_class)
        for size, result in run["per_size"].items():
            keep = tlkit.sample_per_class(splits.train.labels, int(size), run["seed"])
            result["advice"] = advice_record(splits.train, keep, args, run["seed"], cache)
        print(f"{run['task']} seed {run['seed']}: " + "; ".join(
            f"{size}/class {v['advice']['quadrant']} (cut {v['advice']['cut_layer']}, gain "
            f"{v['advice']['cut_gain']:+.3f}; {v['advice']['seconds']:.1f} s)" for size, v in run["per_size"].items()),
            flush=True)  # fmt: skip
    data["readvised"] = provenance(["--readvise"])
    args.out.write_text(json.dumps(data, indent=1) + "\n")


def seed_list(text: str) -> list[int]:
    low, _, high = text.partition("-")
    return list(range(int(low), int(high or low) + 1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS), metavar="TASK")
    parser.add_argument("--seeds", type=seed_list, default=seed_list("0-2"), help="e.g. 0-2")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=8, help="epochs of every trained strategy (one budget)")
    parser.add_argument("--probe-epochs", type=int, default=60)
    parser.add_argument("--top-blocks", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=3e-4, help="fine-tuning learning rate")
    parser.add_argument("--val-per-class", type=int, default=10)
    parser.add_argument("--test-per-class", type=int, default=20)
    parser.add_argument("--advise-sample", type=int, default=200)
    parser.add_argument("--max-size", type=int, default=None, help="cap every size (a quick check of the code)")
    parser.add_argument("--quick", action="store_true", help="2 epochs, sizes capped at 10: checks the code only")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/advice.json"))
    parser.add_argument("--readvise", action="store_true", help="measure only `advise` again, on --out's runs")
    args = parser.parse_args(argv)
    if args.readvise:
        tlkit.setup("offline", seed=0)
        settings = _read(args.out)["settings"]
        for key in ("image_size", "val_per_class", "test_per_class", "advise_sample"):
            setattr(args, key, settings[key])  # the settings the runs were measured with
        readvise(args)
        return 0
    if args.quick:
        args.epochs, args.probe_epochs, args.max_size = 2, 5, args.max_size or 10
    tlkit.setup("offline", seed=0)
    runs = [] if args.quick else _read(args.out).get("runs", [])  # an earlier, interrupted run's tasks
    done, cache = {(r["task"], r["seed"]) for r in runs}, {}
    for seed in args.seeds:
        todo = [name for name in args.tasks if (name, seed) not in done]  # others finished in an earlier run
        for last in measure_seed(todo, args, seed, cache) if todo else []:
            runs.append(last)
            print(f"{last['task']} seed {seed} ({last['seconds']:.0f} s): " + "; ".join(
                f"{size}/class " + " ".join(f"{s} {a:.3f}" for s, a in v["accuracy"].items())
                + f" | advice {v['advice']['quadrant']} ({v['advice']['distance']:.3f})"
                for size, v in last["per_size"].items()), flush=True)  # fmt: skip
            _write(args, argv, runs)  # after every task: an interrupted run loses one task at most
    print(f"written to {args.out}")
    return 0


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _write(args, argv, runs) -> None:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    settings = {k: v for k, v in vars(args).items() if k not in ("out", "tasks", "seeds")}
    args.out.write_text(json.dumps({**provenance(argv), "backbone": BACKBONE, "settings": settings,
                                    "advised_strategy": ADVISED, "runs": runs}, indent=1) + "\n")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
