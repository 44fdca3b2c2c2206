"""Which quadrant of the transfer-learning table is a dataset in? Measure it, do not guess.

Two measurements on a sample of the user's own images decide it:

- *images per class*: counted. "Large" starts at `LARGE_FROM`, the size below which fine-tuning
  never beat the frozen base beyond noise on similar photos in the measured learning curves.
- *where the features are best*: a linear probe at every block end of the pretrained base,
  cross-validated on the sample. "Similar" means the last block's features are the best (within
  `CUT_MARGIN`): what ImageNet taught the top of the network serves this task. "Different" means an
  earlier block beats the last one by more than `CUT_MARGIN`: the top blocks are too ImageNet-specific,
  and that block is where to cut.

Beside them, the *domain distance*: how far the sample's activations lie from the statistics the
network saw on ImageNet (every BatchNormalization layer stores them; the squared 2-Wasserstein distance
between the two Gaussians, in units of the ImageNet variance, averaged over channels and layers). It
says how different the images *look* to the network, without labels. It no longer decides the
quadrant: on the benchmark of `benchmarks/measure_advice.py` (17 tasks), looking different was a weak
predictor of what a strategy gains (Kendall's tau 0.19-0.23), and the probes are the stronger one.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings

import keras
import numpy as np

from tlkit.backbones import (
    BackbonePreprocessing,
    backbone_of,
    block_ends,
    get_spec,
    load_backbone,
    resolve_backbone,
)
from tlkit.checks import check_image_values
from tlkit.data import ImageSet, Splits, sample_per_class
from tlkit.errors import check_int, check_number
from tlkit.layers import nested_layers
from tlkit.model import check_base

# Training images per class from which a dataset counts as "large": the size from which fine-tuning can be
# expected to beat the frozen base. Below it, on every similar set measured, it did not, beyond noise
# (benchmarks/measure_fine_tuning_by_size.py: mobilenet_0.25, 6 fine-tuning epochs, BatchNorm frozen, sizes
# 10-150 a class, seeds 0-2; results in benchmarks/results/). On Caltech-101's five largest classes at 64 px
# (frozen base 0.89-0.98) and with a sixth, harder class (BACKGROUND_Google; frozen 0.80-0.91), neither the
# top blocks nor the whole network fine-tuned stayed 2 points ahead of the frozen base at any size up to 150.
# It is a lower bound: no crossing was seen, so "large" starts at the largest size measured. Where the frozen
# features fit the images badly, size does not decide it: at 48-56 px (frozen 0.56-0.75), fine-tuning won
# by 10-25 points from 10 a class.
LARGE_FROM = 150

# Per backbone: (image size the distance is measured at, threshold, what it was calibrated on).
# mobilenet_0.25 at 96 px, samples of 50 and 200 images, 5 seeds x 2 load sizes: Caltech-101 (10 random
# classes a seed, loaded at 64 and 128 px) 0.132-0.183; Fashion-MNIST (10 classes, loaded at 28 and 64 px)
# 0.317-0.337. The threshold is the midpoint of the gap between the two ranges.
CALIBRATION = {
    "mobilenet_0.25": (96, 0.25, "Caltech-101 0.132-0.183 (similar), Fashion-MNIST 0.317-0.337 (different)"),
}

# An earlier block must beat the last one by more than this (cross-validated probe accuracy on the sample) for
# the advice to cut there. Set on benchmark G (benchmarks/README.md, results/advice.json; score_advice.py): of
# the margins 0-0.10 in steps of 0.005, 0.03-0.04 put the most task sizes within noise of the best strategy (33
# of 34), and this is the middle of them. With each task held out of the choice, the margin chosen on the other
# 16 tasks (0.03-0.035) was within noise on 33 of 34.
CUT_MARGIN = 0.035

# advise refuses fewer images than this; below about 50 the bootstrap interval is usually wide.
MIN_SAMPLE = 10
BOOTSTRAP = 200  # resamples of the sampled images for the distance's interval

STRATEGIES = {
    ("small", "similar"): "freeze the whole base and train a new head on its cached features (lesson 01)",
    ("small", "different"): "cut the base after {cut}, where the probes were best, and train a head on the "
    "features there; compare cut depths on your validation images (lesson 02)",
    ("large", "similar"): "train the head first, then unfreeze the top blocks (or all) and fine-tune at a "
    "lower learning rate from a range test (tlkit.experiments.lr_find; 3-12x below the head's in lesson 03); keep it "
    "only if it beats the frozen base on validation: where the frozen features are near perfect, no recipe won "
    "(lesson 03)",
    ("large", "different"): "cut the base after {cut}, where the probes were best, and train a head there first: "
    "the cheapest strategy, and within noise of the best at every large task size of benchmarks/README.md "
    "(G, 8 epochs); with a longer budget, fine-tune the whole network from the pretrained weights and compare "
    "with the same architecture from random initialisation (lesson 04)",
}


@dataclasses.dataclass(frozen=True)
class Advice:
    """The quadrant of the table, the strategy it recommends, and the numbers behind it.

    `confident` is False when the cut gain's 90% bootstrap interval reaches across `cut_margin`: the
    sample cannot tell whether an earlier cut beats the last block.
    """

    quadrant: str
    strategy: str
    images_per_class: int
    num_classes: int
    domain_distance: float
    distance_threshold: float
    large_from: int
    layer_distances: tuple[float, ...] = ()
    sample_size: int = 0
    backbone: str = ""
    distance_interval: tuple[float, float] = ()  # 90% bootstrap interval over the sampled images
    confident: bool = True  # False: the cut gain's interval reaches across the margin
    block_ends: tuple[str, ...] = ()
    probe_accuracies: tuple[float, ...] = ()  # cross-validated, one per block end
    cut_layer: str = ""  # the block end the probes were best at (the deepest of ties)
    cut_gain: float = 0.0  # its probe accuracy minus the last block's
    cut_gain_interval: tuple[float, float] = ()  # 90% bootstrap interval over the sampled images
    cut_margin: float = CUT_MARGIN

    @property
    def size(self) -> str:
        return self.quadrant.split(" + ")[0]

    @property
    def similarity(self) -> str:
        return self.quadrant.split(" + ")[1]

    @property
    def looks(self) -> str:
        """ "similar" or "different" by the domain distance alone (how the images look to the network)."""
        return "similar" if self.domain_distance < self.distance_threshold else "different"

    def __repr__(self) -> str:
        size_rule = f"< {self.large_from} is small" if self.size == "small" else f">= {self.large_from} is large"
        lines = [
            f"Advice({self.quadrant}: {self.strategy}",
            f"  images per class: {self.images_per_class} (median over {self.num_classes} classes; {size_rule})",
        ]
        if self.probe_accuracies:
            low, high = self.cut_gain_interval or (self.cut_gain, self.cut_gain)
            side = ">" if self.similarity == "different" else "<="
            lines.append(
                f"  probes:           best at {self.cut_layer} {max(self.probe_accuracies):.3f}, last block "
                f"{self.probe_accuracies[-1]:.3f}: gain {self.cut_gain:+.3f} (90% interval {low:+.3f} to "
                f"{high:+.3f}; {side} {self.cut_margin} is {self.similarity})"
            )
        interval = (
            f", 90% interval {self.distance_interval[0]:.3f}-{self.distance_interval[1]:.3f}"
            if self.distance_interval
            else ""
        )
        side = "<" if self.looks == "similar" else ">="
        lines.append(
            f"  domain distance:  {self.domain_distance:.3f} ({side} {self.distance_threshold}: looks {self.looks}; "
            f"{self.backbone} BatchNorm statistics, {self.sample_size} images{interval})"
        )
        if not self.confident:
            lines.append("  UNCERTAIN: the gain's interval reaches across the margin; measure more images")
        return "\n".join(lines) + ")"


def _resized(images: np.ndarray, size: int) -> np.ndarray:
    if images.shape[1:3] == (size, size):
        return images.astype("float32")
    import tensorflow as tf

    return tf.image.resize(images.astype("float32"), (size, size), antialias=True).numpy()


def _batchnorm_layers(base: keras.Model) -> list:
    return [layer for layer in nested_layers(base) if isinstance(layer, keras.layers.BatchNormalization)]


def _checked_images(images) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or len(images) < 2:
        raise ValueError(
            f"images must be at least 2 RGB images shaped (n, height, width, 3); got {images.shape}. "
            "Wrap arrays with tlkit.from_arrays (it turns grayscale into RGB)."
        )
    check_image_values(images, "input")
    return images


def _base_for(backbone, base, image_size):
    """The registry name, the base and the image size the distance is measured with."""
    if base is not None:
        check_base(base)
        backbone = resolve_backbone(base, backbone) if backbone is not None or backbone_of(base) else None
    name = get_spec(backbone or "mobilenet_0.25").name
    if image_size is None:
        image_size = CALIBRATION[name][0] if name in CALIBRATION else (base.input_shape[1] if base else 224)
    check_int("image_size", image_size, 32)
    if base is None:
        base = load_backbone(name, image_size)
    elif base.input_shape[1] not in (None, image_size):
        raise ValueError(
            f"base takes {base.input_shape[1]} px images but the distance is measured at {image_size} px. "
            f"Pass base=None (tlkit loads one) or a base built for image_size={image_size}."
        )
    return name, base, image_size


def image_moments(images, base: keras.Model, backbone: str, image_size: int, batch_size: int = 50):
    """Per BatchNorm layer of `base`: each image's per-channel mean and mean square of the layer's input.

    Returns `(layers, means, squares)`, the last two lists of `(n, channels)` float64 arrays.
    """
    layers = _batchnorm_layers(base)
    if not layers:
        raise ValueError(
            f"{backbone} has no BatchNormalization layers, and the domain distance reads the ImageNet "
            "statistics they store. Use a backbone with BatchNorm (mobilenet*, resnet50, efficientnet_b0...)."
        )
    taps = keras.Model(base.input, [layer.input for layer in layers])
    preprocess = BackbonePreprocessing(backbone)
    means, squares = [[] for _ in layers], [[] for _ in layers]
    for start in range(0, len(images), batch_size):
        batch = _resized(images[start : start + batch_size], image_size)
        for i, o in enumerate(taps(preprocess(batch), training=False)):
            o = keras.ops.cast(o, "float32")  # squared in float16 (mixed precision), 300 would overflow
            means[i].append(keras.ops.convert_to_numpy(keras.ops.mean(o, axis=(1, 2))).astype("float64"))
            squares[i].append(keras.ops.convert_to_numpy(keras.ops.mean(o * o, axis=(1, 2))).astype("float64"))
    return layers, [np.concatenate(m) for m in means], [np.concatenate(q) for q in squares]


@functools.lru_cache(maxsize=4)
def _probe_base(backbone: str, image_size: int) -> keras.Model:
    """The pretrained base at the probes' image size, loaded once per process: advise only reads it."""
    return load_backbone(backbone, image_size)


def block_features(images, base: keras.Model, backbone: str, batch_size: int = 50) -> tuple[list[str], list]:
    """The globally averaged output of every block end of `base` for each image, in one forward pass.

    Returns `(block end names, one (n, channels) float32 array per block end)`. The images are resized to
    the base's input size; the base is not changed (its `trainable` flags stay as they are).
    """
    ends = block_ends(base, backbone)
    taps = keras.Model(base.input, [base.get_layer(name).output for name in ends])
    preprocess = BackbonePreprocessing(backbone)
    features = [[] for _ in ends]
    for start in range(0, len(images), batch_size):
        batch = _resized(images[start : start + batch_size], base.input_shape[1])
        for i, o in enumerate(taps(preprocess(batch), training=False)):
            features[i].append(keras.ops.convert_to_numpy(keras.ops.mean(keras.ops.cast(o, "float32"), axis=(1, 2))))
    return ends, [np.concatenate(f) for f in features]


def probe_correct(features: list[np.ndarray], labels: np.ndarray, seed: int = 0, folds: int = 5) -> np.ndarray:
    """Cross-validated linear probes, one per feature set: which images each gets right.

    Each probe is a logistic regression on standardised features (scikit-learn), scored on the
    images it was not fitted on (stratified `folds`-fold cross-validation, at most as many folds as
    the smallest class has images).

    Args:
        features: one `(n, channels)` array per cut point (pooled block outputs).
        labels: the `n` integer labels.
        seed: fixes the folds.
        folds: the number of folds.

    Returns:
        A boolean array `(cut points, n)`: True where the probe, fitted without that image, got it right.

    Example:

    ```python
    correct = tlkit.advice.probe_correct(block_features, labels)
    print(correct.mean(axis=1))  # cross-validated accuracy at each cut
    ```
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    smallest = int(np.bincount(labels)[np.bincount(labels) > 0].min())
    if smallest < 2:
        raise ValueError(
            f"Cross-validated probes need at least 2 images of every class; the smallest class has {smallest}. "
            "Sample more images (advise's sample=, at least 2 per class)."
        )
    split = StratifiedKFold(n_splits=min(folds, smallest), shuffle=True, random_state=seed)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return np.stack([cross_val_predict(probe, f, labels, cv=split) == labels for f in features])


def _layer_distances(layers, means, squares, weights: np.ndarray | None = None) -> np.ndarray:
    """Distances per layer; `weights` (rows of per-image weights summing to 1) gives one row per resample."""
    n = len(means[0])
    weights = np.full((1, n), 1 / n) if weights is None else weights
    out = []
    for layer, m, q in zip(layers, means, squares):
        mean, meansq = weights @ m, weights @ q
        std = np.sqrt(np.maximum(meansq - mean**2, 0.0))
        ref_mean = keras.ops.convert_to_numpy(layer.moving_mean).astype("float64")
        ref_var = keras.ops.convert_to_numpy(layer.moving_variance).astype("float64") + layer.epsilon
        out.append(np.mean(((mean - ref_mean) ** 2 + (std - np.sqrt(ref_var)) ** 2) / ref_var, axis=-1))
    return np.stack(out, axis=-1)  # (resamples, layers)


def domain_distances(
    images: np.ndarray,
    backbone: str | None = None,
    base: keras.Model | None = None,
    image_size: int | None = None,
    batch_size: int = 50,
) -> np.ndarray:
    """Per BatchNorm layer (shallow to deep): how far `images`' activations lie from ImageNet's.

    For each channel c the input of the layer over the sample has mean m and standard deviation
    s; the layer stores ImageNet's running mean M and variance V. The layer's distance is
    `mean_c ((m - M)^2 + (s - sqrt(V))^2) / V`. `images` are 0-255 RGB, resized to `image_size`
    (default: the size the backbone was calibrated at, else the base's input size). `backbone`
    defaults to the base's own, else `"mobilenet_0.25"`.
    """
    images = _checked_images(images)
    check_int("batch_size", batch_size, 1)
    name, base, image_size = _base_for(backbone, base, image_size)
    layers, means, squares = image_moments(images, base, name, image_size, batch_size)
    return _layer_distances(layers, means, squares)[0]


def advise(
    dataset: ImageSet | Splits,
    backbone: str | None = None,
    base: keras.Model | None = None,
    sample: int = 200,
    distance_threshold: float | None = None,
    large_from: int = LARGE_FROM,
    seed: int = 0,
    cut_margin: float = CUT_MARGIN,
) -> Advice:
    """Places `dataset` in the transfer-learning table, with the numbers behind the choice.

    On `sample` images spread over the classes it runs one forward pass through the pretrained
    base, fits a cross-validated linear probe at every block end, and reads the BatchNorm
    statistics. The size comes from the class counts, the similarity from the probes (an earlier
    block better than the last by more than `cut_margin` is "different"), and the domain distance
    is reported beside them. The probes' gain comes with a 90% bootstrap interval over the sampled
    images: when it reaches across the margin, the sample cannot tell, the advice says so
    (`confident` is False) and a warning asks for more images. Fewer than `MIN_SAMPLE` images, a
    single class, or fewer than 2 sampled images of a class, are refused. 1-6 seconds for 200
    images on 2 CPU cores (benchmark G, 102 calls).

    Args:
        dataset: the target data; for `Splits`, its training split is what is counted and sampled.
        backbone: the pretrained model you mean to use (its ImageNet statistics are the reference);
            default: the base's own, else `"mobilenet_0.25"`.
        base: that backbone already loaded (at the calibrated image size), to save loading it again.
        sample: how many images (spread over the classes) are probed and measured.
        distance_threshold: the distance from which a dataset looks "different"; default the
            calibrated one for `backbone` (`CALIBRATION`).
        large_from: images per class from which a dataset counts as "large" (`LARGE_FROM`).
        seed: fixes the sample, the folds and the bootstrap.
        cut_margin: how much better (probe accuracy) an earlier block must be to cut there (`CUT_MARGIN`).

    Returns:
        An `Advice`: the quadrant, the strategy, and the numbers behind them (images per class,
        the probes' accuracy at every block end, the gain of the best cut with its interval, the
        domain distance with its interval, the thresholds).

    Example:

    ```python
    advice = tlkit.advise(tlkit.load_dataset("path/to/photos", 160))
    print(advice)  # e.g. small + similar: feature extraction, with the probes and the distance
    ```
    """
    train = dataset.train if isinstance(dataset, Splits) else dataset
    if not isinstance(train, ImageSet):
        raise TypeError(
            f"advise takes an ImageSet or Splits, got {type(dataset).__name__}. Load data with "
            "tlkit.load_dataset(...) or wrap arrays with tlkit.from_arrays(images, labels)."
        )
    check_int("sample", sample, MIN_SAMPLE, fix="The probes and the distance need that many images to mean anything.")
    check_int("large_from", large_from, 1)
    check_int("seed", seed)
    cut_margin = check_number("cut_margin", cut_margin, 0)
    if base is not None:
        check_base(base)
    name = get_spec(resolve_backbone(base, backbone) if base is not None and (backbone or backbone_of(base))
                    else (backbone or "mobilenet_0.25")).name  # fmt: skip
    if distance_threshold is None:
        if name not in CALIBRATION:
            raise ValueError(
                f"No calibrated distance threshold for {name} (calibrated: {', '.join(CALIBRATION)}). "
                "Measure tlkit.experiments.domain_distances(...).mean() on a dataset you know is similar and one "
                "you know is different, and pass distance_threshold= between the two."
            )
        distance_threshold = CALIBRATION[name][1]
    distance_threshold = check_number("distance_threshold", distance_threshold, 0, exclusive_minimum=True)
    counts = train.class_counts()
    classes = int((counts > 0).sum())
    if len(train) < MIN_SAMPLE or classes < 2:
        raise ValueError(
            f"advise cannot place a dataset of {len(train)} images in {classes} class(es): too few to "
            f"measure anything that means something. Received: {len(train)} images. Expected at least "
            f"{MIN_SAMPLE} images of at least 2 classes (the calibration used 50 and more)."
        )
    each = max(1, sample // classes)  # spread evenly: all of a smaller class
    picks = sample_per_class(train.labels, each, seed, allow_fewer=True)
    fewest = int(np.bincount(train.labels[picks])[counts > 0].min())
    if fewest < 2:
        raise ValueError(
            f"advise needs at least 2 sampled images of every class for its cross-validated probes; "
            f"Received: sample={sample} over {classes} classes ({fewest} image of the smallest). "
            f"Pass sample={2 * classes} or more (or merge classes with a single image)."
        )
    images = _checked_images(train.images[picks])
    distinct = len(np.unique(images.reshape(len(images), -1), axis=0))
    if distinct < MIN_SAMPLE:
        raise ValueError(
            f"advise cannot measure anything on {distinct} distinct image(s): the {len(images)} sampled "
            f"images are copies of each other. Received: {distinct} distinct of {len(images)}. Expected at least "
            f"{MIN_SAMPLE} different images (duplicated or blank files?)."
        )
    name, base, image_size = _base_for(name, base, None)
    layers, means, squares = image_moments(images, base, name, image_size)
    # The probes look at the images at their own size (the size they will be trained at), not the distance's.
    probe_size = max(get_spec(name).min_size, min(images.shape[1:3]))
    probe_base = base if base.input_shape[1] == probe_size else _probe_base(name, probe_size)
    ends, features = block_features(images, probe_base, name)
    layer_distances = _layer_distances(layers, means, squares)[0]
    distance = float(layer_distances.mean())
    resamples = np.random.default_rng(seed).multinomial(len(picks), np.full(len(picks), 1 / len(picks)), BOOTSTRAP)
    weights = resamples / len(picks)
    spread = _layer_distances(layers, means, squares, weights).mean(axis=-1)
    distance_interval = tuple(float(v) for v in np.percentile(spread, [5, 95]))

    correct = probe_correct(features, train.labels[picks], seed)
    accuracies = correct.mean(axis=1)
    best = len(ends) - 1 - int(np.argmax(accuracies[::-1]))  # the deepest of equally good cuts
    gain = round(float(accuracies[best] - accuracies[-1]), 9)  # 4/200 is 0.02, not 0.020000000000000018
    gains = weights @ (correct[best].astype(float) - correct[-1])
    low, high = (round(float(v), 9) for v in np.percentile(gains, [5, 95]))
    confident = not low <= cut_margin < high
    per_class = int(np.median(counts[counts > 0]))
    size = "small" if per_class < large_from else "large"
    similarity = "different" if gain > cut_margin else "similar"
    if not confident:
        warnings.warn(
            f"advise: the best probe ({ends[best]}) beats the last block by {gain:+.3f} on {len(picks)} images, "
            f"with a 90% interval of {low:+.3f} to {high:+.3f}, which reaches across the margin {cut_margin}: this "
            f"sample cannot tell whether to cut earlier. Pass more images (sample=, now {sample}; a larger dataset).",
            stacklevel=2,
        )
    return Advice(
        quadrant=f"{size} + {similarity}",
        strategy=STRATEGIES[(size, similarity)].format(cut=ends[best]),
        images_per_class=per_class,
        num_classes=classes,
        domain_distance=distance,
        distance_threshold=float(distance_threshold),
        large_from=int(large_from),
        layer_distances=tuple(float(d) for d in layer_distances),
        sample_size=len(picks),
        backbone=name,
        distance_interval=distance_interval,
        confident=confident,
        block_ends=tuple(ends),
        probe_accuracies=tuple(float(a) for a in accuracies),
        cut_layer=ends[best],
        cut_gain=gain,
        cut_gain_interval=(low, high),
        cut_margin=float(cut_margin),
    )
