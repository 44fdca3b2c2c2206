"""Checks that training data fits a model, run before the first (slow) epoch starts.

Keras reports a wrong image shape or an out-of-range label deep inside a compiled
training step (and on a GPU an out-of-range label gives a silent NaN loss instead).
`check_training_data` looks at the data first and names the fix.
"""

from __future__ import annotations

import warnings

import numpy as np


def _first_batch(dataset):
    """`(images, labels)` of the first batch of a `tf.data` pipeline, as NumPy arrays."""
    element = next(iter(dataset.take(1)), None)
    if not isinstance(element, (tuple, list)) or len(element) < 2:
        return None, None
    return np.asarray(element[0]), np.asarray(element[1])


# Pipeline steps that pass on the labels of the tensors they start from (a `map` may not).
_LABEL_PRESERVING = {"_PrefetchDataset", "_BatchDataset", "_ShuffleDataset", "_CacheDataset", "_RepeatDataset",
                     "_OptionsDataset"}  # fmt: skip


def _source_labels(dataset) -> np.ndarray | None:
    """All labels of an in-memory `tf.data` pipeline, or None.

    `tlkit.to_tf` records them on the pipeline; otherwise they are found when the pipeline
    is `from_tensor_slices((images, labels))` followed only by shuffle/batch/prefetch steps.
    """
    recorded = getattr(dataset, "_tlkit_labels", None)
    if recorded is not None:
        return np.asarray(recorded)
    while dataset is not None:
        name = type(dataset).__name__
        if name == "_TensorSliceDataset":
            tensors = getattr(dataset, "_tensors", None)
            return np.asarray(tensors[1]) if isinstance(tensors, (list, tuple)) and len(tensors) == 2 else None
        if name not in _LABEL_PRESERVING:
            return None
        dataset = getattr(dataset, "_input_dataset", None)
    return None


def batch_size_of(dataset) -> int | None:
    """The batch size of a batched `tf.data` pipeline (found through map/prefetch), or None."""
    while dataset is not None:
        size = getattr(dataset, "_batch_size", None)
        if size is not None:
            try:
                return int(size)
            except (TypeError, ValueError):
                return None
        dataset = getattr(dataset, "_input_dataset", None)
    return None


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
    labels: np.ndarray, num_classes: int, role: str = "train", complete: bool = False, name: str = "the model"
) -> None:
    """Raises when `labels` are not integer class indices that fit `num_classes` outputs.

    With `complete` (all the labels, not one batch), also warns when there are more
    outputs than the labels use.
    """
    outputs = num_classes
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[-1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise ValueError(
            f"The {role} labels have shape {labels.shape}; tlkit models take one integer class index per image "
            "(sparse labels). For one-hot labels pass labels.argmax(-1)."
        )
    if labels.size == 0:
        return
    whole = np.issubdtype(labels.dtype, np.integer) or (
        np.issubdtype(labels.dtype, np.number) and np.all(np.mod(labels, 1) == 0)
    )
    if not whole:
        raise ValueError(
            f"The {role} labels are {labels.dtype} values such as {labels.flat[0]!r}; pass integer class "
            "indices 0..num_classes-1 (e.g. from tlkit.load_dataset or tlkit.from_arrays)."
        )
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= outputs:
        raise ValueError(
            f"The {role} labels run from {low} to {high}, but {name} has {outputs} outputs "
            f"(labels 0..{outputs - 1}). Build the head with num_classes={max(high + 1, 2)} "
            "(e.g. num_classes=splits.num_classes), or fix the labels."
        )
    if complete and role == "train" and high + 1 < outputs:
        warnings.warn(
            f"{name} has {outputs} outputs but the train labels only use 0..{high}: "
            f"did you mean num_classes={high + 1}?",
            stacklevel=3,
        )


def check_training_data(model, train, val=None, y=None) -> int | None:
    """Checks `train` (and `val`) against `model` before training; returns the batch size if known.

    Takes what `tlkit.fit` takes: a `tf.data` pipeline of `(images, labels)` batches (all its
    labels when they are held in memory, as `tlkit.to_tf` builds it; else its first batch),
    NumPy images with `y`, or `(images, labels)` for `val`.
    """
    from tlkit.data import ImageSet

    single = not isinstance(model.input_shape, list) and not isinstance(model.output_shape, list)
    batch_size = None
    for role, data, labels in (("train", train, y), ("validation", val, None)):
        if data is None:
            continue
        if isinstance(data, ImageSet):
            raise TypeError(
                f"The {role} data is an ImageSet; pass it as a tf.data pipeline: tlkit.to_tf(data, batch_size) "
                "(or train, val, test = splits.to_tf(batch_size))."
            )
        complete = False
        if isinstance(data, (tuple, list)) and len(data) >= 2 and labels is None:
            shape, labels, complete = np.shape(data[0]), np.asarray(data[1]), True
        elif hasattr(data, "__array__"):
            shape, complete = np.shape(data), labels is not None
        elif hasattr(data, "element_spec") and hasattr(data, "take"):
            spec = data.element_spec
            if not isinstance(spec, (tuple, list)) or len(spec) < 2 or not hasattr(spec[0], "shape"):
                continue
            shape = tuple(spec[0].shape) if spec[0].shape.rank is not None else None
            if role == "train":
                batch_size = batch_size_of(data)
            # All labels of an in-memory pipeline; else those of the first batch (which costs
            # one pass over the pipeline's start, so only when needed).
            labels = _source_labels(data)
            complete = labels is not None
            if labels is None:
                images, labels = _first_batch(data)
                if images is None:
                    continue
                shape = images.shape
                if batch_size is None and role == "train":
                    batch_size = len(images)
        else:
            continue  # a PyDataset or generator: Keras checks it
        if not single:
            continue  # several inputs or outputs: beyond these checks
        if shape is not None:
            check_images(model, shape, role)
        if labels is not None:
            check_labels(labels, model.output_shape[-1], role, complete=complete, name=model.name)
    return batch_size
