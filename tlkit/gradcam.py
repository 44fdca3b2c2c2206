"""Grad-CAM: where in an image a classifier looked for the class it scored (Selvaraju et al., 2017).

The gradient of a class score with respect to a convolutional feature map, averaged over its
positions, weighs each channel; the weighted sum of the channels, negative values cut to zero,
is the heatmap. It follows the Keras example "Grad-CAM class activation visualization", for
the models tlkit builds: `tlkit.build_classifier` nests the base as one layer, so the feature
map is read inside the base while the rest of the classifier runs as it does in `predict`.
The score is the class's logit, before the softmax, as in the paper, or its log probability
(`score="log_probability"`), which also counts the evidence that lowers the other classes.

The model is cut in two at the feature layer (`split_forward`), so the feature map is the input
of the second half; taking the gradient there is the one backend-specific step (`score_gradients`:
TensorFlow's `GradientTape`, `jax.grad` or `torch.autograd.grad`). Everything else is Keras layers
and NumPy, the same on every backend.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import keras
import numpy as np

from tlkit.backbones import takes_raw_pixels
from tlkit.checks import check_image_values, check_images
from tlkit.errors import check_choice, check_int, invalid, suggest


def gradcam(
    model: keras.Model,
    images,
    layer: str | None = None,
    class_index: int | Sequence[int] | None = None,
    batch_size: int = 32,
    score: str = "logit",
) -> np.ndarray:
    """Grad-CAM heatmaps of `images` for a class, at the resolution of a feature map.

    Args:
        model: a classifier that chains its layers in order, as `tlkit.build_classifier` builds
            it (images -> preprocessing -> base -> pooling -> dropout -> Dense); its last layer's
            pre-softmax logits are the class scores when it is a softmax `Dense` layer, its
            outputs otherwise.
        images: a batch `(n, height, width, channels)` of what the model takes (0-255 RGB for a
            tlkit classifier).
        layer: the name of a layer with a feature map output `(batch, h, w, channels)`, inside
            the model's base (e.g. one of `tlkit.block_ends(base)`) or in the model itself.
            Default: the base's last layer (its last feature map); for a model without a
            nested base, its last layer with a feature map output.
        class_index: the class to explain: one index for every image, one per image, or None
            for the class the model predicts for each image.
        batch_size: how many images go through the model at once.
        score: what the map explains. `"logit"`: the class's logit before the softmax, as in the
            paper. `"log_probability"`: the log of the class's softmax probability, its logit
            minus the log-sum-exp of all the logits: the evidence for the class against the
            others. The softmax reads only the differences of the logits, so a class's own logit
            can fall everywhere while its probability rises (with two classes, the evidence for
            one can lie wholly in the other's logit); its `"logit"` map is then all zeros. With
            two classes the `"log_probability"` map is that of the difference of the two logits.
            It needs a model that ends in a softmax `Dense` layer.

    Returns:
        float32 heatmaps `(n, h, w)` in [0, 1], each divided by its maximum (all zeros where no
        position raised the score), at the feature map's resolution: `upsample` them to the
        images' size.

    Raises:
        ValueError: before any computation, for images that are not a batch the model takes,
            an unknown layer, a layer without a feature map output, a class out of range, or
            `score="log_probability"` for a model without a final softmax `Dense` layer.
        NotImplementedError: on a Keras backend other than TensorFlow, JAX or PyTorch.

    Example:

    ```python
    model = tlkit.build_classifier(base, splits.num_classes)  # ... trained
    heatmaps = tlkit.gradcam.gradcam(model, splits.test.images[:8])
    overlays = tlkit.gradcam.upsample(heatmaps, splits.test.images.shape[1:3])
    ```
    """
    if not isinstance(model, keras.Model):
        raise invalid("model", type(model).__name__, "a Keras model, e.g. tlkit.build_classifier(base, num_classes)")
    if len(model.outputs) != 1 or len(model.output_shape) != 2:
        raise ValueError(
            f"Invalid value for argument `model`. Received: {model.name!r} with outputs {model.output_shape}. "
            "Expected a classifier with one output (batch, classes), e.g. tlkit.build_classifier(base, num_classes)."
        )
    images = _check_images(model, images)
    batch_size = check_int("batch_size", batch_size, 1)
    classes = _check_classes(class_index, len(images), model.output_shape[-1])
    check_choice("score", score, ("logit", "log_probability"))
    container, target = find_layer(model, layer)
    features_of, scores_of = split_forward(model, container, target)
    if score == "log_probability":
        scores_of = _log_probabilities(model, scores_of)
    heatmaps = []
    for start in range(0, len(images), batch_size):
        batch = keras.ops.convert_to_tensor(images[start : start + batch_size])
        chosen = None if classes is None else classes[start : start + batch_size]
        expected = keras.ops.convert_to_numpy(model(batch, training=False))
        try:
            features = features_of(batch)
            gradients, predictions = score_gradients(scores_of, features, chosen)
        except (TypeError, ValueError) as error:  # a merge layer given one tensor, shapes that do not chain
            reason = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(error)).split())[:160]
            raise _not_a_chain(model, f"calling its layers one after another failed ({reason})") from error
        if not np.allclose(predictions, expected, rtol=1e-3, atol=1e-4):
            raise _not_a_chain(model, "calling its layers one after another gave other predictions than the model")
        features = keras.ops.convert_to_numpy(keras.ops.cast(features, "float32"))
        heatmaps.append(weigh_channels(features, gradients))
    return np.concatenate(heatmaps)


def _log_probabilities(model: keras.Model, scores_of: Callable) -> Callable:
    """`scores_of` with the logits replaced by their log-softmax: each class's log probability."""
    last = model.layers[-1]
    if not _is_softmax_dense(last):
        raise ValueError(
            f"Invalid value for argument `score`. Received: score='log_probability' for {model.name!r}, whose last "
            f"layer {last.name!r} is not a softmax Dense layer. Expected a classifier that ends in one (as "
            "tlkit.build_classifier builds it), or score='logit'."
        )

    def log_probabilities_of(features):
        logits, predictions = scores_of(features)
        return keras.ops.log_softmax(keras.ops.cast(logits, "float32"), axis=-1), predictions

    return log_probabilities_of


def _is_softmax_dense(layer: keras.layers.Layer) -> bool:
    """Whether `layer` is a `Dense` layer with a softmax: its logits are the class scores before it."""
    return isinstance(layer, keras.layers.Dense) and layer.activation is keras.activations.softmax


def _not_a_chain(model: keras.Model, what: str) -> ValueError:
    return ValueError(
        f"Grad-CAM cannot follow {model.name!r}: {what}. Expected a model that chains its layers in order "
        "(input -> ... -> output), as tlkit.build_classifier builds it. For another graph, take the gradient of "
        "keras.Model(model.inputs, [feature_layer.output, model.output]) as the Keras Grad-CAM example does."
    )


def _check_images(model: keras.Model, images) -> np.ndarray:
    try:
        array = np.asarray(images)
    except (TypeError, ValueError):
        raise invalid("images", type(images).__name__, "a batch of images (n, height, width, channels)") from None
    if array.ndim != 4:
        fix = " For one image, pass a batch of one: images[None]." if array.ndim == 3 else ""
        raise ValueError(
            f"Invalid value for argument `images`. Received: an array of shape {array.shape} (rank {array.ndim}). "
            f"Expected a batch of images (n, height, width, channels), rank 4.{fix}"
        )
    if len(array) == 0:
        raise invalid("images", "an empty batch", "at least one image")
    check_images(model, array.shape, "Grad-CAM")
    check_image_values(array, "Grad-CAM", raw_pixels=takes_raw_pixels(model))
    return array.astype("float32")


def _check_classes(class_index, n: int, num_classes: int) -> np.ndarray | None:
    if class_index is None:
        return None
    fix = f"The model has {num_classes} outputs."
    if isinstance(class_index, (int, np.integer)) and not isinstance(class_index, bool):
        return np.full(n, check_int("class_index", class_index, 0, num_classes - 1, fix=fix))
    if not isinstance(class_index, (Sequence, np.ndarray)) or isinstance(class_index, str):
        raise invalid("class_index", class_index, "an integer, one integer per image, or None")
    if len(class_index) != n:
        raise invalid("class_index", class_index, f"one class per image ({n}), a single integer, or None")
    return np.array([check_int("class_index", c, 0, num_classes - 1, fix=fix) for c in class_index])


def find_layer(model: keras.Model, layer: str | None = None) -> tuple[keras.Model, keras.layers.Layer]:
    """The model holding the feature layer `layer` (the nested base, or `model` itself) and that layer.

    Args:
        model: the classifier.
        layer: a layer name inside the model's nested base or in the model itself; None for
            the base's last layer (for a model without a nested base, its last feature map layer).

    Returns:
        `(container, layer)`: the (nested) model whose graph holds the layer, and the layer.

    Example:

    ```python
    base, feature_layer = tlkit.gradcam.find_layer(model, "conv_pw_13_relu")
    ```
    """
    nested = [child for child in model.layers if isinstance(child, keras.Model)]
    if layer is None:
        if len(nested) > 1:
            names = ", ".join(repr(child.name) for child in nested)
            raise ValueError(
                f"{model.name!r} nests {len(nested)} models ({names}): pass `layer`, the name of a feature layer "
                "inside the one to explain."
            )
        container = nested[0] if nested else model
        candidates = [child for child in container.layers if _is_feature_map(child)]
        if not candidates or (nested and candidates[-1] is not container.layers[-1]):
            raise ValueError(
                f"{container.name!r} does not end in a feature map (batch, height, width, channels). "
                "Pass `layer`, the name of a convolutional layer, e.g. one of tlkit.block_ends(base)."
            )
        return container, candidates[-1]
    if not isinstance(layer, str):
        raise invalid("layer", layer, "the name of a layer, e.g. one of tlkit.block_ends(base), or None")
    found = [(m, child) for m in (model, *nested) for child in m.layers if child.name == layer]
    if not found:
        names = [child.name for m in (model, *nested) for child in m.layers]
        where = nested[0].name if len(nested) == 1 else model.name
        raise ValueError(
            f"Invalid value for argument `layer`. Received: layer={layer!r}, which is not a layer of {where!r}."
            f"{suggest(layer, names)} Expected the name of a convolutional layer of the base, e.g. one of "
            "tlkit.block_ends(base) (or None for its last feature map)."
        )
    if len(found) > 1:
        raise ValueError(
            f"Invalid value for argument `layer`. Received: layer={layer!r}, a name found in "
            f"{', '.join(repr(m.name) for m, _ in found)}. Expected a name found in one of them only."
        )
    container, target = found[0]
    if isinstance(target, keras.Model) or not _is_feature_map(target):
        shape = getattr(target, "output_shape", None) if not isinstance(target, keras.Model) else "a nested model"
        raise ValueError(
            f"Invalid value for argument `layer`. Received: layer={layer!r}, whose output is {shape}. Expected a "
            "layer with a feature map output (batch, height, width, channels): a convolutional layer or "
            "activation, e.g. one of tlkit.block_ends(base)."
        )
    return container, target


def _is_feature_map(layer: keras.layers.Layer) -> bool:
    try:
        shape = layer.output.shape
    except (AttributeError, ValueError):  # a layer used several times, or never called
        return False
    return isinstance(shape, tuple) and len(shape) == 4


def split_forward(
    model: keras.Model, container: keras.Model, target: keras.layers.Layer
) -> tuple[Callable[[object], object], Callable[[object], tuple[object, object]]]:
    """The classifier cut in two at the feature layer: images -> feature map, and feature map -> class scores.

    The first half runs the model's layers before its nested base (`container`), then the base
    up to `target`; the second runs the rest of the base, the layers after it, and the last
    layer. When `container` is the model itself, each half is the model's own graph between the
    input, `target` and the last layer. The class scores are the logits before the softmax of a
    final softmax `Dense` layer (its `kernel` and `bias`), the predictions otherwise. Cutting the
    model in two is what lets every backend take the gradient with respect to the feature map:
    it becomes the second half's input.

    Args:
        model: a classifier whose layers form a chain (`tlkit.build_classifier`).
        container: the nested base holding `target`, or `model`.
        target: the feature layer (`find_layer`).

    Returns:
        `(features_of, scores_of)`: `features_of(images)` is the feature map, and
        `scores_of(features)` is `(class scores, predictions)`. Every layer is called with
        `training=False`.

    Raises:
        ValueError: when a later layer also reads a layer before `target` (a skip connection
            across it), so that the feature map alone does not determine the output.

    Example:

    ```python
    features_of, scores_of = tlkit.gradcam.split_forward(model, *tlkit.gradcam.find_layer(model))
    scores, predictions = scores_of(features_of(images))
    ```
    """
    chain = [child for child in model.layers if not isinstance(child, keras.layers.InputLayer)]
    last = chain[-1]
    if container is model:
        before, after, start, end = [], [], model.input, last.input
    else:
        where = chain.index(container)
        before, after, start, end = chain[:where], chain[where + 1 : -1], container.input, container.output
    try:
        to_features = keras.Model(start, target.output, name=f"{container.name}_to_features")
        if target.output is end:  # the base's last feature map: nothing of it is left after the cut
            from_features = keras.layers.Identity(name=f"{container.name}_from_features")
        else:
            from_features = keras.Model(target.output, end, name=f"{container.name}_from_features")
    except ValueError as error:
        raise ValueError(
            f"Invalid value for argument `layer`. Received: layer={target.name!r}, which a skip connection of "
            f"{container.name!r} crosses: a later layer also reads a layer before it, so the feature map alone "
            "does not give the output. Expected a layer that cuts the network in two, e.g. one of "
            "tlkit.block_ends(base)."
        ) from error
    softmax_dense = _is_softmax_dense(last)

    def features_of(images):
        x = images
        for child in before:
            x = child(x, training=False)
        return to_features(x, training=False)

    def scores_of(features):
        x = from_features(features, training=False)
        for child in after:
            x = child(x, training=False)
        predictions = last(x, training=False)
        if not softmax_dense:
            return predictions, predictions
        x = keras.ops.cast(x, last.kernel.dtype)
        return keras.ops.matmul(x, last.kernel) + (last.bias if last.use_bias else 0.0), predictions

    return features_of, scores_of


def _class_score(scores, predictions, class_index):
    """The sum over the batch of each image's score for its class (the predicted one when None)."""
    classes = keras.ops.argmax(predictions, axis=-1) if class_index is None else class_index
    classes = keras.ops.reshape(keras.ops.cast(classes, "int32"), (-1, 1))
    return keras.ops.sum(keras.ops.take_along_axis(keras.ops.cast(scores, "float32"), classes, axis=1))


def score_gradients(scores_of: Callable, features, class_index: np.ndarray | None):
    """Gradients of each image's class score with respect to its feature map, on the Keras backend in use.

    This is the one backend-specific step of Grad-CAM: TensorFlow's `GradientTape`, `jax.grad`,
    or `torch.autograd.grad`. The images of a batch do not interact (every layer runs with
    `training=False`), so the gradient of the summed scores gives each image's own gradient.

    Args:
        scores_of: a function of feature maps returning `(class scores, predictions)`
            (the second half of `split_forward`).
        features: a batch of feature maps, a tensor of the backend.
        class_index: one class per image, or None for the predicted ones.

    Returns:
        `(gradients, predictions)` as float32 NumPy arrays.

    Raises:
        NotImplementedError: on a backend other than TensorFlow, JAX or PyTorch.

    Example:

    ```python
    features_of, scores_of = tlkit.gradcam.split_forward(model, *tlkit.gradcam.find_layer(model))
    gradients, _ = tlkit.gradcam.score_gradients(scores_of, features_of(images), None)
    ```
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(features)
            scores, predictions = scores_of(features)
            score = _class_score(scores, predictions, class_index)
        gradients = tape.gradient(score, features)
    elif backend == "jax":
        import jax

        def score_of(f):
            scores, predictions = scores_of(f)
            return _class_score(scores, predictions, class_index), predictions

        gradients, predictions = jax.grad(score_of, has_aux=True)(features)
    elif backend == "torch":
        import torch

        features = features.detach().requires_grad_(True)
        scores, predictions = scores_of(features)
        (gradients,) = torch.autograd.grad(_class_score(scores, predictions, class_index), features)
        predictions = predictions.detach()
    else:
        raise NotImplementedError(
            f"Grad-CAM takes its gradient with TensorFlow, JAX or PyTorch; the Keras backend is {backend!r}."
        )
    return tuple(keras.ops.convert_to_numpy(keras.ops.cast(t, "float32")) for t in (gradients, predictions))


def weigh_channels(features: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """Grad-CAM's heatmaps from feature maps and the gradients of the score with respect to them.

    Args:
        features: `(n, h, w, channels)` feature maps.
        gradients: the gradients, of the same shape.

    Returns:
        `(n, h, w)` float32 heatmaps: `relu(sum_k a_k * A_k)` with `a_k` the mean gradient of
        channel `k`, each divided by its maximum (zeros where that is not positive).

    Example:

    ```python
    heatmaps = tlkit.gradcam.weigh_channels(features, gradients)
    ```
    """
    weights = gradients.mean(axis=(1, 2), keepdims=True)
    cams = np.maximum((features * weights).sum(axis=-1), 0.0)
    peaks = cams.max(axis=(1, 2), keepdims=True)
    return np.where(peaks > 0, cams / np.where(peaks > 0, peaks, 1.0), 0.0).astype("float32")


def _check_heatmaps(heatmaps, name: str = "heatmaps") -> np.ndarray:
    try:
        array = np.asarray(heatmaps, dtype="float32")
    except (TypeError, ValueError):
        raise invalid(name, type(heatmaps).__name__, "heatmaps (h, w) or (n, h, w) of numbers") from None
    if array.ndim not in (2, 3) or 0 in array.shape:
        raise ValueError(
            f"Invalid value for argument `{name}`. Received: an array of shape {array.shape}. "
            "Expected one heatmap (h, w) or a batch (n, h, w), as tlkit.gradcam.gradcam returns."
        )
    if not np.isfinite(array).all():
        raise invalid(name, "NaN or infinite values", "finite heatmaps")
    return array


def _check_size(size, name: str = "size") -> tuple[int, int]:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (size, size)
    if not isinstance(size, (Sequence, np.ndarray)) or isinstance(size, str) or len(size) != 2:
        raise invalid(name, size, "the image size: an integer or (height, width)")
    return tuple(check_int(name, s, 1) for s in size)


def upsample(heatmap, size: int | Sequence[int]) -> np.ndarray:
    """Resizes heatmaps to the images' size (bilinear), to lay them over the images.

    Args:
        heatmap: one heatmap `(h, w)` or a batch `(n, h, w)` (`gradcam`).
        size: the image size, an integer (square) or `(height, width)`.

    Returns:
        float32 heatmaps `(height, width)` or `(n, height, width)`, clipped to [0, 1].

    Example:

    ```python
    overlay = tlkit.gradcam.upsample(heatmaps, images.shape[1:3])
    plt.imshow(images[0]); plt.imshow(overlay[0], cmap="jet", alpha=0.4)
    ```
    """
    array = _check_heatmaps(heatmap, "heatmap")
    height, width = _check_size(size)
    batch = array if array.ndim == 3 else array[None]
    resized = keras.ops.image.resize(batch[..., None], (height, width), interpolation="bilinear")
    resized = np.clip(keras.ops.convert_to_numpy(resized)[..., 0], 0.0, 1.0).astype("float32")
    return resized if array.ndim == 3 else resized[0]


def peak(heatmap, image_size: int | Sequence[int] | None = None) -> tuple[int, int] | np.ndarray:
    """Where a heatmap is highest, as `(row, col)` pixel coordinates of the image.

    Args:
        heatmap: one heatmap `(h, w)` or a batch `(n, h, w)`.
        image_size: the image size, an integer or `(height, width)`, when the heatmap is at a
            feature map's resolution: the peak cell's centre is mapped to the image pixel under
            it. None when the heatmap is already at the image's size (`upsample`).

    Returns:
        `(row, col)` for one heatmap, an int array `(n, 2)` for a batch. Ties go to the first
        position in row-major order.

    Example:

    ```python
    row, col = tlkit.gradcam.peak(heatmaps[0], image_size=96)
    ```
    """
    array = _check_heatmaps(heatmap, "heatmap")
    batch = array if array.ndim == 3 else array[None]
    n, h, w = batch.shape
    flat = batch.reshape(n, -1).argmax(axis=1)
    rows, cols = flat // w, flat % w
    if image_size is not None:
        height, width = _check_size(image_size, "image_size")
        rows = np.floor((rows + 0.5) * height / h).astype(int)
        cols = np.floor((cols + 0.5) * width / w).astype(int)
    peaks = np.stack([rows, cols], axis=1).astype(int)
    return peaks if array.ndim == 3 else (int(peaks[0, 0]), int(peaks[0, 1]))


def pointing_game(
    heatmaps,
    boxes,
    image_size: int | Sequence[int] | None = None,
    box_format: str = "yxyx",
    tolerance: int = 0,
) -> np.ndarray:
    """Whether each heatmap's peak falls inside the object's box (Zhang et al., 2016): a hit or a miss.

    Boxes are pixel coordinates of the image, `(y0, x0, y1, x1)` by default (`box_format="yxyx"`:
    top, left, bottom, right, as TensorFlow Datasets orders them, but in pixels, not fractions);
    `"xyxy"` takes `(x0, y0, x1, y1)`, the order of `tlkit.detection`. The top and left edges
    are inside, the bottom and right edges outside, as in slicing: a peak at `(row, col)` hits
    when `y0 <= row < y1` and `x0 <= col < x1`. A map that is zero everywhere (`gradcam`'s map
    where no position raised the score) has no peak: it points nowhere, a miss.

    Args:
        heatmaps: `(n, h, w)` heatmaps (`gradcam`), or one `(h, w)`.
        boxes: `(n, 4)` boxes, one per heatmap (or one `(4,)` box for one heatmap).
        image_size: the image size when the heatmaps are at a feature map's resolution (see
            `peak`); None when they are at the image's size (`upsample`).
        box_format: `"yxyx"` or `"xyxy"`.
        tolerance: a peak this many pixels outside a box still hits (the paper uses 15).

    Returns:
        A bool array `(n,)`: True where the peak lies in the box. Its mean is the pointing accuracy.

    Example:

    ```python
    hits = tlkit.gradcam.pointing_game(heatmaps, boxes, image_size=96)  # boxes: (y0, x0, y1, x1) pixels
    print(f"pointing accuracy {hits.mean():.0%}")
    ```
    """
    array = _check_heatmaps(heatmaps)
    check_choice("box_format", box_format, ("yxyx", "xyxy"))
    tolerance = check_int("tolerance", tolerance, 0, fix="In pixels of the image.")
    batch = array if array.ndim == 3 else array[None]
    try:
        box_array = np.asarray(boxes, dtype="float64").reshape(-1, 4) if np.size(boxes) % 4 == 0 else None
    except (TypeError, ValueError):
        box_array = None
    if box_array is None or len(box_array) != len(batch) or np.ndim(boxes) not in (1, 2):
        raise invalid("boxes", np.shape(boxes) if box_array is not None else boxes, f"one box of 4 pixel "
                      f"coordinates per heatmap: an array ({len(batch)}, 4), {box_format} order")  # fmt: skip
    if box_format == "xyxy":
        box_array = box_array[:, [1, 0, 3, 2]]
    y0, x0, y1, x1 = box_array.T
    if not np.isfinite(box_array).all() or np.any(y1 <= y0) or np.any(x1 <= x0):
        raise ValueError(
            f"Invalid value for argument `boxes`. Received: {box_array[:2].tolist()}... ({box_format}). Expected "
            f"boxes with y0 < y1 and x0 < x1 in {box_format} order (y0, x0, y1, x1 for 'yxyx'). Boxes in another "
            "format? keras.utils.bounding_boxes.convert_format converts them."
        )
    pixels = _check_size(image_size, "image_size") if image_size is not None else batch.shape[1:]
    if np.all(box_array <= 1) and max(pixels) > 2:
        raise ValueError(
            "Invalid value for argument `boxes`. Received: coordinates all in [0, 1], fractions of the image "
            "(TensorFlow Datasets' format). Expected pixel coordinates: multiply by (height, width, height, width)."
        )
    peaks = peak(batch, image_size)
    rows, cols = peaks[:, 0], peaks[:, 1]
    inside = (rows >= y0 - tolerance) & (rows < y1 + tolerance) & (cols >= x0 - tolerance) & (cols < x1 + tolerance)
    return inside & (batch.max(axis=(1, 2)) > 0)  # an empty map's "peak" is only its first cell
