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

from tlkit.checks import check_features, check_labels
from tlkit.errors import check_int, check_number, invalid
from tlkit.model import classifier_head
from tlkit.train import History, build_before_tracing, compile_model, history_from


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
        outputs.append(classifier_head(x, num_classes, dropout, name=name, dtype="float32"))
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
) -> History:
    """Trains one linear head per feature array (one per cut point) in a single `fit`.

    Args:
        features: one `(n, features)` array per cut point, e.g. `tlkit.extract(extractor, images)`
            of an extractor built with `layers=tlkit.block_ends(base)`.
        labels: the class of each of the `n` images.
        num_classes: one output per class.
        names: a name per cut point (the heads' layer names); default `depth_0`, `depth_1`, ...
        epochs, learning_rate, batch_size: the training run (Adam).
        dropout: the dropout rate before each head.
        verbose: passed to `fit`.

    Returns:
        The `History` of the run; `history.model` holds the heads (`tlkit.probe_accuracies`).

    Example:

    ```python
    extractor = tlkit.feature_extractor(base, layers=tlkit.block_ends(base))
    probes = tlkit.train_probes(tlkit.extract(extractor, splits.train.images), splits.train.labels,
                                splits.num_classes).model
    tlkit.probe_accuracies(probes, tlkit.extract(extractor, splits.test.images), splits.test.labels)
    ```
    """
    if isinstance(features, np.ndarray) or not isinstance(features, Sequence) or not features:
        raise invalid(
            "features",
            type(features).__name__,
            "a non-empty list of feature arrays, one per cut point",
            "e.g. tlkit.extract(tlkit.feature_extractor(base, layers=tlkit.block_ends(base)), images).",
        )
    # float16 features (mixed precision) are read in float32
    features = [check_features(f, f"features[{i}]").astype(np.float32) for i, f in enumerate(features)]
    labels = np.asarray(labels)
    if any(len(f) != len(labels) for f in features):
        rows = [len(f) for f in features]
        raise ValueError(f"Every feature array needs one row per label ({len(labels)}); got {rows}.")
    check_int("num_classes", num_classes, 2, fix="One output per class: e.g. splits.num_classes.")
    check_labels(labels, num_classes, complete=True)
    check_int("epochs", epochs, 1)
    check_int("batch_size", batch_size, 1)
    check_number("dropout", dropout, 0, 1, exclusive_maximum=True)
    if names is not None and (isinstance(names, str) or len(set(names)) != len(names)):
        raise invalid("names", names, "one distinct name per cut point, e.g. tlkit.block_ends(base)")
    model = probe_model(features, num_classes, names, dropout)
    compile_model(model, learning_rate, metrics=())
    build_before_tracing(model)  # one trace of the training step, not two
    result = model.fit(
        features, [labels] * len(features), epochs=epochs, batch_size=batch_size, shuffle=True, verbose=verbose
    )
    return history_from(result, model)


def probe_accuracies(model: keras.Model, features: Sequence[np.ndarray], labels: np.ndarray) -> list[float]:
    """Top-1 accuracy of each head of `model` on `features`, shallow to deep.

    Args:
        model: the probes, `tlkit.train_probes(...).model`.
        features: one feature array per cut point, in the order the probes were trained on.
        labels: the class of each image.

    Returns:
        One accuracy (0-1) per cut point.

    Example:

    ```python
    test_features = tlkit.extract(extractor, splits.test.images)  # the extractor the probes were trained on
    tlkit.probe_accuracies(probes, test_features, splits.test.labels)  # e.g. [0.61, 0.74, 0.83, 0.88]
    ```
    """
    if not isinstance(model, keras.Model):
        raise invalid("model", type(model).__name__, "the probes, tlkit.train_probes(...).model")
    features = [check_features(f, f"features[{i}]") for i, f in enumerate(features)]
    labels = np.asarray(labels)
    if len(features) != len(model.inputs) or any(len(f) != len(labels) for f in features):
        raise ValueError(
            f"Invalid value for argument `features`. Received: {len(features)} arrays of {[len(f) for f in features]} "
            f"rows. Expected {len(model.inputs)} arrays (one per probe) of {len(labels)} rows (one per label)."
        )
    predictions = model.predict(features, batch_size=256, verbose=0)
    if not isinstance(predictions, (list, tuple)):
        predictions = [predictions]
    return [float(np.mean(p.argmax(-1) == labels)) for p in predictions]
