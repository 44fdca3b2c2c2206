"""Checks behind the assignments' autograded tests.

Each check tests one property that a correct answer has and a typical mistake lacks, and
fails with an `AssertionError` whose message names the mistake it sees and the fix. Where
several mistakes break the same property, the check tells them apart (which input scaling,
which pooling, which layer, which other number a reported one equals). The checks use Keras
and NumPy only (not tlkit), so that they can be read, and unit-tested, on their own.

The project's one rule on BatchNorm, which several checks enforce: in Keras 3, `fit` calls
every layer with `training=True`, and that overrides `base(x, training=False)` written into a
functional model. Only `layer.trainable = False` keeps a BatchNormalization layer in
inference mode (normalising with its ImageNet statistics).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import keras
import numpy as np

SPARSE_LOSSES = ("sparse_categorical_crossentropy",)
TRAINING_FALSE = (
    "`base(x, training=False)` alone does not do it: in Keras 3 `fit` passes training=True down into the base, "
    "and only `layer.trainable = False` keeps a BatchNormalization layer in inference mode."
)


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


def learning_layers(model: keras.Model) -> list:
    """The layers (nested models opened up) whose weights `fit` trains.

    A layer inside a frozen model does not learn, whatever its own `trainable` says: a model
    with `trainable = False` gives `fit` none of its weights.
    """
    if not model.trainable:
        return []
    layers = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            layers.extend(learning_layers(layer))
        elif layer.trainable_weights:
            layers.append(layer)
    return layers


def trainable_layer_names(model: keras.Model) -> list[str]:
    """Names of the layers (nested ones opened up) whose weights `fit` trains."""
    return [layer.name for layer in learning_layers(model)]


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


def outputs(model: keras.Model, inputs, batch_size: int = 64) -> np.ndarray:
    """`model` on `inputs` in inference mode, a batch at a time, called eagerly: a NumPy array.

    The same numbers as `model.predict`, without tracing a graph for every new model (seconds
    each), which is what most of a test's time would go to.
    """
    x = np.asarray(inputs)
    x = x.astype("float32") if x.dtype == np.uint8 else x
    parts = [
        keras.ops.convert_to_numpy(model(x[i : i + batch_size], training=False)) for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(parts)


def accuracy(model: keras.Model, inputs, labels) -> float:
    """Top-1 accuracy of `model` on `inputs` (images or features), as `tlkit.accuracy` measures it."""
    return float(np.mean(outputs(model, inputs).argmax(-1) == np.asarray(labels)))


def check_is_model(value, what: str) -> None:
    """`value` is a Keras model (and not `...`, `None` or a forgotten `return`)."""
    assert _is_model(value), (
        f"{what} should be a keras.Model; got {type(value).__name__}. "
        "Did the function end without `return`, or is a `...` still there?"
    )


def check_defined(value, name: str, how: str) -> None:
    """A variable the question asks for exists (`how`: what it should hold)."""
    assert value is not None, f"`{name}` is not defined: {how}."


def check_input_size(model: keras.Model, base: keras.Model, what: str) -> None:
    """`model` takes images of the size `base` was built for (nothing hard-coded)."""
    check_is_model(model, what)
    expected, actual = tuple(base.input_shape[1:]), tuple(model.input_shape[1:])
    fits = len(actual) == len(expected) and all(a is None or a == e for a, e in zip(actual, expected))
    assert fits, (
        f"{what} takes inputs of shape {actual}, but the base it was given takes {expected}: the input size is "
        "hard-coded. Build the input from the base: keras.Input(shape=base.input_shape[1:])."
    )


def _layer_kinds(model: keras.Model) -> list[str]:
    kinds = []
    for layer in leaf_layers(model):
        kind = type(layer).__name__
        if isinstance(layer, keras.layers.Dropout):
            kind += f"({layer.rate:g})"
        if isinstance(layer, keras.layers.Dense):
            kind += f"({layer.units}, {getattr(layer.activation, '__name__', layer.activation)})"
        kinds.append(kind)
    return kinds


def check_same_layers(model: keras.Model, other: keras.Model, what: str) -> None:
    """Two models have the same layers, in order, with the same shapes of weights."""
    check_is_model(model, what)
    check_is_model(other, what)
    kinds = _layer_kinds(model), _layer_kinds(other)
    only = [k for k in kinds[0] if k not in kinds[1]] + [k for k in kinds[1] if k not in kinds[0]]
    assert kinds[0] == kinds[1], (
        f"{what}: the two models differ in their layers"
        + (f" ({', '.join(only[:3])} in one only)" if only else " (their order)")
        + ". Nothing but the starting weights may depend on `weights`."
    )
    shapes = [[tuple(w.shape) for w in m.weights] for m in (model, other)]
    assert shapes[0] == shapes[1], f"{what}: the two models differ in the shapes of their weights."


def check_dropout(model: keras.Model, rate: float, what: str) -> None:
    """`model` has one Dropout layer, at `rate`."""
    check_is_model(model, what)
    rates = [layer.rate for layer in leaf_layers(model) if isinstance(layer, keras.layers.Dropout)]
    assert rates, f"{what} has no Dropout layer: the question asks for `keras.layers.Dropout({rate:g})` before Dense."
    assert len(rates) == 1 and np.isclose(rates[0], rate), (
        f"{what} has Dropout at {', '.join(f'{r:g}' for r in rates)}; the question asks for one, at {rate:g}."
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


def _trainable_summary(model: keras.Model) -> str:
    rows = [f"{layer.name} ({count_params(layer.trainable_weights):,})" for layer in learning_layers(model)]
    return ", ".join(rows[:4]) + (f" and {len(rows) - 4} more" if len(rows) > 4 else "") if rows else "none"


def check_trainable_count(model: keras.Model, expected: int, what: str, head_inputs: int | None = None) -> None:
    """Exactly `expected` parameters of `model` learn: one Dense layer (the head) and nothing else.

    The message names what it sees: layers other than Dense that learn (the base or trunk left
    trainable), more than one Dense layer (an extra hidden layer), or one Dense layer on more
    inputs than `head_inputs` (a feature map flattened instead of pooled).
    """
    check_is_model(model, what)
    n = count_params(model.trainable_weights)
    if n == expected:
        return
    learning = learning_layers(model)
    dense = [layer for layer in learning if isinstance(layer, keras.layers.Dense)]
    other = [layer for layer in learning if not isinstance(layer, keras.layers.Dense)]
    seen = f"{what} has {n:,} trainable parameters; expected {expected:,}. Learning: {_trainable_summary(model)}."
    assert not other, f"{seen} Layers other than the head learn (first: {other[0].name}): freeze the base or trunk."
    assert len(dense) <= 1, f"{seen} {len(dense)} Dense layers learn: the question asks for one Dense layer only."
    if dense and head_inputs is not None:
        inputs = int(dense[0].kernel.shape[0])
        assert inputs == head_inputs, (
            f"{seen} The Dense layer reads {inputs:,} numbers per image, not {head_inputs:,} (one per channel): pool "
            "the feature map with GlobalAveragePooling2D rather than flattening it."
        )
    raise AssertionError(seen + (" Fewer learn than should." if n < expected else ""))


def dense_params(num_features: int, num_classes: int) -> int:
    """Parameters of one `Dense(num_classes)` layer on `num_features` inputs."""
    return num_features * num_classes + num_classes


def check_batchnorm_frozen(model: keras.Model, why: str = "On a small dataset keep them frozen") -> None:
    """Every BatchNorm layer is frozen (`trainable = False`), so it runs in inference mode."""
    check_is_model(model, "the model")
    layers = batchnorm_layers(model)
    assert layers, f"{model.name} has no BatchNormalization layer to check."
    trainable = [layer.name for layer in layers if layer.trainable]
    assert not trainable, (
        f"{len(trainable)} of {len(layers)} BatchNormalization layers are trainable (first: {trainable[0]}), so "
        f"`fit` runs them in training mode. {why}: set `layer.trainable = False` on every BatchNormalization layer "
        f"after unfreezing (setting the model's `trainable` afterwards unfreezes them again). {TRAINING_FALSE}"
    )


def check_batchnorm_trainable(model: keras.Model, why: str = "") -> None:
    """Every BatchNorm layer learns (and adapts its statistics during `fit`)."""
    check_is_model(model, "the model")
    layers = batchnorm_layers(model)
    assert layers, f"{model.name} has no BatchNormalization layer to check."
    frozen = [layer.name for layer in layers if not layer.trainable]
    assert not frozen, (
        f"{len(frozen)} of {len(layers)} BatchNormalization layers are frozen (first: {frozen[0]}). "
        + (why or "Here BatchNorm should learn")
        + " (e.g. `base.trainable = True`; note that tlkit.unfreeze_all keeps BatchNorm frozen "
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
    hint = ""
    if expected and not actual:
        hint = (
            " Nothing learns: is the model (or the base inside it) still frozen? A frozen model hides the "
            "`trainable` of its layers: set `base.trainable = True` first, then the layers."
        )
    assert not extra and not missing, (
        f"{what}: {len(extra)} layer(s) learn that should be frozen"
        + (f" (first: {extra[0]})" if extra else "")
        + f", and {len(missing)} that should learn are frozen"
        + (f" (first: {missing[0]})" if missing else "")
        + "."
        + hint
    )


def check_top_blocks(base: keras.Model, ends: Sequence[str], blocks: int) -> None:
    """Every layer after `ends[-blocks - 1]` learns (BatchNorm aside), none before it.

    The message says what it sees: nothing learning (the base left frozen), everything
    learning, another number of blocks than `blocks`, or a start that is no block boundary.
    """
    check_is_model(base, "the base")
    batchnorm = {layer.name for layer in batchnorm_layers(base)}
    names = [layer.name for layer in base.layers]
    weighted = [layer for layer in base.layers if layer.weights and layer.name not in batchnorm]

    def top(k: int) -> list[str]:
        first = names.index(ends[-k - 1]) + 1
        return [layer.name for layer in weighted if names.index(layer.name) >= first]

    learning = [layer.name for layer in weighted if layer.trainable_weights and base.trainable]
    if learning == top(blocks):
        return
    seen = f"With blocks={blocks}, {len(learning)} layers with weights learn (BatchNorm aside), not {len(top(blocks))}"
    rule = f"The top `blocks` blocks are every layer after ends[-blocks - 1] (here {ends[-blocks - 1]!r})."
    if not learning and not base.trainable:
        raise AssertionError(
            f"{seen}: none does, because the base itself is still frozen (from phase 1), and a frozen model hides "
            f"its layers' `trainable`. Set base.trainable = True first, then `trainable` layer by layer. {rule}"
        )
    assert learning, f"{seen}: none does. Count blocks with `ends`, not layers of base.layers. {rule}"
    assert len(learning) < len(weighted), (
        f"{seen}: every layer of the base learns. If you set base.trainable = True after the per-layer loop, it "
        f"unfreezes every layer again: set it first. {rule}"
    )
    counted = [k for k in range(1, len(ends)) if learning == top(k)]
    assert not counted, (
        f"{seen}: the top {counted[0]} block(s) learn, where blocks={blocks} asks for {blocks}. Use the `blocks` "
        f"argument (no fixed number, no off-by-one). {rule}"
    )
    start = names.index(learning[0])
    assert learning == [x.name for x in weighted if names.index(x.name) >= start], (
        f"{seen}, not one run of layers up to the top (first learning: {learning[0]}). {rule}"
    )
    raise AssertionError(
        f"{seen}: from {learning[0]}, which is not where a block starts. Count blocks with `ends`, not layers of "
        f"base.layers. {rule}"
    )


# ---------------------------------------------------------------------------- compiling


def optimizer_of(model: keras.Model):
    """`model`'s optimizer, unwrapped from the loss scaling that mixed precision adds on a GPU."""
    optimizer = model.optimizer
    return getattr(optimizer, "inner_optimizer", optimizer)


def learning_rate(model: keras.Model) -> float:
    """The learning rate of `model`'s optimizer, as a float."""
    return float(keras.ops.convert_to_numpy(optimizer_of(model).learning_rate))


def steps_taken(model: keras.Model) -> int:
    """How many training steps `model`'s optimizer has taken (0 if it never trained or is not compiled)."""
    if getattr(model, "optimizer", None) is None:
        return 0
    return int(keras.ops.convert_to_numpy(optimizer_of(model).iterations))


def _loss_name(loss) -> str:
    return loss if isinstance(loss, str) else getattr(loss, "name", getattr(loss, "__name__", type(loss).__name__))


def check_sparse_loss(model: keras.Model) -> None:
    """`model` is compiled with sparse categorical cross-entropy (integer labels), on its probabilities."""
    check_is_model(model, "the model")
    assert model.optimizer is not None and model.loss is not None, "The model is not compiled: call model.compile(...)."
    loss = model.loss
    name = _loss_name(loss)
    assert name in SPARSE_LOSSES or isinstance(loss, keras.losses.SparseCategoricalCrossentropy), (
        f"The loss is {name!r}. The labels are integers (0 .. num_classes-1): use "
        "loss='sparse_categorical_crossentropy', and do not one-hot encode them."
    )
    from_logits = getattr(loss, "from_logits", None)
    if from_logits is None and hasattr(loss, "get_config"):
        from_logits = loss.get_config().get("from_logits")
    assert not from_logits, (
        "The loss is built with from_logits=True, but the model ends in a softmax: its outputs are probabilities, "
        "not logits. Use loss='sparse_categorical_crossentropy' (from_logits=False)."
    )


def check_recompiled(
    model: keras.Model, old_optimizer, expected_learning_rate: float, optimizer: type | None = keras.optimizers.Adam
) -> None:
    """`model` was compiled again (a new `optimizer`) at `expected_learning_rate`.

    Keras fixes what trains at the first `fit` after a compile: a model that was trained before, then
    unfrozen and trained again without `compile`, keeps updating only its old trainable weights.
    """
    check_is_model(model, "the model")
    assert model.optimizer is not None, "The model is not compiled: call model.compile(...) after changing `trainable`."
    assert model.optimizer is not old_optimizer, (
        "The model still has the optimizer of its first compile: it was not compiled again after `trainable` "
        "changed, so `fit` would keep training only the weights that were trainable before. Call model.compile(...)."
    )
    if optimizer is not None:
        assert isinstance(optimizer_of(model), optimizer), (
            f"The model was recompiled with {type(optimizer_of(model)).__name__}; the question asks for "
            f"{optimizer.__name__}(learning_rate), the optimizer of the first phase."
        )
    lr = learning_rate(model)
    assert np.isclose(lr, expected_learning_rate, rtol=1e-3), (
        f"The model was recompiled with learning rate {lr:g}; expected {expected_learning_rate:g} (the argument "
        "you were given)."
        + (" 0.001 is Adam's default: was 'adam' given without the rate?" * bool(np.isclose(lr, 1e-3)))
    )


def check_lower_learning_rate(fine_tune: float, head: float, low: float = 3, high: float = 100) -> None:
    """The fine-tuning learning rate is `low` to `high` times below the head's.

    The textbook says 10-100x; lesson 03's range test chose 3-12x below the head's rate on its
    photos, so 3x is the lower bound accepted.
    """
    assert isinstance(fine_tune, (int, float)) and fine_tune > 0, f"Expected a positive number; got {fine_tune!r}."
    ratio = head / fine_tune
    example = f"(e.g. {head / 30:.0e})"
    assert ratio >= low, (
        f"The fine-tuning learning rate {fine_tune:g} is "
        + (f"only {ratio:g}x below" if ratio > 1 else f"{1 / ratio:g}x the")
        + f" the head's {head:g}: too high. Make it {low:g} to {high:g}x lower {example}: large steps overwrite "
        "the pretrained weights in the first epoch (lesson 03's range test chose 3-12x lower)."
    )
    assert ratio <= high, (
        f"The fine-tuning learning rate {fine_tune:g} is {ratio:g}x below the head's {head:g}: too low, the "
        f"unfrozen weights would barely move in a few epochs. Make it {low:g} to {high:g}x lower {example}."
    )


def check_same_training(model: keras.Model, reference: keras.Model, what: str, reference_name: str) -> None:
    """`model` was trained like `reference`: the same optimizer, learning rate and number of steps."""
    check_is_model(model, what)
    steps, expected = steps_taken(model), steps_taken(reference)
    assert steps > 0, f"{what} was never trained: train it as {reference_name} was (fit_on_cached_features)."
    kinds = type(optimizer_of(model)), type(optimizer_of(reference))
    assert kinds[0] is kinds[1], (
        f"{what} uses {kinds[0].__name__}, {reference_name} {kinds[1].__name__}: "
        "nothing but the weights of the base may differ."
    )
    rates = learning_rate(model), learning_rate(reference)
    assert np.isclose(*rates, rtol=1e-3), (
        f"{what} trained at learning rate {rates[0]:g}, {reference_name} at {rates[1]:g}: use the same settings."
    )
    assert steps == expected, (
        f"{what} took {steps} training steps, {reference_name} {expected}: train it for the same epochs on the "
        "same images (nothing but the weights of the base may differ)."
    )


# ---------------------------------------------------------------------------- outputs


def check_probabilities(model: keras.Model, inputs: np.ndarray, num_classes: int) -> None:
    """`model(inputs)` is one float32 probability distribution over `num_classes` per input."""
    check_is_model(model, "the model")
    outputs = model(inputs, training=False)
    dtype = keras.backend.standardize_dtype(outputs.dtype)
    outputs = keras.ops.convert_to_numpy(outputs).astype("float32")
    assert outputs.shape == (len(inputs), num_classes), (
        f"The output has shape {outputs.shape}; expected {(len(inputs), num_classes)}: one score per class"
        + (
            f" (here {num_classes}: use the `num_classes` argument, not a number of your own)."
            if outputs.ndim == 2 and outputs.shape[0] == len(inputs)
            else "."
        )
    )
    assert dtype == "float32", (
        f"The output dtype is {dtype}; give the last Dense layer dtype='float32' (under mixed precision, what a GPU "
        "uses, a layer computes in float16 unless told otherwise)."
    )
    sums = outputs.sum(axis=-1)
    if outputs.min() >= 0 and outputs.max() <= 1 and not np.allclose(sums, 1, atol=1e-3):
        raise AssertionError(
            "Each output lies in [0, 1] but a row does not sum to 1: that is a sigmoid (one yes/no per class). "
            "One class per image is a softmax: activation='softmax'."
        )
    assert outputs.min() >= 0 and np.allclose(sums, 1, atol=1e-3), (
        "The outputs are not probabilities (each row should sum to 1): use activation='softmax' in the last layer."
    )


def mixed_precision_model(build: Callable):
    """`build()` under the mixed_float16 policy (what a GPU uses), the global policy restored after."""
    policy = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        return build()
    finally:
        keras.mixed_precision.set_dtype_policy(policy)


def check_same_outputs(actual, expected, what: str, hint: str, atol: float = 1e-4) -> None:
    """Two arrays agree, else a message with the largest difference and a hint."""
    assert not isinstance(actual, (keras.Model, keras.callbacks.History)) and not hasattr(actual, "history"), (
        f"{what}: got {type(actual).__name__}, expected an array. {hint}"
    )
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}. {hint}"
    gap = float(np.max(np.abs(actual - expected)))
    scale = float(np.max(np.abs(expected))) or 1.0
    assert gap <= atol * max(1.0, scale), f"{what} differ from the expected ones by up to {gap:.3g}. {hint}"


def close(a, b, atol: float = 1e-4) -> bool:
    """Whether two arrays have one shape and agree (to `atol`, relative to the largest value of `b`)."""
    a, b = np.asarray(a, dtype="float32"), np.asarray(b, dtype="float32")
    return a.shape == b.shape and bool(np.allclose(a, b, atol=atol * max(1.0, float(np.max(np.abs(b)) or 1.0))))


SCALINGS = {
    "the backbone's preprocessing, once": None,  # filled in with `preprocess`
    "the raw 0-255 pixels (no preprocessing)": lambda x, p: x,
    "pixels scaled to [0, 1] (x / 255)": lambda x, p: x / 255,
    "the backbone's preprocessing applied twice": lambda x, p: p(p(x)),
}
POOLINGS = {
    "global average pooling": lambda m: keras.ops.mean(m, axis=(1, 2)),
    "global max pooling": lambda m: keras.ops.max(m, axis=(1, 2)),
    "the flattened map (no pooling)": lambda m: keras.ops.reshape(m, (keras.ops.shape(m)[0], -1)),
}


def head_after(model: keras.Model, inner: keras.Model) -> Callable:
    """The layers of `model` that come after the nested model `inner`, pooling and dropout left out.

    Applied in order to pooled features, they give `model`'s outputs: the answer's own head,
    however many layers it has, to compare a model's outputs with the pretrained base's map.
    """
    skip = (
        keras.layers.GlobalAveragePooling2D,
        keras.layers.GlobalMaxPooling2D,
        keras.layers.Flatten,
        keras.layers.Dropout,
    )
    layers = model.layers
    after = next((i for i, layer in enumerate(layers) if layer is inner), None)
    dense = [layer for layer in layers if isinstance(layer, keras.layers.Dense)][-1:]
    kept = dense if after is None else [layer for layer in layers[after + 1 :] if not isinstance(layer, skip)]

    def tail(x):
        for layer in kept:
            x = layer(x)
        return x

    return tail


def diagnose_features(
    features: Callable, images: np.ndarray, feature_map: Callable, preprocess: Callable, tail: Callable | None = None
) -> tuple[str, str] | None:
    """Which input scaling and which pooling `features` applies, or None if it is none of those tried.

    Args:
        features: the answer, 0-255 images -> outputs.
        images: a few 0-255 uint8 images.
        feature_map: preprocessed images -> the pretrained base's (or trunk's) feature map.
        preprocess: the backbone's `preprocess_input`.
        tail: pooled features -> outputs (e.g. the answer's own Dense layer); none: the pooled features.
    """
    actual = np.asarray(features(images))
    x = images.astype("float32")
    for scaling, scale in SCALINGS.items():
        inputs = preprocess(x.copy()) if scale is None else scale(x.copy(), preprocess)
        fmap = feature_map(inputs)
        for pooling, pool in POOLINGS.items():
            try:
                out = pool(fmap)
                out = tail(out) if tail is not None else out
            except Exception:  # noqa: BLE001 (a pooling the tail cannot take: not this one)
                continue
            if close(actual, keras.ops.convert_to_numpy(out)):
                return scaling, pooling
    return None


def diagnose_preprocessing(features: Callable, images: np.ndarray, reference: Callable, preprocess: Callable) -> str:
    """Which input scaling `features` seems to apply: names the likely mistake, or ''."""
    found = diagnose_features(features, images, reference, preprocess, tail=lambda m: m)
    return f"Your model feeds the base {found[0]}." if found and found[0] != next(iter(SCALINGS)) else ""


def check_preprocessing(
    features: Callable,
    images: np.ndarray,
    feature_map: Callable,
    preprocess: Callable,
    backbone: str = "MobileNet",
    tail: Callable | None = None,
) -> None:
    """The model feeds the base the backbone's own preprocessing, once (whatever it does after the base).

    Args:
        features: the answer, 0-255 images -> outputs.
        images: a few 0-255 uint8 images.
        feature_map: preprocessed images -> the pretrained base's feature map.
        preprocess: the backbone's `preprocess_input`.
        tail: pooled features -> outputs (the answer's own last layer), if the answer is a classifier.
    """
    found = diagnose_features(features, images, feature_map, preprocess, tail)
    fix = (
        f"{backbone} was trained on inputs in [-1, 1]: apply its own preprocess_input "
        "(keras.applications.mobilenet.preprocess_input, x / 127.5 - 1, or tlkit.BackbonePreprocessing) once, "
        "inside the model."
    )
    assert found is not None, (
        f"The outputs are not the pretrained base's on any input scaling tried (the backbone's own, none, x / 255, "
        f"twice). Feed the pretrained base itself, called once. {fix}"
    )
    assert found[0] == next(iter(SCALINGS)), f"Your model feeds the base {found[0]}. {fix}"


def check_average_pooling(
    features: Callable, images: np.ndarray, feature_map: Callable, preprocess: Callable, tail: Callable | None = None
) -> None:
    """The model pools the base's map with global average pooling (whatever its input scaling)."""
    found = diagnose_features(features, images, feature_map, preprocess, tail)
    assert found is not None, (
        "The outputs are not the pretrained base's map, pooled, on any input scaling tried: call the base once "
        "and pool its map with keras.layers.GlobalAveragePooling2D()."
    )
    assert found[1] == next(iter(POOLINGS)), (
        f"Your model uses {found[1]}; the question asks for global average pooling: "
        "keras.layers.GlobalAveragePooling2D()."
    )


# ---------------------------------------------------------------------------- which weights


def check_different_weights(model: keras.Model, pretrained: keras.Model, what: str) -> None:
    """`model` does not hold the pretrained weights (it is the random-init one)."""
    check_is_model(model, what)
    ours, theirs = [w for w in model.weights if len(w.shape) == 4], [w for w in pretrained.weights if len(w.shape) == 4]
    assert ours, f"{what} has no convolution to check."
    same = [
        np.array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
        for a, b in zip(ours, theirs)
        if tuple(a.shape) == tuple(b.shape)
    ]
    assert not (same and all(same)), (
        f"{what} holds the ImageNet weights: load its base with weights=None (random initialisation)."
    )


def first_kernel_correlation(model: keras.Model, pretrained: keras.Model) -> float:
    """Correlation between the first convolution kernels of two models (1: the same start, ~0: unrelated)."""
    first = [next(w for w in m.weights if len(w.shape) == 4) for m in (model, pretrained)]
    a, b = (np.ravel(keras.ops.convert_to_numpy(w)) for w in first)
    return float(np.corrcoef(a, b)[0, 1]) if a.shape == b.shape else 0.0


def diagnose_cut(trunk: keras.Model, base: keras.Model, images: np.ndarray) -> str:
    """The layer of `base` whose output `trunk` computes on preprocessed `images`, or ''."""
    actual = keras.ops.convert_to_numpy(trunk(images, training=False))
    candidates = [layer for layer in base.layers[1:] if tuple(layer.output.shape[1:]) == tuple(actual.shape[1:])]
    if not candidates:
        return ""
    taps = keras.Model(base.input, [layer.output for layer in candidates])
    for layer, out in zip(candidates, taps(images, training=False)):
        if close(actual, keras.ops.convert_to_numpy(out)):
            return layer.name
    return ""


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


def check_epochs(model: keras.Model, num_images: int, epochs: int, batch_size: int = 32) -> None:
    """`model` took one step per batch of `num_images` images for `epochs` epochs (the argument, not a constant)."""
    steps, per_epoch = steps_taken(model), math.ceil(num_images / batch_size)
    assert steps > 0, "The head did not train: call head.fit on the features and the labels."
    assert steps == epochs * per_epoch, (
        f"The head took {steps} training steps; {epochs} epochs of {num_images} images in batches of {batch_size} "
        f"are {epochs * per_epoch}"
        + (f" ({steps / per_epoch:g} epochs were run)" if steps % per_epoch == 0 else "")
        + ". Use the `epochs` argument and batch_size=32, and call fit once."
    )


# ---------------------------------------------------------------------------- one training step


def snapshot(weights) -> list[np.ndarray]:
    """Copies of the values of `weights`."""
    return [np.array(keras.ops.convert_to_numpy(w)) for w in weights]


def moved(before: Sequence[np.ndarray], weights) -> list[bool]:
    """For each weight, whether it changed since `before`."""
    return [not np.array_equal(b, keras.ops.convert_to_numpy(w)) for b, w in zip(before, weights)]


def one_step(model: keras.Model, images: np.ndarray, labels: np.ndarray, eager: bool = True) -> None:
    """One `fit` step on one batch (what every training step does).

    Eagerly by default: no graph is traced for the model (seconds saved for every new model).
    A model that was trained, unfrozen and not compiled again then fails loudly (its optimizer
    knows only the weights that were trainable at its first `fit`) where a traced step would
    silently train the old weights only: both are the same mistake.
    """
    model.run_eagerly = eager
    model.fit(images, labels, batch_size=len(images), epochs=1, verbose=0, shuffle=False)


def check_one_step(
    model: keras.Model,
    base: keras.Model,
    images: np.ndarray,
    labels: np.ndarray,
    statistics_move: bool,
    frozen_why: str = "",
) -> None:
    """One `fit` step moves the base's trainable weights only, and BatchNorm statistics as asked.

    Args:
        statistics_move: whether the BatchNorm moving means should change (BatchNorm trainable,
            adapting to the new domain) or stay at their ImageNet values (BatchNorm frozen).
        frozen_why: why BatchNorm should be frozen here, for the message.
    """
    trainable, frozen = base.trainable_weights, [w for w in base.non_trainable_weights if "moving" not in w.path]
    statistics = [w for layer in batchnorm_layers(base) for w in (layer.moving_mean, layer.moving_variance)]
    before = snapshot(trainable), snapshot(frozen), snapshot(statistics)
    try:
        one_step(model, images, labels)
    except Exception as error:  # noqa: BLE001 (a stale optimizer, or a loss that cannot take the labels: name it)
        if "Unknown variable" in str(error):
            raise AssertionError(
                "One training step failed: the optimizer knows only the weights that were trainable when the model "
                "was compiled. Was the model compiled again after changing `trainable`? A model that has trained "
                "keeps its old trainable weights until it is compiled again."
            ) from error
        raise AssertionError(
            f"One training step on integer labels failed ({type(error).__name__}). Is the loss "
            "'sparse_categorical_crossentropy'? The labels are integers, not one-hot vectors."
        ) from error
    learned, frozen_moved, stats_moved = (
        moved(before[0], trainable),
        moved(before[1], frozen),
        moved(before[2], statistics),
    )
    assert trainable and any(learned), (
        "One training step changed none of the base's trainable weights. Was the model compiled again after "
        "changing `trainable`? A model that has trained keeps its old trainable weights until it is compiled again."
    )
    assert not any(frozen_moved), "One training step changed weights that should be frozen."
    if statistics_move:
        assert any(stats_moved), (
            "BatchNorm kept its ImageNet statistics during training, where it should adapt (BatchNorm layers "
            "trainable): `trainable = False` on a BatchNormalization layer keeps it in inference mode."
        )
    else:
        assert not any(stats_moved), (
            "One training step changed BatchNorm's moving statistics: those layers ran in training mode. "
            + (frozen_why + " " if frozen_why else "")
            + "Set `trainable = False` on every BatchNormalization layer (training=False alone is overridden by fit)."
        )


# ---------------------------------------------------------------------------- measured numbers


def check_one_float(value, what: str) -> float:
    """`value` is one number (a float), not a list such as `evaluate`'s [loss, accuracy]; returns it."""
    if isinstance(value, (list, tuple, dict)) or (isinstance(value, np.ndarray) and value.ndim):
        raise AssertionError(
            f"{what} should be one float; got a {type(value).__name__} of {len(value)} "
            "(model.evaluate returns [loss, accuracy]). Use tlkit.accuracy(model, inputs, labels)."
        )
    assert isinstance(value, (float, np.floating)), f"{what} should be a float; got {value!r}."
    return float(value)


def check_accuracy(value, at_least: float, what: str, setting: str) -> None:
    """A measured accuracy reaches `at_least` (a threshold measured in `setting`)."""
    value = check_one_float(value, what)
    assert 0 <= value <= 1, (
        f"{what} is {value:g}"
        + (": a percentage? Report the fraction (0 to 1) that tlkit.accuracy gives" if 1 < value <= 100 else "")
        + "; an accuracy lies between 0 and 1."
    )
    assert value >= at_least, f"{what} is {value:.3f}; a correct solution reaches at least {at_least:.2f} ({setting})."


def check_measured(
    value, recomputed: float, what: str, atol: float = 0.011, mistakes: Mapping[str, float] | None = None
) -> None:
    """A reported number is the one its model gives (not typed in, not from another model or split).

    Args:
        value: the reported number.
        recomputed: what the question asks for, recomputed from the answer's own model and data.
        atol: how far the reported number may be from `recomputed` (about one image in a
            hundred: another way of counting may round differently).
        mistakes: what each plausible wrong computation gives ("the accuracy on the training
            images": 1.0, ...); a value equal to one of these, and not equal to `recomputed`, is
            named as that computation, even within `atol` of `recomputed` (two numbers a test
            image apart on a large test set).
    """
    value = check_one_float(value, what)
    assert not (1 < value <= 100 and abs(value / 100 - recomputed) <= atol), (
        f"{what} is {value:g}: a percentage. Report the fraction (0 to 1) that tlkit.accuracy gives."
    )
    for name, alternative in (mistakes or {}).items():  # exactly another number, and not exactly this one
        if alternative is not None and abs(value - float(alternative)) <= 1e-6 < abs(value - recomputed):
            raise AssertionError(f"{what} is {value:.3f}, which is {name}; the question asks for {recomputed:.3f}.")
    if abs(value - recomputed) <= atol:
        return
    raise AssertionError(
        f"{what} is {value:.3f}, but the model gives {recomputed:.3f} on the same data. "
        "Report the number your model measured."
    )
