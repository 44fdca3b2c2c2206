"""Probing a base at several depths: one linear head per cut point, trained together.

`feature_extractor(base, backbone, layers=[...])` gives the features at every cut point
from one forward pass. `train_probes` then fits one head per cut point in a single
`fit` call: a multi-input, multi-output model whose heads share nothing but the labels,
so each is exactly the head it would be on its own, without paying the per-`fit`
overhead once per depth.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np


def probe_model(
    features: Sequence[np.ndarray],
    num_classes: int,
    names: Sequence[str] | None = None,
    dropout: float = 0.2,
) -> keras.Model:
    """One `Normalization -> Dropout -> Dense` head per feature array, side by side.

    Each head standardises its features with their mean and variance over `features` (early
    layers have much larger activations than late ones; standardising lets one learning
    rate suit them all). The heads compute in float32 under any dtype policy: under
    `mixed_float16` a feature's variance can be below float16's smallest value, and the
    heads are too small for float16 to save anything.
    """
    names = list(names) if names is not None else [f"depth_{i}" for i in range(len(features))]
    if len(names) != len(features):
        raise ValueError(f"{len(features)} feature arrays but {len(names)} names: pass one name per cut point.")
    inputs, outputs = [], []
    for name, f in zip(names, features):
        f = np.asarray(f, np.float32)  # float16 features (mixed precision): statistics in float32
        x = inputs_i = keras.Input(shape=(f.shape[-1],), name=f"{name}_features")
        # The statistics `Normalization.adapt` would compute, without its tf.data pass per head.
        x = keras.layers.Normalization(
            mean=f.mean(axis=0), variance=f.var(axis=0), dtype="float32", name=f"{name}_norm"
        )(x)
        if dropout:
            x = keras.layers.Dropout(dropout, dtype="float32", name=f"{name}_dropout")(x)
        outputs.append(keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name=name)(x))
        inputs.append(inputs_i)
    return keras.Model(inputs, outputs, name="probes")


def train_probes(
    features: Sequence[np.ndarray],
    labels: np.ndarray,
    num_classes: int,
    names: Sequence[str] | None = None,
    epochs: int = 100,
    learning_rate: float = 3e-3,
    batch_size: int = 32,
    dropout: float = 0.2,
    verbose: int = 0,
) -> keras.Model:
    """Trains one head per feature array (one per cut point) in a single `fit`."""
    from tlkit.checks import check_labels

    features = [np.asarray(f, np.float32) for f in features]  # float16 features (mixed precision) too
    if not features:
        raise ValueError("No features to probe: pass one feature array per cut point.")
    if any(len(f) != len(labels) for f in features):
        rows = [len(f) for f in features]
        raise ValueError(f"Every feature array needs one row per label ({len(labels)}); got {rows}.")
    check_labels(labels, num_classes)
    model = probe_model(features, num_classes, names, dropout)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=["sparse_categorical_crossentropy"] * len(features),
    )
    model.fit(features, [labels] * len(features), epochs=epochs, batch_size=batch_size, shuffle=True, verbose=verbose)
    return model


def probe_accuracies(model: keras.Model, features: Sequence[np.ndarray], labels: np.ndarray) -> list[float]:
    """Top-1 accuracy of each head of `model` on `features`, shallow to deep."""
    predictions = model.predict(list(features), batch_size=256, verbose=0)
    if not isinstance(predictions, (list, tuple)):
        predictions = [predictions]
    return [float(np.mean(p.argmax(-1) == np.asarray(labels))) for p in predictions]
