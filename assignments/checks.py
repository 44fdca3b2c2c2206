"""Checks behind the assignments' autograded tests.

Each check tests one property that a correct answer has and a typical mistake lacks, and
fails with an `AssertionError` whose message names the mistake and the fix. The checks use
Keras and NumPy only (not tlkit), so that they can be read, and unit-tested, on their own.

The project's one rule on BatchNorm, which several checks enforce: in Keras 3, `fit` calls
every layer with `training=True`, and that overrides `base(x, training=False)` written into a
functional model. Only `layer.trainable = False` keeps a BatchNormalization layer in
inference mode (normalising with its ImageNet statistics).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np

SPARSE_LOSSES = ("sparse_categorical_crossentropy",)


# ---------------------------------------------------------------------------- inspecting models


def leaf_layers(model: keras.Model) -> list:
    """Every layer of `model`, nested models opened up, in order."""
    layers = []
    for layer in model.layers:
        layers.extend(leaf_layers(layer) if isinstance(layer, keras.Model) else [layer])
    return layers


def batchnorm_layers(model: keras.Model) -> list:
    """The BatchNormalization layers of `model`, nested models included."""
    return [layer for layer in leaf_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]


def count_params(weights) -> int:
    """The number of numbers in a list of weights."""
    return int(sum(int(np.prod(w.shape)) for w in weights))


def trainable_layer_names(model: keras.Model) -> list[str]:
    """Names of the layers (nested ones opened up) that have trainable weights."""
    return [layer.name for layer in leaf_layers(model) if layer.trainable_weights]


def layers_after(base: keras.Model, layer_name: str) -> list:
    """The layers of `base` that come after `layer_name`."""
    names = [layer.name for layer in base.layers]
    if layer_name not in names:
        raise ValueError(
            f"Invalid value for argument `layer_name`. Received: layer_name={layer_name!r}. "
            f"Expected the name of a layer of {base.name}."
        )
    return base.layers[names.index(layer_name) + 1 :]


def _is_model(value) -> bool:
    return isinstance(value, keras.Model)


def check_is_model(value, what: str) -> None:
    """`value` is a Keras model (and not `...`, `None` or a forgotten `return`)."""
    assert _is_model(value), (
        f"{what} should be a keras.Model; got {type(value).__name__}. "
        "Did the function end without `return`, or is a `...` still there?"
    )


# ---------------------------------------------------------------------------- freezing


def check_frozen(model: keras.Model, what: str = "the base") -> None:
    """No weight of `model` learns."""
    check_is_model(model, what)
    n = count_params(model.trainable_weights)
    assert n == 0, (
        f"{what} has {n:,} trainable parameters; it should have none. "
        f"Freeze it with `{model.name}.trainable = False` before building the model on it."
    )


def check_trainable_count(model: keras.Model, expected: int, what: str) -> None:
    """Exactly `expected` parameters of `model` learn."""
    check_is_model(model, what)
    n = count_params(model.trainable_weights)
    assert n == expected, f"{what} has {n:,} trainable parameters; expected {expected:,}. " + (
        "More learn than should: is the base still trainable?" if n > expected else "Fewer learn than should."
    )


def dense_params(num_features: int, num_classes: int) -> int:
    """Parameters of one `Dense(num_classes)` layer on `num_features` inputs."""
    return num_features * num_classes + num_classes


def check_batchnorm_frozen(model: keras.Model) -> None:
    """Every BatchNorm layer is frozen (`trainable = False`), so it runs in inference mode."""
    check_is_model(model, "the model")
    layers = batchnorm_layers(model)
    assert layers, f"{model.name} has no BatchNormalization layer to check."
    trainable = [layer.name for layer in layers if layer.trainable]
    assert not trainable, (
        f"{len(trainable)} of {len(layers)} BatchNormalization layers are trainable (first: {trainable[0]}). "
        "On a small dataset keep them frozen: set `layer.trainable = False` on every BatchNormalization layer "
        "after unfreezing. `base(x, training=False)` alone does not do it: `fit` passes training=True down."
    )


def check_batchnorm_trainable(model: keras.Model) -> None:
    """Every BatchNorm layer learns (and adapts its statistics during `fit`)."""
    check_is_model(model, "the model")
    layers = batchnorm_layers(model)
    assert layers, f"{model.name} has no BatchNormalization layer to check."
    frozen = [layer.name for layer in layers if not layer.trainable]
    assert not frozen, (
        f"{len(frozen)} of {len(layers)} BatchNormalization layers are frozen (first: {frozen[0]}). "
        "This task asks for the whole network to adapt to the new domain, BatchNorm included "
        "(e.g. `base.trainable = True`; note that tlkit.unfreeze_all keeps BatchNorm frozen "
        "unless train_batchnorm=True)."
    )


def check_trainable_layers(model: keras.Model, expected: Sequence[str], what: str) -> None:
    """The layers with trainable weights, BatchNorm aside, are exactly `expected`.

    BatchNorm layers are left to `check_batchnorm_frozen` / `check_batchnorm_trainable`, so that
    each mistake fails one check.
    """
    check_is_model(model, what)
    batchnorm = {layer.name for layer in batchnorm_layers(model)}
    actual = [name for name in trainable_layer_names(model) if name not in batchnorm]
    expected = [name for name in expected if name not in batchnorm]
    extra = [n for n in actual if n not in expected]
    missing = [n for n in expected if n not in actual]
    assert not extra and not missing, (
        f"{what}: {len(extra)} layer(s) learn that should be frozen"
        + (f" (first: {extra[0]})" if extra else "")
        + f", and {len(missing)} that should learn are frozen"
        + (f" (first: {missing[0]})" if missing else "")
        + "."
    )


# ---------------------------------------------------------------------------- compiling


def learning_rate(model: keras.Model) -> float:
    """The learning rate of `model`'s optimizer, as a float."""
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


def check_sparse_loss(model: keras.Model) -> None:
    """`model` is compiled with sparse categorical cross-entropy (integer labels)."""
    check_is_model(model, "the model")
    assert model.optimizer is not None and model.loss is not None, "The model is not compiled: call model.compile(...)."
    loss = model.loss
    name = loss if isinstance(loss, str) else getattr(loss, "name", getattr(loss, "__name__", type(loss).__name__))
    assert name in SPARSE_LOSSES or isinstance(loss, keras.losses.SparseCategoricalCrossentropy), (
        f"The loss is {name!r}. The labels are integers (0 .. num_classes-1): use "
        "loss='sparse_categorical_crossentropy', and do not one-hot encode them."
    )


def check_recompiled(model: keras.Model, old_optimizer, expected_learning_rate: float) -> None:
    """`model` was compiled again (a new optimizer) at `expected_learning_rate`.

    Keras reads `trainable` when the model is compiled: a model that was trained before, then
    unfrozen and trained again without `compile`, keeps updating only its old trainable weights.
    """
    check_is_model(model, "the model")
    assert model.optimizer is not None, "The model is not compiled: call model.compile(...) after changing `trainable`."
    assert model.optimizer is not old_optimizer, (
        "The model still has the optimizer of its first compile: it was not compiled again after `trainable` "
        "changed, so `fit` would keep training only the weights that were trainable before. Call model.compile(...)."
    )
    lr = learning_rate(model)
    assert np.isclose(lr, expected_learning_rate, rtol=1e-3), (
        f"The model was recompiled with learning rate {lr:g}; expected {expected_learning_rate:g} (the argument "
        "you were given)."
    )


def check_lower_learning_rate(fine_tune: float, head: float, low: float = 10, high: float = 100) -> None:
    """The fine-tuning learning rate is `low` to `high` times below the head's."""
    assert isinstance(fine_tune, (int, float)) and fine_tune > 0, f"Expected a positive number; got {fine_tune!r}."
    ratio = head / fine_tune
    assert low <= ratio <= high, (
        f"The fine-tuning learning rate {fine_tune:g} is {ratio:g}x below the head's {head:g}; make it {low:g} to "
        f"{high:g}x lower (e.g. {head / 30:.0e}). Too high, and the first steps overwrite the pretrained weights."
    )


# ---------------------------------------------------------------------------- outputs


def check_probabilities(model: keras.Model, inputs: np.ndarray, num_classes: int) -> None:
    """`model(inputs)` is one float32 probability distribution over `num_classes` per input."""
    check_is_model(model, "the model")
    outputs = model(inputs, training=False)
    dtype = keras.backend.standardize_dtype(outputs.dtype)
    outputs = keras.ops.convert_to_numpy(outputs)
    assert outputs.shape == (len(inputs), num_classes), (
        f"The output has shape {outputs.shape}; expected {(len(inputs), num_classes)}: one score per class."
    )
    assert dtype == "float32", f"The output dtype is {dtype}; give the last Dense layer dtype='float32'."
    assert outputs.min() >= 0 and np.allclose(outputs.sum(axis=-1), 1, atol=1e-3), (
        "The outputs are not probabilities (each row should sum to 1): use activation='softmax' in the last layer."
    )


def check_same_outputs(actual, expected, what: str, hint: str, atol: float = 1e-4) -> None:
    """Two arrays agree, else a message with the largest difference and a hint."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}."
    gap = float(np.max(np.abs(actual - expected)))
    scale = float(np.max(np.abs(expected))) or 1.0
    assert gap <= atol * max(1.0, scale), f"{what} differ from the expected ones by up to {gap:.3g}. {hint}"


def diagnose_preprocessing(features: Callable, images: np.ndarray, reference: Callable, preprocess: Callable) -> str:
    """Which input scaling `features` seems to apply: names the likely mistake, or ''."""
    candidates = {
        "the raw 0-255 pixels (no preprocessing)": images.astype("float32"),
        "pixels scaled to [0, 1] (x / 255)": images.astype("float32") / 255,
        "the backbone's preprocessing applied twice": preprocess(preprocess(images.astype("float32"))),
    }
    actual = np.asarray(features(images))
    for name, scaled in candidates.items():
        if np.allclose(actual, np.asarray(reference(scaled)), atol=1e-4):
            return f"Your model feeds the base {name}."
    return ""


def check_preprocessing(
    features: Callable, images: np.ndarray, reference: Callable, preprocess: Callable, backbone: str = "MobileNet"
) -> None:
    """`features(images)` equals `reference(preprocess(images))`: the backbone's own preprocessing, once.

    Args:
        features: the answer, 0-255 images -> features.
        images: a few 0-255 uint8 images.
        reference: preprocessed images -> the expected features (the pretrained base, pooled).
        preprocess: the backbone's `preprocess_input`.
    """
    expected = reference(preprocess(images.astype("float32")))
    actual = features(images)
    if np.allclose(np.asarray(actual), np.asarray(expected), atol=1e-4):
        return
    diagnosis = diagnose_preprocessing(features, images, reference, preprocess)
    check_same_outputs(
        actual,
        expected,
        "The features",
        f"{diagnosis} {backbone} was trained on inputs in [-1, 1]: apply its own preprocess_input "
        "(keras.applications.mobilenet.preprocess_input, or tlkit.BackbonePreprocessing) once, inside the model.",
    )


# ---------------------------------------------------------------------------- cached features


class ImageCounter(keras.layers.Layer):
    """An identity layer that counts the images passing through it (eagerly or in a graph)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen = self.add_weight(shape=(), initializer="zeros", trainable=False, name="seen")

    def call(self, x):
        self.seen.assign_add(keras.ops.cast(keras.ops.shape(x)[0], self.seen.dtype))
        return x

    @property
    def count(self) -> int:
        return int(keras.ops.convert_to_numpy(self.seen))


def counting(model: keras.Model) -> tuple[keras.Model, ImageCounter]:
    """`model` behind an `ImageCounter`: the same outputs, and a count of the images it saw."""
    counter = ImageCounter(name="image_counter")
    inputs = keras.Input(shape=model.input_shape[1:])
    return keras.Model(inputs, model(counter(inputs)), name=f"counted_{model.name}"), counter


def check_features_cached(counter: ImageCounter, num_images: int, epochs: int) -> None:
    """The extractor saw each image about once, not once per epoch."""
    seen = counter.count
    assert seen > 0, "The feature extractor never ran: compute the features with it (e.g. extractor.predict(images))."
    assert seen < 2 * num_images, (
        f"The frozen base processed {seen:,} images for {num_images:,} images and {epochs} epochs: it recomputed the "
        "features. Run it once over the images, keep the features, and train the head on those."
    )


# ---------------------------------------------------------------------------- one training step


def snapshot(weights) -> list[np.ndarray]:
    """Copies of the values of `weights`."""
    return [np.array(keras.ops.convert_to_numpy(w)) for w in weights]


def moved(before: Sequence[np.ndarray], weights) -> list[bool]:
    """For each weight, whether it changed since `before`."""
    return [not np.array_equal(b, keras.ops.convert_to_numpy(w)) for b, w in zip(before, weights)]


def one_step(model: keras.Model, images: np.ndarray, labels: np.ndarray) -> None:
    """One `fit` step on one batch (what every training step does)."""
    model.fit(images, labels, batch_size=len(images), epochs=1, verbose=0, shuffle=False)


def check_one_step(
    model: keras.Model,
    base: keras.Model,
    images: np.ndarray,
    labels: np.ndarray,
    statistics_move: bool,
) -> None:
    """One `fit` step moves the base's trainable weights only, and BatchNorm statistics as asked.

    Args:
        statistics_move: whether the BatchNorm moving means should change (BatchNorm trainable
            on a large new domain) or stay at their ImageNet values (BatchNorm frozen).
    """
    trainable, frozen = base.trainable_weights, [w for w in base.non_trainable_weights if "moving" not in w.path]
    statistics = [w for layer in batchnorm_layers(base) for w in (layer.moving_mean, layer.moving_variance)]
    before = snapshot(trainable), snapshot(frozen), snapshot(statistics)
    one_step(model, images, labels)
    learned, frozen_moved, stats_moved = (
        moved(before[0], trainable),
        moved(before[1], frozen),
        moved(before[2], statistics),
    )
    assert trainable and any(learned), (
        "One training step changed none of the base's trainable weights. Was the model compiled again after "
        "changing `trainable`? Keras reads `trainable` at compile time."
    )
    assert not any(frozen_moved), "One training step changed weights that should be frozen."
    if statistics_move:
        assert any(stats_moved), (
            "BatchNorm kept its ImageNet statistics during training; on this large new domain it should adapt "
            "(BatchNorm layers trainable)."
        )
    else:
        assert not any(stats_moved), (
            "One training step changed BatchNorm's moving statistics: those layers ran in training mode. "
            "Set `trainable = False` on every BatchNormalization layer (training=False alone is overridden by fit)."
        )


# ---------------------------------------------------------------------------- measured numbers


def check_accuracy(value, at_least: float, what: str, setting: str) -> None:
    """A measured accuracy reaches `at_least` (a threshold measured in `setting`)."""
    assert isinstance(value, (float, np.floating)) and 0 <= value <= 1, (
        f"{what} should be an accuracy between 0 and 1 (a float); got {value!r}."
    )
    assert value >= at_least, f"{what} is {value:.3f}; a correct solution reaches at least {at_least:.2f} ({setting})."


def check_measured(value, recomputed: float, what: str, atol: float = 0.011) -> None:
    """A reported number is the one its model gives (not typed in, not from another model)."""
    assert isinstance(value, (float, np.floating)), f"{what} should be a float; got {value!r}."
    assert abs(float(value) - recomputed) <= atol, (
        f"{what} is {float(value):.3f}, but the model gives {recomputed:.3f} on the same data. "
        "Report the number your model measured."
    )
