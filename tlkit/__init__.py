"""tlkit: the helpers behind the transfer-learning lessons.

The lessons call these for bookkeeping; the Keras mechanism itself (`base.trainable = False`,
`base(x, training=False)`, recompiling before fine-tuning) stays in the notebooks.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tlkit.advise import (  # noqa: E402
    CALIBRATION,
    LARGE_FROM,
    Advice,
    advise,
    domain_distances,
    sample_per_class,
)
from tlkit.augment import RandomCropFlip, augmentation  # noqa: E402
from tlkit.backbones import (  # noqa: E402
    BACKBONES,
    BackbonePreprocessing,
    backbone_of,
    block_ends,
    get_spec,
    load_backbone,
)
from tlkit.curves import learning_curves, nested_subset  # noqa: E402
from tlkit.data import FASHION_MNIST_CLASSES, ImageSet, Splits, from_arrays, load_dataset, to_tf  # noqa: E402
from tlkit.detection import (  # noqa: E402
    Scenes,
    box_loss,
    decode,
    detect,
    detection_scenes,
    encode,
    encode_scenes,
    evaluate_detector,
    focal_loss,
    make_scenes,
    mean_average_precision,
    retinanet,
    show_scenes,
)
from tlkit.features import accuracy, copy_head, extract, feature_extractor, pooled, train_head  # noqa: E402
from tlkit.lr_find import RangeTest, lr_find  # noqa: E402
from tlkit.model import (  # noqa: E402
    build_classifier,
    cut,
    freeze,
    freeze_up_to,
    trainable_report,
    unfreeze_all,
    unfreeze_top,
)
from tlkit.probes import probe_accuracies, train_probes  # noqa: E402
from tlkit.profiles import get_profile, set_seed, setup  # noqa: E402
from tlkit.search import learning_rate_sweep  # noqa: E402
from tlkit.text import WordVectors, glove_standardize, load_sentences, load_word_vectors  # noqa: E402
from tlkit.train import History, compile_model, fit, fit_two_phase  # noqa: E402

__version__ = "0.1.0"


def __getattr__(name: str):
    """`tlkit.assets` on first use: not imported at start-up, so `python -m tlkit.assets` runs it cleanly."""
    if name == "assets":
        import importlib

        return importlib.import_module("tlkit.assets")
    raise AttributeError(f"module 'tlkit' has no attribute {name!r}")


__all__ = [
    "Advice",
    "BACKBONES",
    "BackbonePreprocessing",
    "CALIBRATION",
    "FASHION_MNIST_CLASSES",
    "History",
    "ImageSet",
    "RandomCropFlip",
    "RangeTest",
    "LARGE_FROM",
    "Scenes",
    "Splits",
    "WordVectors",
    "accuracy",
    "advise",
    "augmentation",
    "backbone_of",
    "block_ends",
    "box_loss",
    "build_classifier",
    "compile_model",
    "copy_head",
    "cut",
    "decode",
    "detect",
    "detection_scenes",
    "domain_distances",
    "encode",
    "encode_scenes",
    "evaluate_detector",
    "extract",
    "feature_extractor",
    "fit",
    "fit_two_phase",
    "focal_loss",
    "freeze",
    "freeze_up_to",
    "from_arrays",
    "get_profile",
    "get_spec",
    "glove_standardize",
    "learning_curves",
    "learning_rate_sweep",
    "lr_find",
    "load_backbone",
    "load_dataset",
    "load_sentences",
    "load_word_vectors",
    "make_scenes",
    "mean_average_precision",
    "nested_subset",
    "pooled",
    "probe_accuracies",
    "retinanet",
    "sample_per_class",
    "set_seed",
    "setup",
    "show_scenes",
    "to_tf",
    "train_head",
    "train_probes",
    "trainable_report",
    "unfreeze_all",
    "unfreeze_top",
]
