"""Checks that data fits a model, run before the first (slow) epoch or pass starts.

Keras reports a wrong image shape or an out-of-range label deep inside a compiled
training step (and on a GPU an out-of-range label gives a silent NaN loss instead); images
in the wrong value range train without any error at all. These checks look at the data
first and name the fix. They read a `tf.data` pipeline only through its public API: its
`element_spec` and its first batch (plus, for a pipeline that `tlkit.to_tf` built, the labels
it was built from, which `to_tf` registers here).
"""

from __future__ import annotations

import warnings
import weakref

import numpy as np

from tlkit.errors import invalid

# Pipelines built by tlkit.to_tf -> (all their labels, their batch size). Weak: a pipeline
# that is no longer used drops out; nothing is stored on the pipeline itself.
_KNOWN_PIPELINES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def pixel_summary(images: np.ndarray) -> np.ndarray:
    """A few values with the verdict of `check_image_values` on all of `images`: min, max (and NaN if any)."""
    images = np.asarray(images)
    if images.size == 0 or not np.issubdtype(images.dtype, np.number) or images.dtype == bool:
        return images[:0].reshape(-1)
    finite = images[np.isfinite(images)] if np.issubdtype(images.dtype, np.floating) else images
    values = [finite.min(), finite.max()] if finite.size else []
    if finite.size < images.size:
        values.append(np.nan)
    return np.asarray(values, images.dtype)


def remember_pipeline(dataset, images: np.ndarray, labels: np.ndarray, batch_size: int) -> None:
    """Records what `check_training_data` needs of a pipeline that tlkit built: its labels,
    batch size and pixel range (so that checking it costs no pass over the pipeline)."""
    try:
        _KNOWN_PIPELINES[dataset] = (np.asarray(labels), int(batch_size), pixel_summary(images))
    except TypeError:  # not weak-referenceable: the first-batch checks run instead
        pass


def _known(dataset):
    try:
        return _KNOWN_PIPELINES.get(dataset)
    except TypeError:
        return None


def _first_batch(dataset):
    """`(images, labels)` of the first batch of a `tf.data` pipeline, as NumPy arrays."""
    element = next(iter(dataset.take(1)), None)
    if not isinstance(element, (tuple, list)) or len(element) < 2:
        return None, None
    return np.asarray(element[0]), np.asarray(element[1])


def check_image_values(images, role: str = "train", raw_pixels: bool = True, floats_0_1: str = "raise") -> None:
    """Raises when `images` hold no valid pixel values; with `raw_pixels`, when they are not 0-255.

    Args:
        images: a NumPy batch or set of images.
        role: how the message names them ("train", "validation", ...).
        raw_pixels: the consumer takes 0-255 RGB (a tlkit model): negative values, values
            above 255 and floats that all lie in [0, 1] are refused.
        floats_0_1: "raise" refuses floats in [0, 1]; "ignore" leaves them to the caller.
    """
    images = np.asarray(images)
    if images.dtype == bool or not np.issubdtype(images.dtype, np.number) or np.iscomplexobj(images):
        raise ValueError(
            f"Invalid {role} images. Received: images of dtype {images.dtype}. Expected numbers: uint8 RGB "
            "values 0-255 (or floats 0-255). Convert them, e.g. np.asarray(images, 'uint8')."
        )
    if images.size == 0:
        return
    if np.issubdtype(images.dtype, np.floating) and not np.isfinite(images).all():
        raise ValueError(
            f"Invalid {role} images. Received: NaN or infinite pixel values. "
            "Expected finite values 0-255. Find where they come from (a division by zero in normalisation, "
            "a failed decode) or replace them, e.g. np.nan_to_num(images)."
        )
    if not raw_pixels:
        return
    low, high = float(images.min()), float(images.max())
    if low < 0:
        raise ValueError(
            f"Invalid {role} images. Received: values from {low:g} to {high:g}. Expected raw RGB values 0-255: "
            "tlkit models apply the backbone's own preprocessing inside. These look normalised already "
            "(e.g. to [-1, 1] or mean 0); pass the images before that step, e.g. (x + 1) * 127.5 for [-1, 1]."
        )
    if high > 255:
        raise ValueError(
            f"Invalid {role} images. Received: values up to {high:g}. Expected RGB values 0-255. Scale them "
            "to 0-255 first (16-bit images: x / 257; other ranges: x * 255 / x.max())."
        )
    if floats_0_1 == "raise" and np.issubdtype(images.dtype, np.floating) and 0 < high <= 1:
        raise ValueError(
            f"Invalid {role} images. Received: float values from {low:g} to {high:g} (images scaled to 0-1). "
            "Expected RGB values 0-255: tlkit models preprocess 0-255 images inside, and 0-1 images look "
            "black to them. Multiply by 255 (images * 255), or wrap them with tlkit.from_arrays, which does it."
        )


def check_images(model, shape: tuple, role: str = "train") -> None:
    """Raises when images of `shape` (a batch, NHWC; None where unknown) do not fit the model's input."""
    expected = tuple(model.input_shape)
    if len(shape) != len(expected):
        raise ValueError(
            f"The {role} images have shape {tuple(shape[1:])} per batch item, but {model.name} takes "
            f"{expected[1:]}. Pass batches of images (n, height, width, channels)."
        )
    if len(expected) != 4:
        return
    channels, wanted = shape[-1], expected[-1]
    if None not in (channels, wanted) and channels != wanted:
        fix = {
            1: "Grayscale images must be repeated to 3 channels: tlkit.from_arrays(images, labels) does it.",
            4: "RGBA images must drop their alpha channel: tlkit.from_arrays(images, labels) does it.",
        }.get(channels, "Convert the images to RGB.")
        raise ValueError(f"The {role} images have {channels} channel(s); {model.name} takes {wanted}. {fix}")
    size, wanted_size = tuple(shape[1:3]), tuple(expected[1:3])
    if None not in size + wanted_size and size != wanted_size:
        raise ValueError(
            f"The {role} images are {size[0]}x{size[1]} pixels; {model.name} was built for "
            f"{wanted_size[0]}x{wanted_size[1]}. Load the data with image_size={wanted_size[0]} "
            "or build the backbone for the data's size."
        )


def check_labels(
    labels: np.ndarray,
    num_classes: int,
    role: str = "train",
    complete: bool = False,
    name: str = "the model",
    classes: str | None = None,
    fix: str | None = None,
) -> None:
    """Raises when `labels` are not integer class indices that fit `num_classes` outputs.

    The package's one label check: training, validation and detection labels, and the
    labels `tlkit.from_arrays` wraps, all go through it.

    Args:
        labels: one class index per image (a column of them is accepted too).
        num_classes: how many classes there are: labels run from 0 to `num_classes - 1`.
        role: what the labels are for, in the message (`"train"`, `"validation"`, ...).
        complete: the labels are all of them, not one batch: refuse a single class (validation
            labels excepted) and, for training labels, warn when there are more outputs than the
            labels use.
        name: what has the outputs, in the message (`"the model"`, `"the detector"`).
        classes: how the classes are counted, in the message; default `"{num_classes} outputs"`.
        fix: the fix for labels out of range; default: build the head with more outputs.

    Returns:
        The labels as an array shaped `(n,)` (a column of them flattened), unchanged otherwise.
    """
    outputs = num_classes
    try:
        labels = np.asarray(labels)
    except (TypeError, ValueError):  # ragged nested lists
        raise ValueError(
            f"The {role} labels are a {type(labels).__name__} that is not a rectangular array; tlkit models take "
            "one integer class index per image (sparse labels). For one-hot labels pass labels.argmax(-1)."
        ) from None
    if labels.ndim == 2 and labels.shape[-1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise ValueError(
            f"The {role} labels have shape {labels.shape}; tlkit models take one integer class index per image "
            "(sparse labels). For one-hot labels pass labels.argmax(-1)."
        )
    if labels.size == 0:
        raise ValueError(f"The {role} data is empty (0 labels). Expected at least one image per class.")
    numeric = np.issubdtype(labels.dtype, np.number) and labels.dtype != bool and not np.iscomplexobj(labels)
    whole = numeric and (
        np.issubdtype(labels.dtype, np.integer) or (np.all(np.isfinite(labels)) and np.all(np.mod(labels, 1) == 0))
    )
    if not whole:
        # The first value that is not a whole number (the first value, for labels that are not numbers).
        fractions = (v for v in labels.flat if numeric and not (np.isfinite(v) and v == np.floor(v)))
        example = next(fractions, labels.flat[0])
        raise ValueError(
            f"The {role} labels are {labels.dtype} values such as {example!r}; pass integer class "
            "indices 0..num_classes-1 (e.g. from tlkit.load_dataset or tlkit.from_arrays)."
        )
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= outputs:
        fix = fix or (
            f"Build the head with num_classes={max(high + 1, 2)} (e.g. num_classes=splits.num_classes), or fix "
            "the labels."
        )
        raise ValueError(
            f"The {role} labels run from {low} to {high}, but {name} has {classes or f'{outputs} outputs'} "
            f"(labels 0..{outputs - 1}). {fix}"
        )
    if complete:
        if low == high and role != "validation":  # a small validation set may hold one class
            raise ValueError(
                f"The {role} labels hold a single class ({low}) in {labels.size} images. Expected images of at "
                "least 2 classes: a classifier learns nothing from one. Check the split (e.g. shuffle before "
                "slicing) or the class selection."
            )
        if role == "train" and high + 1 < outputs:
            warnings.warn(
                f"{name} has {outputs} outputs but the train labels only use 0..{high}: "
                f"did you mean num_classes={high + 1}?",
                stacklevel=3,
            )
    return labels


def _parts(data, labels, role: str):
    """`(shape, pixels, labels, complete, batch_size)` of what `fit` takes, or None where unchecked.

    `pixels` are values with the same verdict under `check_image_values` as all the images.
    """
    if isinstance(data, (tuple, list)) and len(data) >= 2 and labels is None:
        images = np.asarray(data[0])
        return images.shape, images, np.asarray(data[1]), True, None
    if hasattr(data, "__array__"):
        images = np.asarray(data)
        if labels is not None and len(labels) != len(images):
            raise ValueError(f"{len(images)} {role} images but {len(labels)} labels: pass one label per image.")
        return images.shape, images, labels, labels is not None, None
    if not (hasattr(data, "element_spec") and hasattr(data, "take")):
        return None  # a PyDataset or generator: Keras checks it
    spec = data.element_spec
    if not isinstance(spec, (tuple, list)) or len(spec) < 2 or not hasattr(spec[0], "shape"):
        return None
    known = _known(data)
    if known is not None:  # built by tlkit.to_tf: all its labels and its pixel range, without a pass over it
        labels, batch_size, pixels = known
        return tuple(spec[0].shape), pixels, labels, True, batch_size
    pixels, labels = _first_batch(data)  # any other pipeline: its first batch
    if pixels is None:
        raise ValueError(f"The {role} pipeline is empty: it yields no batch. Expected at least one batch.")
    return pixels.shape, pixels, labels, False, len(pixels)


def check_features(
    features, role: str = "features", width: int | None = None, *, columns: str = "features", fix: str | None = None
) -> np.ndarray:
    """`features` as an array, if they are finite numbers shaped `(n, width)`; raises otherwise.

    Args:
        features: cached features, one row per image (`tlkit.extract`).
        role: what they are, for the message (`"features"`, `"val features"`, ...).
        width: the number of columns they must have (the training features'), or None.
        columns: what the columns are, for the message (`"features"`, `"source classes"`, ...).
        fix: where valid ones come from, a sentence ending the messages; default: `tlkit.extract`.

    Returns:
        The features as a NumPy array, with at least one column.
    """
    source = f". {fix}" if fix else ", e.g. tlkit.extract(extractor, images) with one output."
    wanted = f"numbers shaped (n, {columns}){source}"
    try:
        features = np.asarray(features)
    except (TypeError, ValueError):  # ragged nested lists
        raise ValueError(
            f"Invalid {role}. Received: a {type(features).__name__} that is not a rectangular array (rows of "
            f"different lengths). Expected {wanted}"
        ) from None
    if (
        features.ndim != 2
        or not np.issubdtype(features.dtype, np.number)
        or features.dtype == bool
        or np.iscomplexobj(features)
    ):
        received = f"an array of shape {features.shape} and dtype {features.dtype}"
        raise ValueError(f"Invalid {role}. Received: {received}. Expected {wanted}")
    if width is not None and features.shape[-1] != width:
        raise ValueError(f"The {role} have {features.shape[-1]} columns; the training features have {width}.")
    if features.shape[1] == 0:
        raise ValueError(
            f"Invalid {role}. Received: an array of shape {features.shape}, with no columns. Expected at least one "
            f"column: {wanted}"
        )
    if not np.isfinite(features).all():
        again = "extract them again from 0-255 images (tlkit.extract checks them)."
        expected = f"finite numbers. {fix}" if fix else f"finite features: {again}"
        raise ValueError(f"The {role} hold NaN or infinite values. Expected {expected}")
    return features


def check_feature_data(features, labels, num_classes: int, val=None, val_required: bool = False):
    """Cached features with their labels, and optional held-out `(features, labels)`, checked for a new head.

    The one check of what `tlkit.train_head` and `tlkit.experiments.learning_rate_sweep` train on.

    Args:
        features, labels: the training features, one row per image, and their class indices.
        num_classes: the head's outputs.
        val: a `(features, labels)` pair, or None.
        val_required: refuse `val=None`.

    Returns:
        `(features, labels, val)` as NumPy arrays (`val` None when not given).
    """
    features = check_features(features, "features")
    labels = np.asarray(labels)
    if len(features) != len(labels):
        raise ValueError(f"{len(features)} feature rows but {len(labels)} labels: pass one label per image.")
    check_labels(labels, num_classes, complete=True)
    if val is None and not val_required:
        return features, labels, None
    if not isinstance(val, (tuple, list)) or len(val) != 2:
        raise invalid("val", type(val).__name__, "a (features, labels) pair of held-out data" + ("" if val_required
                      else ", or None"))  # fmt: skip
    val = (check_features(val[0], "val features", features.shape[-1]), np.asarray(val[1]))
    if len(val[0]) != len(val[1]):
        raise ValueError(f"{len(val[0])} validation feature rows but {len(val[1])} labels.")
    check_labels(val[1], num_classes, role="validation")
    return features, labels, val


def check_compiled(model, why: str) -> None:
    """Raises unless `model` is a compiled Keras model; `why` ends the message (the fix, in context)."""
    import keras

    if not isinstance(model, keras.Model):
        raise TypeError(
            f"Invalid value for argument `model`. Received: {type(model).__name__}. Expected a Keras model."
        )
    if getattr(model, "optimizer", None) is None:
        raise ValueError(
            f"{model.name} is not compiled. Received: an uncompiled model. Expected a compiled one: call "
            f"tlkit.compile_model(model, learning_rate) first ({why})."
        )


def check_output_dtype(model) -> None:
    """Raises when `model` returns float16 or bfloat16: its last layer must compute in float32.

    Under a mixed precision policy (`tlkit.setup` sets `mixed_float16` on a GPU) every layer
    computes in float16 unless told otherwise. A softmax or sigmoid there rounds probabilities to
    about 3 decimal digits and can overflow; the Keras mixed precision guide keeps the model's
    output in float32, and so does every model in this course.

    Args:
        model: a built Keras model.

    Example:

    ```python
    keras.mixed_precision.set_global_policy("mixed_float16")
    outputs = keras.layers.Dense(3, activation="softmax", dtype="float32")(hidden)  # passes the check
    ```
    """
    import keras

    policy = keras.mixed_precision.global_policy().name
    for output in getattr(model, "outputs", None) or []:
        dtype = str(getattr(output, "dtype", ""))
        if dtype.endswith("float16"):
            raise ValueError(
                f"{model.name} returns {dtype} ({output.name if hasattr(output, 'name') else 'an output'}). "
                f"Expected float32 outputs: under the {policy} policy a layer computes in float16 unless "
                "told otherwise, and a float16 softmax or sigmoid loses precision and can overflow. Give the last "
                "layer dtype='float32', e.g. keras.layers.Dense(n, activation='softmax', dtype='float32')."
            )


def check_training_data(model, train, val=None, y=None, raw_pixels: bool = True) -> int | None:
    """Checks `train` (and `val`) against `model` before training; returns the batch size if known.

    Takes what `tlkit.fit` takes: a `tf.data` pipeline of `(images, labels)` batches (all its
    labels and pixels when `tlkit.to_tf` built it; else its first batch), NumPy images with
    `y`, or `(images, labels)` for `val`. Pixel ranges are checked for models that take 0-255
    images (`raw_pixels`: `tlkit.backbones.takes_raw_pixels(model)`); NaN and infinity for every model.
    """
    single = not isinstance(model.input_shape, list) and not isinstance(model.output_shape, list)
    batch_size = None
    for role, data, given_labels in (("train", train, y), ("validation", val, None)):
        if data is None:
            continue
        parts = _parts(data, given_labels, role)
        if parts is None:
            continue
        shape, pixels, labels, complete, size = parts
        if role == "train":
            batch_size = size
        if not single:
            continue  # several inputs or outputs: beyond these checks
        if len(shape) == 0 or shape[0] == 0 or (labels is not None and len(labels) == 0):
            raise ValueError(f"The {role} data is empty (0 images). Expected at least one image per class.")
        check_images(model, tuple(shape), role)
        check_image_values(pixels, role, raw_pixels=raw_pixels)
        if labels is not None:
            check_labels(labels, model.output_shape[-1], role, complete=complete, name=model.name)
    return batch_size
