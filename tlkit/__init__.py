"""tlkit: the helpers behind the transfer-learning lessons.

The lessons call these for bookkeeping; the Keras mechanism itself (`base.trainable = False`,
`base(x, training=False)`, recompiling before fine-tuning) stays in the notebooks.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tlkit.advise import Advice, advise  # noqa: E402
from tlkit.backbones import BACKBONES, BackbonePreprocessing, block_ends, get_spec, load_backbone  # noqa: E402
from tlkit.augment import RandomCropFlip, augmentation  # noqa: E402
from tlkit.data import ImageSet, Splits, from_arrays, load_dataset, to_tf  # noqa: E402
from tlkit.features import accuracy, copy_head, extract, feature_extractor, train_head  # noqa: E402
from tlkit.model import (  # noqa: E402
    build_classifier,
    cut,
    freeze,
    freeze_up_to,
    trainable_report,
    unfreeze_all,
    unfreeze_top,
)
from tlkit.profiles import get_profile, set_seed, setup  # noqa: E402
from tlkit.text import WordVectors, glove_standardize, load_sentences, load_word_vectors  # noqa: E402
from tlkit.train import History, compile_model, fit, fit_two_phase  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Advice",
    "BACKBONES",
    "BackbonePreprocessing",
    "History",
    "ImageSet",
    "RandomCropFlip",
    "Splits",
    "WordVectors",
    "accuracy",
    "advise",
    "augmentation",
    "block_ends",
    "build_classifier",
    "compile_model",
    "copy_head",
    "cut",
    "extract",
    "feature_extractor",
    "fit",
    "fit_two_phase",
    "freeze",
    "freeze_up_to",
    "from_arrays",
    "get_profile",
    "get_spec",
    "glove_standardize",
    "load_backbone",
    "load_dataset",
    "load_sentences",
    "load_word_vectors",
    "set_seed",
    "setup",
    "to_tf",
    "train_head",
    "trainable_report",
    "unfreeze_all",
    "unfreeze_top",
]
