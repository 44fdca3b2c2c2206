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

# The core: each public name and the submodule that defines it. A name is here when two or more
# lessons or assignments use it, and `advise`, the course's answer for a dataset of one's own.
# Tools of one lesson live in their own namespace, loaded on first use like the rest:
# `tlkit.detection` (lesson 06), `tlkit.text` (lesson 07), `tlkit.experiments` (lessons 03
# and 05), `tlkit.plots`; every module is reachable as `tlkit.<module>`.
_EXPORTS = {
    "advice": ("LARGE_FROM", "advise"),
    "backbones": ("BackbonePreprocessing", "block_ends", "load_backbone"),
    "data": ("from_arrays", "load_dataset", "sample_per_class", "to_tf"),
    "features": ("accuracy", "copy_head", "extract", "feature_extractor", "train_head"),
    "model": ("build_classifier", "cut", "trainable_report", "unfreeze_all", "unfreeze_top"),
    "probes": ("probe_accuracies", "train_probes"),
    "profiles": ("get_profile", "set_seed", "setup"),
    "train": ("compile_model", "fit"),
}
_ORIGIN = {name: module for module, names in _EXPORTS.items() for name in names}
# Submodules reached as attributes (`tlkit.plots.training_curves`, `tlkit.assets.fetch`).
_SUBMODULES = (
    "advice", "assets", "augment", "backbones", "checks", "curves", "data", "detection", "errors",
    "experiments", "features", "fine_tuning", "gradcam", "layers", "memory", "model", "network", "plots",
    "probes", "profiles", "range_test", "runs", "search", "text", "train", "transferability",
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
