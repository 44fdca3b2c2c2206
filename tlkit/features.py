"""Feature extraction: run a frozen base once, then train heads on the cached features.

A frozen base gives the same output for the same image every epoch, so computing it
every epoch (as `model.fit` on the whole model does) repeats the expensive part of the
work. Extract once, and a head trains in a fraction of a second per epoch. What is lost:
random augmentation, which would change the features every epoch.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from tlkit.backbones import BackbonePreprocessing, resolve_backbone, takes_raw_pixels
from tlkit.checks import check_feature_data, check_image_values, check_images
from tlkit.errors import check_choice, check_int, check_number, invalid
from tlkit.model import check_base, classifier_head, layer_index
from tlkit.runs import NonFiniteStop
from tlkit.train import History, compile_model, history_from


def pooled(x, pooling: str):
    """Pools a feature map to a vector: `avg`, `max`, or `grid` (keeps layout).

    `grid` is the global average followed by the averages of cells half the map's size:
    2x2 cells on most maps, 3x3 on a 3x3 map (96 px into a 32x-downsampling base), one on 1x1.
    `grid4` is the same with cells a quarter of the map's size (4x4 cells on maps of 4 px and more).
    """
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D()(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D()(x)
    if pooling in ("grid", "grid4"):  # grid4: cells a quarter of the map's size (4x4), finer for early maps
        step = max(1, x.shape[1] // (2 if pooling == "grid" else 4))
        cells = keras.layers.AveragePooling2D(pool_size=step, strides=step)(x)
        return keras.layers.Concatenate()([keras.layers.GlobalAveragePooling2D()(x), keras.layers.Flatten()(cells)])
    raise ValueError(f"pooling must be 'avg', 'max', 'grid' or 'grid4'; got {pooling!r}.")


def feature_extractor(
    base: keras.Model,
    backbone: str | None = None,
    layers: Sequence[str] | None = None,
    pooling: str = "avg",
) -> keras.Model:
    """Images (0-255) -> preprocess -> frozen `base` -> pooled features.

    `backbone` (its registry name, which picks the preprocessing) defaults to the base's
    own; a name that does not match the base is an error. With `layers`, one output per
    named layer (one forward pass serves every cut point).

    Args:
        base: the pretrained base (`tlkit.load_backbone`).
        backbone: its registry name (default: read from the base).
        layers: names of layers to read instead of the base's output (e.g. `tlkit.block_ends(base)`).
        pooling: `"avg"` (global average), `"max"`, or `"grid"` or `"grid4"` (the global average plus
            the averages of a 2x2 or 4x4 grid of cells: the layout kept).

    Returns:
        A model from 0-255 images to features: one output, or a list of them in the order of
        `layers`.

    Example:

    ```python
    extractor = tlkit.feature_extractor(base)
    features = tlkit.extract(extractor, splits.train.images)  # (n, channels)
    ```
    """
    check_base(base)
    backbone = resolve_backbone(base, backbone)
    check_choice("pooling", pooling, ("avg", "max", "grid", "grid4"))
    if layers is not None:
        if isinstance(layers, str) or not len(layers):
            raise invalid("layers", layers, "a non-empty list of layer names, e.g. tlkit.block_ends(base)")
        for name in layers:
            layer_index(base, name)
        if len(set(layers)) != len(layers):
            raise invalid("layers", list(layers), "each layer named once (one output per name)")
    base.trainable = False
    inputs = keras.Input(shape=base.input_shape[1:], name="images")
    x = BackbonePreprocessing(backbone, name="preprocess")(inputs)
    if layers is None:
        outputs = pooled(base(x, training=False), pooling)
    else:
        tap = keras.Model(base.input, [base.get_layer(name).output for name in layers], name=f"{base.name}_taps")
        outputs = [pooled(t, pooling) for t in tap(x, training=False)]
    return keras.Model(inputs, outputs, name=f"{base.name}_features")


def extract(extractor: keras.Model, images: np.ndarray, batch_size: int = 64):
    """Runs `extractor` once over `images` (no augmentation): the cached features.

    The images are padded to whole batches, so the model is traced for one batch shape
    only (a smaller last batch would cost a second trace, about a third of a pass).
    The images are checked first (shape, 0-255 values), the features after (NaN or inf).
    The features are float32 under any precision policy (a mixed precision base computes in float16).

    Args:
        extractor: a model from images to features (`tlkit.feature_extractor`).
        images: `(n, height, width, 3)` images, 0-255.
        batch_size: images per batch.

    Returns:
        The float32 features: one array, or a list of them for an extractor with several outputs.

    Example:

    ```python
    train_features = tlkit.extract(extractor, splits.train.images)
    head = tlkit.train_head(train_features, splits.train.labels, splits.num_classes).model
    ```
    """
    if not isinstance(extractor, keras.Model):
        raise invalid("extractor", type(extractor).__name__, "a Keras model, e.g. tlkit.feature_extractor(base)")
    batch_size = check_int("batch_size", batch_size, 1)
    if hasattr(images, "element_spec") or not hasattr(images, "__len__"):
        raise TypeError(
            f"Invalid value for argument `images`. Received: {type(images).__name__}. Expected a NumPy array of "
            "images (n, height, width, 3), e.g. splits.train.images."
        )
    images = np.asarray(images)
    if images.ndim == 0 or len(images) == 0:
        raise ValueError(f"Invalid value for argument `images`. Received: {images.shape[:1] or 'no'} images. "
                         "Expected at least one image.")  # fmt: skip
    check_images(extractor, images.shape, "input")
    check_image_values(images, "input", raw_pixels=takes_raw_pixels(extractor))
    n = len(images)
    batch_size = min(batch_size, n)
    padding = -n % batch_size
    if padding:
        images = np.concatenate([images, np.zeros((padding, *images.shape[1:]), images.dtype)])
    features = extractor.predict(images, batch_size=batch_size, verbose=0)
    # float32 whatever the policy: under mixed precision the base computes in float16, and cached features
    # are compared, scaled and fed to heads afterwards (a float16 variance overflows at 256)
    features = (
        [f[:n].astype("float32") for f in features] if isinstance(features, list) else features[:n].astype("float32")
    )
    for part in features if isinstance(features, list) else [features]:
        bad = ~np.isfinite(part)
        if bad.any():
            rows = int(bad.reshape(len(part), -1).any(axis=1).sum())
            raise FloatingPointError(
                f"{extractor.name} gave NaN or infinite features for {rows} of {n} images. Received: images from "
                f"{float(images[:n].min()):g} to {float(images[:n].max()):g}. Expected finite features: check the "
                "input range (0-255 RGB for tlkit extractors) and the base's weights (a base trained with too high "
                "a learning rate can hold NaN)."
            )
    return features


def head_model(num_features: int, num_classes: int, dropout: float = 0.2, hidden: Sequence[int] = ()) -> keras.Model:
    """The classifier head on its own: dropout and a softmax `Dense`, named like `build_classifier`'s.

    Args:
        num_features: the width of one feature vector.
        num_classes: one output per class.
        dropout: the dropout rate before each `Dense` layer.
        hidden: the units of each hidden `Dense(units, "relu")` layer before the output layer
            (`hidden_1`, `hidden_2`, ...); `()` for a linear head.

    Returns:
        A `keras.Model` from features to class probabilities.
    """
    inputs = keras.Input(shape=(num_features,), name="features")
    outputs = classifier_head(inputs, num_classes, dropout, hidden)
    return keras.Model(inputs, outputs, name="head_on_features")


def train_head(
    features: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    val: tuple[np.ndarray, np.ndarray] | None = None,
    epochs: int = 30,
    learning_rate: float = 1e-3,
    batch_size: int = 32,
    dropout: float = 0.2,
    hidden: Sequence[int] = (),
    verbose: int = 0,
) -> History:
    """Trains a new head on cached features.

    Args:
        features, labels: the cached features, one row per image, and their class indices.
        num_classes: one output per class, at least 2.
        val: optional `(features, labels)` to report validation metrics on.
        epochs, learning_rate, batch_size: the training run (Adam).
        dropout: the dropout rate before each `Dense` layer.
        hidden: units of hidden `Dense(units, "relu")` layers before the output layer, e.g.
            `(256,)`; `()` (the default) is a linear head.
        verbose: passed to `fit`.

    Returns:
        The `History` of the run; `history.model` is the trained head.

    Raises `FloatingPointError` when the loss becomes NaN or infinite (lower the learning rate).

    Example:

    ```python
    features = tlkit.extract(tlkit.feature_extractor(base), splits.train.images)
    head = tlkit.train_head(features, splits.train.labels, splits.num_classes).model
    tlkit.copy_head(head, model)  # into the full model built on the same base
    ```
    """
    num_classes = check_int("num_classes", num_classes, 2, fix="One output per class: e.g. splits.num_classes.")
    features, labels, val = check_feature_data(features, labels, num_classes, val)
    check_int("epochs", epochs, 1)
    check_int("batch_size", batch_size, 1)
    check_number("learning_rate", learning_rate, 0, 1, exclusive_minimum=True)
    check_number("dropout", dropout, 0, 1, exclusive_maximum=True)
    if (
        isinstance(hidden, (str, bytes))
        or not isinstance(hidden, Sequence)
        or any(isinstance(u, bool) or not isinstance(u, (int, np.integer)) or u < 1 for u in hidden)
    ):
        raise invalid("hidden", hidden, "a sequence of positive layer widths such as (256,), or () for a linear head")
    head = head_model(features.shape[-1], num_classes, dropout, tuple(hidden))
    compile_model(head, learning_rate)
    if keras.backend.backend() != "torch":  # PyTorch's trainer runs one step per call
        head.steps_per_execution = -(-len(features) // batch_size)  # one call per epoch, not one per step
    if keras.backend.backend() == "tensorflow":  # serves an epoch in about half the time of fit's own slicing
        data = {"x": _dataset(features, labels, batch_size, shuffle=True), "shuffle": False}  # shuffled already
        val = val and _dataset(*val, batch_size)
    else:
        data = {"x": features, "y": labels, "batch_size": batch_size, "shuffle": True}
    result = head.fit(**data, validation_data=val, epochs=epochs, verbose=verbose, callbacks=[NonFiniteStop()])
    return history_from(result, head)


def _dataset(features: np.ndarray, labels: np.ndarray, batch_size: int, shuffle: bool = False):
    """Cached features as a batched, prefetched `tf.data` pipeline (reshuffled every epoch)."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((features, labels))
    if shuffle:
        ds = ds.shuffle(len(features), reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def copy_head(head: keras.Model, classifier: keras.Model) -> None:
    """Puts a head trained on features into a full `build_classifier` model (layer `head`).

    Args:
        head: a linear head trained on the base's pooled features (`tlkit.train_head(...).model`).
        classifier: a `tlkit.build_classifier` model on the same base and number of classes.

    Example:

    ```python
    head = tlkit.train_head(features, splits.train.labels, splits.num_classes).model
    model = tlkit.build_classifier(base, splits.num_classes)
    tlkit.copy_head(head, model)  # fine-tuning starts from a trained head, not a random one
    ```
    """
    extra = [layer.name for layer in head.layers if layer.name.startswith("hidden_") and layer.weights]
    if extra:
        raise ValueError(
            f"Invalid value for argument `head`. Received: a head with hidden layers {extra}. Expected a linear "
            "head (train_head without `hidden`): build_classifier has one Dense layer to copy into. Apply a "
            "hidden-layer head to the classifier's features instead: head(feature_extractor(images))."
        )
    for role, model in (("head", head), ("classifier", classifier)):
        if not isinstance(model, keras.Model) or "head" not in [layer.name for layer in model.layers]:
            raise invalid(role, getattr(model, "name", type(model).__name__), "a Keras model with a layer named "
                          "'head' (tlkit.train_head(...).model, tlkit.build_classifier(...))")  # fmt: skip
    source, target = head.get_layer("head"), classifier.get_layer("head")
    shapes = [tuple(w.shape) for w in source.weights], [tuple(w.shape) for w in target.weights]
    if shapes[0] != shapes[1]:
        raise ValueError(
            f"Invalid value for argument `head`. Received: a head with weights {shapes[0]}. Expected weights "
            f"{shapes[1]}, the classifier's: train the head on the features of the same base (same pooling) "
            "and with the same num_classes."
        )
    target.set_weights(source.get_weights())


def accuracy(model: keras.Model, inputs, labels: np.ndarray, batch_size: int = 64) -> float:
    """Top-1 accuracy of `model` on `inputs` (images or features).

    Args:
        model: a classifier (or a head, given features).
        inputs: what the model takes: images, or features from `tlkit.extract`.
        labels: the integer class of each input.
        batch_size: inputs per `predict` batch.

    Returns:
        The share of inputs whose highest-scoring class is their label, in 0-1.

    Example:

    ```python
    tlkit.accuracy(model, splits.test.images, splits.test.labels)  # e.g. 0.93
    ```
    """
    if not isinstance(model, keras.Model):
        raise invalid("model", type(model).__name__, "a Keras classifier or head")
    labels = np.asarray(labels)
    first = inputs[0] if isinstance(inputs, (list, tuple)) and inputs else inputs  # a model with several inputs
    count = len(first) if hasattr(first, "__len__") else len(labels)
    if labels.ndim != 1 or len(labels) == 0 or len(labels) != count:
        raise ValueError(
            f"Invalid value for argument `labels`. Received: labels of shape {labels.shape} for {count} "
            "inputs. Expected one integer class per input (at least one)."
        )
    batch_size = check_int("batch_size", batch_size, 1)
    predictions = model.predict(inputs, batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(predictions, axis=-1) == labels))
