"""Putting a new head on a pretrained base, and choosing which of its layers learn.

The lessons spell out the Keras mechanism themselves (`base.trainable = False`, the base
called with `training=False`); these helpers do the same thing for the cases that take
more than one line: unfreeze the top N blocks, freeze up to a layer, cut at a layer.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from tlkit.backbones import BackbonePreprocessing, block_ends, resolve_backbone
from tlkit.errors import check_choice, check_int, check_number, invalid, suggest
from tlkit.layers import leaf_layers


def check_base(base, argument: str = "base") -> None:
    """Raises unless `base` is a Keras model that takes batches of RGB images."""
    if not isinstance(base, keras.Model):
        raise TypeError(
            f"Invalid value for argument `{argument}`. Received: {type(base).__name__}. "
            "Expected a Keras model, e.g. tlkit.load_backbone('mobilenet_0.25', 128)."
        )
    shape = base.input_shape
    if isinstance(shape, list) or len(shape) != 4 or shape[-1] != 3:
        raise ValueError(
            f"Invalid value for argument `{argument}`. Received: a model taking {shape}. Expected a base "
            "taking RGB images (batch, height, width, 3), e.g. tlkit.load_backbone(name, image_size)."
        )


def build_classifier(
    base: keras.Model,
    num_classes: int,
    backbone: str | None = None,
    dropout: float = 0.2,
    pooling: str = "avg",
    augment: keras.layers.Layer | None = None,
    name: str | None = None,
) -> keras.Model:
    """`inputs -> [augment] -> preprocess -> base(training=False) -> pool -> dropout -> Dense`.

    The model takes 0-255 RGB images and returns class probabilities (float32 even under
    mixed precision). The base is called with `training=False`, the Keras idiom; but in
    Keras 3 `fit` passes `training=True` to every layer of the graph, the nested base
    included (keras-team/keras#20285). What keeps a BatchNorm layer in inference mode, with
    its ImageNet statistics, is `trainable=False`: the freezing helpers below keep BatchNorm
    frozen unless asked (`train_batchnorm=True`).

    Args:
        base: the pretrained base (`tlkit.load_backbone`).
        num_classes: one output per class, at least 2.
        backbone: its registry name, which picks the preprocessing; by default read from
            the base (`tlkit.backbones.backbone_of`). A name that does not match the base is an error.
        dropout: the dropout rate before the head, in [0, 1).
        pooling: `"avg"` or `"max"`.
        augment: a layer applied to the images first (e.g. `tlkit.augment.augmentation()`).
        name: the model's name.

    Returns:
        The classifier, uncompiled (`tlkit.compile_model`).

    Example:

    ```python
    base = tlkit.load_backbone("mobilenet_0.25", 96)
    base.trainable = False
    model = tlkit.build_classifier(base, splits.num_classes)
    tlkit.compile_model(model, 1e-3)
    ```
    """
    check_base(base)
    backbone = resolve_backbone(base, backbone)
    num_classes = check_int("num_classes", num_classes, 2, fix="One output per class: e.g. splits.num_classes.")
    check_number("dropout", dropout, 0, 1, exclusive_maximum=True)
    check_choice("pooling", pooling, ("avg", "max"))
    if augment is not None and not callable(augment):
        raise TypeError(
            f"Invalid value for argument `augment`. Received: augment={augment!r}. "
            "Expected a Keras layer such as tlkit.augment.augmentation(), or None."
        )
    if name is not None and not isinstance(name, str):
        raise TypeError(f"Invalid value for argument `name`. Received: name={name!r}. Expected a string or None.")
    inputs = keras.Input(shape=base.input_shape[1:], name="images")
    x = augment(inputs) if augment is not None else inputs
    x = BackbonePreprocessing(backbone, name="preprocess")(x)
    x = base(x, training=False)
    pool = keras.layers.GlobalAveragePooling2D if pooling == "avg" else keras.layers.GlobalMaxPooling2D
    outputs = classifier_head(pool(name="pool")(x), num_classes, dropout)
    return keras.Model(inputs, outputs, name=name or f"{base.name}_classifier")


def classifier_head(
    x,
    num_classes: int,
    dropout: float = 0.0,
    hidden: Sequence[int] = (),
    name: str = "head",
    dtype: str | None = None,
):
    """The head of every classifier in the course: `[Dropout -> Dense(relu)]* -> Dropout -> Dense(softmax)`.

    `build_classifier`, the heads `tlkit.train_head` trains on cached features, the probes of
    `tlkit.train_probes` and the models of `tlkit.experiments.learning_curves` all end in it.
    The softmax layer computes in float32 under any precision policy.

    Args:
        x: the features, a symbolic tensor `(batch, features)`.
        num_classes: one output per class.
        dropout: the dropout rate before each `Dense` layer; 0 for none.
        hidden: the units of each hidden `Dense(units, "relu")` layer (`hidden_1`, ...); `()`
            for a linear head.
        name: the softmax layer's name; its dropout layer is `dropout` for the default name,
            else `{name}_dropout`.
        dtype: the dtype policy of the dropout layers (default: the global policy).

    Returns:
        The class probabilities, a symbolic tensor `(batch, num_classes)`.

    Example:

    ```python
    features = keras.Input(shape=(256,))
    head = keras.Model(features, tlkit.model.classifier_head(features, 5, dropout=0.2))
    ```
    """
    for i, units in enumerate(hidden, start=1):
        x = keras.layers.Dropout(dropout, dtype=dtype, name=f"hidden_{i}_dropout")(x) if dropout else x
        x = keras.layers.Dense(units, activation="relu", name=f"hidden_{i}")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, dtype=dtype, name="dropout" if name == "head" else f"{name}_dropout")(x)
    return keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name=name)(x)


def layer_index(base: keras.Model, layer_name: str) -> int:
    names = [layer.name for layer in base.layers]
    if layer_name not in names:
        raise ValueError(
            f"{base.name} has no layer {layer_name!r}.{suggest(layer_name, names)} "
            "Use tlkit.block_ends(base, backbone) for the block boundaries."
        )
    return names.index(layer_name)


def freeze_up_to(base: keras.Model, layer_name: str, train_batchnorm: bool = False) -> None:
    """Freezes `base` up to and including `layer_name`; the layers after it learn.

    BatchNorm layers stay frozen unless `train_batchnorm` is set, so they keep the ImageNet
    statistics they were trained with. A trainable BatchNorm layer is run by `fit` in
    training mode: each batch is normalised by its own statistics (noisier for small or
    one-class batches), and the moving averages used at evaluation drift towards the new
    data (momentum 0.99). Lesson 03 measures what that costs: on 800 shuffled natural photos
    in batches of 32, the accuracy moved by up to 6 points either way, with no consistent
    sign (seeds 0-11); keeping BatchNorm frozen costs nothing and removes that spread, so it
    is the default.

    Afterwards `base.trainable` is True, so a later `base.trainable = True` is skipped by
    Keras (the value is unchanged) and leaves the frozen layers frozen; set it to False
    first, or call `unfreeze_all(base)`.
    """
    stop = layer_index(base, layer_name)
    base.trainable = True
    for i, layer in enumerate(base.layers):
        is_bn = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = i > stop and (train_batchnorm or not is_bn)


def unfreeze_all(base: keras.Model, train_batchnorm: bool = False) -> None:
    """Every layer of `base` learns, BatchNorm included only if `train_batchnorm` is set.

    Sets `base.trainable = True`, then `trainable = False` on each BatchNormalization layer
    unless `train_batchnorm`: in Keras 3 only that keeps BatchNorm in inference mode, on the
    statistics it was trained with, while `fit` trains the rest. Compile the model again
    afterwards.

    Args:
        base: the pretrained base.
        train_batchnorm: let BatchNorm learn and update its statistics too.

    Example:

    ```python
    tlkit.unfreeze_all(base)  # BatchNorm stays frozen
    tlkit.compile_model(model, 1e-4)
    ```
    """
    freeze_up_to(base, base.layers[0].name, train_batchnorm)  # the input layer: everything after it learns


def unfreeze_top(base: keras.Model, blocks: int, backbone: str | None = None, train_batchnorm: bool = False) -> None:
    """Unfreezes the top `blocks` blocks of `base` (block boundaries from the registry).

    `backbone` defaults to the base's own (`tlkit.backbones.backbone_of`). The layers before them stay
    frozen, and BatchNorm stays frozen (inference mode) unless `train_batchnorm`. Compile the
    model again afterwards.

    Args:
        base: the pretrained base.
        blocks: how many of the last blocks learn: 0 (everything frozen) to the number of
            blocks (everything learns).
        backbone: its registry name (default: read from the base).
        train_batchnorm: let the unfrozen blocks' BatchNorm learn and update its statistics.

    Example:

    ```python
    tlkit.unfreeze_top(base, 2)  # the last 2 blocks learn
    tlkit.compile_model(model, 1e-4)
    ```
    """
    if not isinstance(train_batchnorm, bool):
        raise TypeError(f"Invalid value for argument `train_batchnorm`. Received: {train_batchnorm!r}. Expected True "
                        "or False.")  # fmt: skip
    backbone = resolve_backbone(base, backbone)
    ends = block_ends(base, backbone)
    check_int("blocks", blocks, 0, len(ends), fix=f"{backbone} has {len(ends)} blocks.")
    if blocks == 0:
        base.trainable = False
    elif blocks == len(ends):
        unfreeze_all(base, train_batchnorm)
    else:
        freeze_up_to(base, ends[-blocks - 1], train_batchnorm)


def cut(base: keras.Model, layer_name: str) -> keras.Model:
    """The part of `base` from its input to `layer_name` (an earlier, more generic feature layer).

    Args:
        base: the pretrained base (`tlkit.load_backbone`).
        layer_name: the last layer to keep, e.g. one of `tlkit.block_ends(base)`.

    Returns:
        A model from the base's input to that layer's output, sharing the base's weights.

    Example:

    ```python
    trunk = tlkit.cut(base, tlkit.block_ends(base)[-3])  # drop the top two blocks
    ```
    """
    check_base(base)
    layer_index(base, layer_name)
    return keras.Model(base.input, base.get_layer(layer_name).output, name=f"{base.name}_to_{layer_name}")


def count_params(weights) -> int:
    return int(sum(int(w.numpy().size) if hasattr(w, "numpy") else int(keras.ops.size(w)) for w in weights))


def trainable_report(model: keras.Model, max_rows: int = 12) -> str:
    """A short table: trainable and frozen parameters, and which runs of layers learn.

    BatchNorm layers are counted on a line of their own: a frozen BatchNorm layer also
    runs in inference mode (it keeps its ImageNet statistics).

    Args:
        model: any Keras model; nested models are opened up.
        max_rows: at most this many runs of layers are listed.

    Returns:
        The table, as text.

    Example:

    ```python
    base.trainable = False
    print(tlkit.trainable_report(model))  # only the head's Dense layer learns
    ```
    """
    if not isinstance(model, keras.layers.Layer):
        raise invalid("model", type(model).__name__, "a Keras model or layer")
    check_int("max_rows", max_rows, 1)
    trainable = count_params(model.trainable_weights)
    frozen = count_params(model.non_trainable_weights)
    lines = [f"{model.name}: {trainable:,} trainable / {frozen:,} frozen parameters"]
    runs, batchnorm = [], {"trainable": 0, "frozen": 0}
    for layer in leaf_layers(model):
        if not layer.weights:
            continue
        state = "trainable" if layer.trainable_weights else "frozen"
        if isinstance(layer, keras.layers.BatchNormalization):
            batchnorm[state] += 1
            continue
        if runs and runs[-1][0] == state:
            runs[-1][1].append(layer)
        else:
            runs.append((state, [layer]))
    for state, group in runs[:max_rows]:
        span = group[0].name if len(group) == 1 else f"{group[0].name} .. {group[-1].name}"
        n = sum(count_params(layer.weights) for layer in group)
        lines.append(f"  {state:9s} {len(group):4d} layers {n:>11,} params  {span}")
    if len(runs) > max_rows:
        lines.append(f"  ... {len(runs) - max_rows} more runs")
    if any(batchnorm.values()):
        lines.append(f"  BatchNorm: {batchnorm['frozen']} frozen (inference mode), {batchnorm['trainable']} trainable")
    return "\n".join(lines)
