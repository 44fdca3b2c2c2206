"""tlkit: the helpers behind the transfer-learning lessons.

The lessons call these for bookkeeping; the Keras mechanism itself (`base.trainable = False`,
`base(x, training=False)`, recompiling before fine-tuning) stays in the notebooks.

Every name loads on first use (PEP 562): `import tlkit` reads no submodule, imports no backend
and changes no setting, so `python -m tlkit.assets` runs before anything else is installed.

Example:

```python
import tlkit

splits = tlkit.load_dataset("caltech101", 96, classes=5)  # tlkit.data loads here
base = tlkit.load_backbone("mobilenet_0.25", 96)  # Keras, and its backend, load here
```
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# Each public name and the submodule that defines it.
_EXPORTS = {
    "advice": ("CALIBRATION", "LARGE_FROM", "Advice", "advise", "domain_distances", "sample_per_class"),
    "augment": ("RandomCropFlip", "augmentation"),
    "backbones": ("BACKBONES", "BackbonePreprocessing", "backbone_of", "block_ends", "get_spec", "load_backbone"),
    "curves": ("learning_curves", "nested_subset"),
    "data": ("FASHION_MNIST_CLASSES", "ImageSet", "Splits", "from_arrays", "load_dataset", "to_tf"),
    "detection": (
        "Scenes",
        "box_loss",
        "decode",
        "detect",
        "detection_scenes",
        "encode",
        "encode_scenes",
        "evaluate_detector",
        "focal_loss",
        "make_scenes",
        "mean_average_precision",
        "retinanet",
        "show_scenes",
    ),
    "features": ("accuracy", "copy_head", "extract", "feature_extractor", "pooled", "train_head"),
    "range_test": ("RangeTest", "lr_find"),
    "model": ("build_classifier", "cut", "freeze", "freeze_up_to", "trainable_report", "unfreeze_all", "unfreeze_top"),
    "probes": ("probe_accuracies", "train_probes"),
    "profiles": ("get_profile", "set_seed", "setup"),
    "search": ("learning_rate_sweep",),
    "text": ("WordVectors", "glove_standardize", "load_sentences", "load_word_vectors"),
    "train": ("History", "compile_model", "fit", "fit_two_phase"),
}
_ORIGIN = {name: module for module, names in _EXPORTS.items() for name in names}
# Submodules reached as attributes (`tlkit.plots.learning_curves`, `tlkit.assets.fetch`).
_SUBMODULES = (
    "advice", "assets", "augment", "backbones", "checks", "curves", "data", "detection", "errors",
    "features", "memory", "model", "network", "plots", "probes", "profiles", "range_test", "runs",
    "search", "text", "train",
)  # fmt: skip

__all__ = sorted(_ORIGIN)


def __getattr__(name: str):
    """Imports the submodule that defines `name` the first time it is used."""
    if name in _ORIGIN:
        value = getattr(importlib.import_module(f"tlkit.{_ORIGIN[name]}"), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"tlkit.{name}")
    else:
        raise AttributeError(f"module 'tlkit' has no attribute {name!r}")
    globals()[name] = value  # later uses skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *_SUBMODULES})
