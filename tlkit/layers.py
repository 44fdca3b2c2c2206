"""Walking a Keras model's layers, the layers of nested models included.

A classifier built on a pretrained base holds the base as one layer; what a check or a report
needs is often inside it (its BatchNorm layers, its preprocessing). Keras's `model.layers`
lists one level; `nested_layers` goes down every level.
"""

from __future__ import annotations

from collections.abc import Iterator

import keras


def nested_layers(model: keras.Model) -> Iterator[keras.layers.Layer]:
    """Every layer of `model`, depth first: each nested model is followed by its own layers.

    Args:
        model: a Keras model (functional or sequential).

    Returns:
        An iterator over the layers, nested models included, in the order `model.layers` lists them.

    Example:

    ```python
    batchnorm = [layer for layer in tlkit.layers.nested_layers(model)
                 if isinstance(layer, keras.layers.BatchNormalization)]  # the base's, inside the classifier
    ```
    """
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from nested_layers(layer)


def leaf_layers(model: keras.Model) -> Iterator[keras.layers.Layer]:
    """The layers of `model` that are not models themselves, nested ones included, in order."""
    return (layer for layer in nested_layers(model) if not isinstance(layer, keras.Model))
