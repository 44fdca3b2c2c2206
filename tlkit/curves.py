"""Learning curves: test accuracy against training images per class, one line per strategy.

Where the line of a strategy that trains more of the network crosses the frozen one is
where "small" ends for that dataset. Four strategies, cheapest first:

- `frozen`: the base never changes; a linear softmax head on its cached pooled features.
- `fine_tune_top`: that head, then the top blocks learn too (on cached features of the
  layer below them: the frozen part still runs only once per image).
- `fine_tune_all`: that head, then every block learns (`tlkit.unfreeze_all`).
- `scratch`: the same architecture from random weights.

BatchNorm follows the course's one rule: `fit` runs every layer with `training=True`, which
overrides the `training=False` a model passes to its base, so only `layer.trainable = False`
keeps a BatchNorm layer in inference mode. Both fine-tuning strategies set it on every
BatchNorm layer (they keep the ImageNet statistics, as the frozen base does); `scratch` lets
BatchNorm learn, because a random network has no statistics worth keeping.

One training set of the largest size is split once; each smaller size takes the first
images of each class of it, so the sets are nested and the test set never changes. Each
fine-tuned model is compiled once and reset (weights and optimizer state) between sizes:
tracing a Keras `fit` costs seconds, a training step on a CPU only milliseconds.

The seconds each strategy took are CPU seconds on a machine without a GPU (steady on shared
cores) and wall-clock seconds on a GPU, whose work a CPU clock does not see; `Curves.clock`
says which. With `verbose=1`, one line per finished run says which run it was, how many are
left and the time so far.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence

import keras
import numpy as np

from tlkit.backbones import BackbonePreprocessing, block_ends, load_backbone
from tlkit.data import Splits, sample_per_class
from tlkit.features import extract
from tlkit.model import classifier_head, unfreeze_all
from tlkit.profiles import gpus
from tlkit.train import Snapshot, compile_model

STRATEGIES = ("frozen", "fine_tune_top", "fine_tune_all", "scratch")


def linear_head(features: np.ndarray, labels: np.ndarray, c: float = 1.0):
    """A multinomial logistic regression on `features`: the same model as a softmax `Dense` head.

    Fitted to convergence by L-BFGS (scikit-learn) in milliseconds, with no learning rate or
    epoch count to choose. `head_weights` turns it into a Keras `Dense` layer's weights.
    """
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=1000).fit(features, labels)


def head_weights(head, num_classes: int) -> list[np.ndarray]:
    """`[kernel, bias]` of a softmax `Dense(num_classes)` that computes `head`'s probabilities."""
    kernel = np.zeros((head.coef_.shape[1], num_classes), np.float32)
    bias = np.zeros(num_classes, np.float32)
    if head.coef_.shape[0] == 1:  # binary: sklearn keeps one row, softmax([-z/2, z/2]) = sigmoid(z)
        kernel[:, head.classes_[0]], kernel[:, head.classes_[1]] = -head.coef_[0] / 2, head.coef_[0] / 2
        bias[head.classes_[0]], bias[head.classes_[1]] = -head.intercept_[0] / 2, head.intercept_[0] / 2
    else:
        kernel[:, head.classes_] = head.coef_.T
        bias[head.classes_] = head.intercept_
    return [kernel, bias]


@dataclasses.dataclass
class Curves:
    """Test accuracy per strategy at each training-set size, and the seconds each strategy took.

    `clock` names the seconds: `"CPU s"` (CPU time, measured on a machine without a GPU) or
    `"s"` (wall-clock time, measured on a GPU).
    """

    sizes: list[int]
    accuracy: dict[str, list[float]]
    seconds: dict[str, float]
    chance: float
    clock: str = "CPU s"

    def crossing(self, strategy: str, baseline: str = "frozen", margin: float = 0.0) -> int | None:
        """The smallest size from which `strategy` beats `baseline` by more than `margin` (None: never)."""
        a, b = np.asarray(self.accuracy[strategy]), np.asarray(self.accuracy[baseline])
        for i, size in enumerate(self.sizes):
            if np.all(a[i:] > b[i:] + margin):
                return size
        return None

    def table(self) -> str:
        """The accuracies as text, one row per strategy."""
        lines = ["images/class " + " ".join(f"{s:>6d}" for s in self.sizes) + f"   {self.clock}"]
        for name, values in self.accuracy.items():
            lines.append(f"{name:13s}" + " ".join(f"{v:6.3f}" for v in values) + f"   {self.seconds[name]:5.1f}")
        return "\n".join(lines)


class _Resettable:
    """A compiled model and the state to restore before each run, so `fit` is traced only once."""

    def __init__(self, model: keras.Model, learning_rate: float):
        self.model = model
        compile_model(model, learning_rate, metrics=())
        self.start = Snapshot(model)

    def run(self, x, y, x_test, y_test, epochs: int, batch_size: int, head=None, seed: int = 0) -> float:
        self.start.restore()
        if head is not None:
            self.model.get_layer("head").set_weights(head)
        keras.utils.set_random_seed(seed)
        self.model.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0)
        predictions = self.model.predict(x_test, batch_size=128, verbose=0)
        return float(np.mean(predictions.argmax(-1) == y_test))


def _classifier(trunk: keras.Model, num_classes: int, training: bool | None, name: str, preprocess: str | None = None):
    inputs = keras.Input(shape=trunk.input_shape[1:])
    x = BackbonePreprocessing(preprocess)(inputs) if preprocess else inputs
    x = trunk(x, training=training)
    outputs = classifier_head(keras.layers.GlobalAveragePooling2D()(x), num_classes)
    return keras.Model(inputs, outputs, name=name)


def learning_curves(
    datasets: Mapping[str, Splits],
    backbone: str,
    sizes: Sequence[int],
    strategies: Sequence[str] | Mapping[str, Sequence[str]] = STRATEGIES,
    epochs: int = 10,
    scratch_epochs: int | None = None,
    top_blocks: int = 2,
    fine_tune_learning_rate: float = 1e-4,
    scratch_learning_rate: float = 1e-3,
    batch_size: int = 32,
    weights: str | None = "imagenet",
    seed: int = 0,
    verbose: int = 0,
) -> dict[str, Curves]:
    """Test accuracy of each strategy at each size in `sizes` (training images per class), per dataset.

    Each dataset's `train` split must hold at least `max(sizes)` images per class; its `test`
    split is used whole. Datasets with the same image size and number of classes share the
    compiled models. The fine-tuning strategies start from the `frozen` strategy's head and
    train `epochs` epochs; `scratch` trains `scratch_epochs` (default `epochs`).
    `strategies` is one list for every dataset, or a mapping from each dataset's name to its own.
    `verbose=1` prints one line per finished run (the frozen strategy's heads on a dataset
    count as one run): which run, its test accuracy, how many are left, the time so far.
    """
    if isinstance(strategies, Mapping):
        missing = [name for name in datasets if name not in strategies]
        if missing:
            raise ValueError(
                f"Invalid value for argument `strategies`. Received: a mapping without {missing}. Expected "
                f"one entry per dataset ({', '.join(datasets)}), or one list for all of them."
            )
        per_dataset = {name: list(strategies[name]) for name in datasets}
    else:
        per_dataset = dict.fromkeys(datasets, list(strategies))
    unknown = sorted({s for chosen in per_dataset.values() for s in chosen if s not in STRATEGIES})
    if unknown:
        raise ValueError(f"Unknown strategies {unknown}; choose from {', '.join(STRATEGIES)}.")
    sizes = sorted(int(s) for s in sizes)
    for name, splits in datasets.items():
        smallest = int(splits.train.class_counts().min())
        if smallest < sizes[-1]:
            raise ValueError(
                f"{name}: the largest size is {sizes[-1]} images per class, but its training split has only "
                f"{smallest} for some class. Load it with images_per_class={sizes[-1]} or lower the sizes."
            )
    scratch_epochs = scratch_epochs or epochs
    cache: dict = {}
    results = {}
    runs = sum(("frozen" in chosen) + len(sizes) * len([s for s in chosen if s != "frozen"])
               for chosen in per_dataset.values())  # fmt: skip
    progress = _Progress(runs, verbose)
    for name, splits in datasets.items():
        results[name] = _curves_for(
            splits, backbone, sizes, per_dataset[name], epochs, scratch_epochs, top_blocks,
            fine_tune_learning_rate, scratch_learning_rate, batch_size, weights, seed, cache,
            lambda what, accuracy, name=name: progress(f"{name}, {what}", accuracy),
        )  # fmt: skip
    return results


class _Progress:
    """One line per finished run: which run, its accuracy, how many are left, the wall-clock time so far."""

    def __init__(self, total: int, verbose: int):
        self.total, self.verbose, self.done, self.start = total, verbose, 0, time.perf_counter()

    def __call__(self, what: str, accuracy: str) -> None:
        self.done += 1
        if self.verbose:
            elapsed = round(time.perf_counter() - self.start)
            print(
                f"run {self.done}/{self.total} ({what}): test accuracy {accuracy}; "
                f"{self.total - self.done} left, {elapsed // 60}:{elapsed % 60:02d} so far",
                flush=True,
            )


def _clock():
    """CPU time without a GPU (steady on shared cores); wall-clock time on a GPU, which a CPU clock misses."""
    return (time.perf_counter, "s") if gpus() else (time.process_time, "CPU s")


def _curves_for(splits, backbone, sizes, strategies, epochs, scratch_epochs, top_blocks, ft_lr, scratch_lr,
                batch_size, weights, seed, cache, done) -> Curves:  # fmt: skip
    train, test = splits.train, splits.test
    k, image_size = splits.num_classes, train.images.shape[1]
    accuracy = {s: [] for s in strategies}
    seconds = dict.fromkeys(strategies, 0.0)
    subsets = [sample_per_class(train.labels, n, seed) for n in sizes]
    clock, unit = _clock()

    def timed(strategy, fn, *args):
        start = clock()
        out = fn(*args)
        seconds[strategy] += clock() - start
        return out

    # The frozen base: features once (pooled for the head, and the map below the top blocks).
    def frozen_features():
        key = ("frozen", image_size)
        if key not in cache:
            base = load_backbone(backbone, image_size, weights=weights)
            cut_layer = block_ends(base, backbone)[-top_blocks - 1]
            tap = _two_taps(base, backbone, cut_layer)
            cache[key] = (base, cut_layer, tap)
        base, cut_layer, tap = cache[key]
        return base, cut_layer, extract(tap, train.images), extract(tap, test.images)

    _, cut_layer, (pooled, below_top), (pooled_test, below_top_test) = timed("frozen", frozen_features)
    heads = []
    for idx in subsets:
        head = timed("frozen", linear_head, pooled[idx], train.labels[idx])
        heads.append(head_weights(head, k))
        if "frozen" in strategies:
            accuracy["frozen"].append(float(np.mean(head.predict(pooled_test) == test.labels)))
    if "frozen" in strategies:
        done(f"frozen, {len(sizes)} heads", " ".join(f"{a:.3f}" for a in accuracy["frozen"]))

    def runner(strategy):
        key = (strategy, image_size, k)
        if key not in cache:
            model = strategy_model(strategy, backbone, image_size, k, cut_layer, weights)
            cache[key] = _Resettable(model, scratch_lr if strategy == "scratch" else ft_lr)
        return cache[key]

    for strategy in [s for s in strategies if s != "frozen"]:
        for size, idx, head in zip(sizes, subsets, heads):
            if strategy == "fine_tune_top":
                args = (below_top[idx], train.labels[idx], below_top_test, test.labels, epochs, batch_size, head, seed)
            elif strategy == "fine_tune_all":
                args = (train.images[idx], train.labels[idx], test.images, test.labels, epochs, batch_size, head, seed)
            else:
                args = (
                    train.images[idx],
                    train.labels[idx],
                    test.images,
                    test.labels,
                    scratch_epochs,
                    batch_size,
                    None,
                    seed,
                )
            run = timed(strategy, lambda s, a: runner(s).run(*a), strategy, args)  # building the model counts
            accuracy[strategy].append(run)
            done(f"{strategy}, {size} images/class", f"{run:.3f}")
    return Curves(list(sizes), accuracy, seconds, chance=1.0 / k, clock=unit)


def strategy_model(
    strategy: str,
    backbone: str,
    image_size: int,
    num_classes: int,
    cut_layer: str | None = None,
    weights: str | None = "imagenet",
) -> keras.Model:
    """The model a trained strategy fits: `fine_tune_top`, `fine_tune_all` or `scratch`.

    `fine_tune_top` takes the feature map of `cut_layer` as input (the layers above it
    learn); the other two take 0-255 images. The fine-tuning strategies unfreeze with
    `tlkit.unfreeze_all`, so their BatchNorm layers stay frozen (inference mode, ImageNet
    statistics); `scratch` starts from random weights and its BatchNorm layers learn, with a
    momentum of 0.9 so that their moving averages catch up within a few dozen steps.

    Returns:
        An uncompiled `keras.Model` with a softmax `Dense` layer named `head`.
    """
    if strategy not in STRATEGIES[1:]:
        raise ValueError(f"Invalid value for argument `strategy`. Received: strategy={strategy!r}. "
                         f"Expected one of {', '.join(STRATEGIES[1:])}.")  # fmt: skip
    if strategy == "scratch":
        copy = load_backbone(backbone, image_size, weights=None)
        for layer in copy.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = 0.9
        return _classifier(copy, num_classes, training=None, name="scratch", preprocess=backbone)
    copy = load_backbone(backbone, image_size, weights=weights)
    unfreeze_all(copy)  # every layer learns but BatchNorm: training=False alone would not hold during fit
    if strategy == "fine_tune_all":
        return _classifier(copy, num_classes, training=False, name="fine_tune_all", preprocess=backbone)
    if cut_layer is None:
        raise ValueError(
            "Invalid value for argument `cut_layer`. Received: cut_layer=None. Expected the name "
            "of the layer below the top blocks (tlkit.block_ends(base, backbone)[-blocks - 1])."
        )
    top = keras.Model(copy.get_layer(cut_layer).output, copy.output, name="top_blocks")
    return _classifier(top, num_classes, training=False, name="fine_tune_top")


def _two_taps(base: keras.Model, backbone: str, layer: str) -> keras.Model:
    """Images -> (average-pooled output of `base`, feature map of its `layer`), in one pass."""
    base.trainable = False
    inner = keras.Model(base.input, [base.output, base.get_layer(layer).output])
    inputs = keras.Input(shape=base.input_shape[1:])
    top, below = inner(BackbonePreprocessing(backbone)(inputs), training=False)
    return keras.Model(inputs, [keras.layers.GlobalAveragePooling2D()(top), below])
