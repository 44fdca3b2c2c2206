"""Local stand-ins for the KerasHub presets the full profile downloads, written with `save_to_preset`.

`make rehearse` cannot download presets, so it writes one folder per preset that a lesson names and points
the lesson's preset parameter at it (`"{presets}/retinanet_resnet50_fpn_coco"`). Each stand-in has the real
preset's architecture and preprocessing, built from the configs KerasHub's own conversion scripts use, with
random weights: it shows that a lesson's KerasHub cells run, not what the trained weights score.

- `retinanet_resnet50_fpn_coco` (lesson 06): ResNet-50 + FPN (P3-P7, no P5 input), 91 COCO classes, and
  the preset's image converter: padded to a square and resized to 800 x 800, then normalised with the
  ImageNet mean and standard deviation (torchvision's transform, which the preset was converted from).
- `bert_tiny_en_uncased` (lesson 07): 2 layers, 2 heads, hidden size 128, 512 positions, a 30,522-token
  vocabulary, sequences of 512 tokens. BERT's WordPiece vocabulary is not available offline, so the stand-in
  vocabulary holds BERT's special tokens, single characters and their `##` continuations, padded to BERT's
  size with `[unused...]` tokens: text is tokenised character by character (the shapes are BERT's).

    python scripts/rehearsal_presets.py /tmp/presets   # writes both and prints their folders
"""

from __future__ import annotations

import string
import sys
from pathlib import Path

RETINANET = "retinanet_resnet50_fpn_coco"
BERT = "bert_tiny_en_uncased"
COCO_CLASSES = 91  # torchvision's COCO category list (80 classes and 11 unused ids), as the preset has
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
BERT_VOCABULARY_SIZE = 30522


def retinanet_stand_in(folder: Path) -> Path:
    """Writes `retinanet_resnet50_fpn_coco`'s architecture and preprocessor with random weights."""
    import keras_hub

    from tlkit.detection import RESNET50

    encoder = keras_hub.models.ResNetBackbone(**RESNET50, use_pre_activation=False, image_shape=(None, None, 3))
    backbone = keras_hub.models.RetinaNetBackbone(image_encoder=encoder, min_level=3, max_level=7, use_p5=False)
    converter = keras_hub.layers.RetinaNetImageConverter(
        image_size=(800, 800),
        pad_to_aspect_ratio=True,
        crop_to_aspect_ratio=False,
        scale=[1.0 / 255.0 / s for s in IMAGENET_STD],
        offset=[-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)],
    )  # the preset's bounding_box_format is KerasHub's default, "yxyx"
    preprocessor = keras_hub.models.RetinaNetObjectDetectorPreprocessor(image_converter=converter)
    model = keras_hub.models.RetinaNetObjectDetector(
        backbone=backbone, num_classes=COCO_CLASSES, preprocessor=preprocessor, use_prediction_head_norm=False
    )
    path = folder / RETINANET
    model.save_to_preset(str(path))
    return path


def bert_vocabulary() -> list[str]:
    """BERT's special tokens, characters and `##` continuations, then `[unused i]` up to BERT's size."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    characters = list(string.ascii_lowercase + string.digits + string.punctuation)
    characters += [chr(c) for c in range(0xA0, 0x250) if chr(c).isprintable() and chr(c) == chr(c).lower()]
    tokens = specials + characters + ["##" + c for c in characters]
    return tokens + [f"[unused{i}]" for i in range(BERT_VOCABULARY_SIZE - len(tokens))]


def bert_stand_in(folder: Path) -> Path:
    """Writes `bert_tiny_en_uncased`'s architecture and preprocessor with random weights."""
    import keras_hub

    tokenizer = keras_hub.models.BertTokenizer(vocabulary=bert_vocabulary(), lowercase=True)
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=512)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=BERT_VOCABULARY_SIZE, num_layers=2, num_heads=2, hidden_dim=128, intermediate_dim=512,
        dropout=0.1, max_sequence_length=512,
    )  # fmt: skip
    path = folder / BERT
    backbone.save_to_preset(str(path))
    preprocessor.save_to_preset(str(path))
    return path


def write_presets(folder: Path) -> dict[str, Path]:
    """Writes a stand-in for every KerasHub preset the full profile loads into `folder`.

    Args:
        folder: where the preset folders go (created if missing).

    Returns:
        The preset names and their folders, e.g. `{"bert_tiny_en_uncased": folder / "bert_tiny_en_uncased"}`.

    Example:

    ```python
    presets = write_presets(Path("/tmp/presets"))
    keras_hub.models.TextClassifier.from_preset(str(presets["bert_tiny_en_uncased"]), num_classes=2)
    ```
    """
    import keras

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")  # presets are saved in float32, as KerasHub's are
    try:
        keras.utils.set_random_seed(0)
        return {RETINANET: retinanet_stand_in(folder), BERT: bert_stand_in(folder)}
    finally:
        keras.mixed_precision.set_global_policy(policy)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[-1].strip())
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    for name, path in write_presets(Path(sys.argv[1])).items():
        print(f"{name}: {path}")
