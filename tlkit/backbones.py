"""The backbone registry: which `keras.applications` model, how to feed it, where to cut it.

Each entry names the constructor, the matching `preprocess_input`, the default and minimum
input size, and the layers that end each block (the natural places to freeze up to or to cut
the network). `load_backbone` builds the base without its ImageNet classifier and finds its
ImageNet weights on disk before it ever tries a download.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from pathlib import Path

import keras

from tlkit.assets import ASSETS_ENV, FETCH_COMMAND, MIRROR_ENV, AssetsError, cache_dir, locate, read_manifest
from tlkit.data import fetched_part
from tlkit.errors import check_int, suggest
from tlkit.layers import nested_layers
from tlkit.network import require_network
from tlkit.profiles import get_profile

apps = keras.applications


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """What tlkit knows about one `keras.applications` backbone."""

    name: str
    constructor: Callable[..., keras.Model]
    preprocess: Callable
    default_size: int
    min_size: int
    blocks: tuple[str, ...]
    weight_glob: str
    kwargs: dict = dataclasses.field(default_factory=dict)
    imagenet_sizes: tuple[int, ...] = ()

    def build(self, image_size: int, weights=None, **kwargs) -> keras.Model:
        """Calls the constructor (no top) for square RGB images of `image_size`."""
        return self.constructor(
            include_top=False,
            weights=weights,
            input_shape=(image_size, image_size, 3),
            **{**self.kwargs, **kwargs},
        )


def _mobilenet(alpha: float, alpha_text: str) -> BackboneSpec:
    suffix = "" if alpha == 1.0 else f"_{alpha}"
    return BackboneSpec(
        name=f"mobilenet{suffix}",
        constructor=apps.MobileNet,
        preprocess=apps.mobilenet.preprocess_input,
        default_size=224,
        min_size=32,
        blocks=("conv1_relu",) + tuple(f"conv_pw_{i}_relu" for i in range(1, 14)),
        weight_glob=f"mobilenet_{alpha_text}_*_tf_no_top.h5",
        kwargs={"alpha": alpha},
        imagenet_sizes=(128, 160, 192, 224),
    )


BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in [
        _mobilenet(0.25, "2_5"),
        _mobilenet(0.5, "5_0"),
        _mobilenet(1.0, "1_0"),
        BackboneSpec(
            name="mobilenet_v2",
            constructor=apps.MobileNetV2,
            preprocess=apps.mobilenet_v2.preprocess_input,
            default_size=224,
            min_size=32,
            blocks=(
                "expanded_conv_project_BN",
                "block_2_add",
                "block_5_add",
                "block_9_add",
                "block_12_add",
                "block_15_add",
                "block_16_project_BN",
                "out_relu",
            ),
            weight_glob="mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_*_no_top.h5",
            imagenet_sizes=(96, 128, 160, 192, 224),
        ),
        BackboneSpec(
            name="mobilenet_v3_small",
            constructor=apps.MobileNetV3Small,
            preprocess=apps.mobilenet_v3.preprocess_input,
            default_size=224,
            min_size=32,
            # The last block ends at the model's output (its activation has no fixed name).
            blocks=(
                "expanded_conv_project_bn",
                "expanded_conv_2_add",
                "expanded_conv_5_add",
                "expanded_conv_7_add",
                "expanded_conv_10_add",
            ),
            weight_glob="weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
            imagenet_sizes=(224,),
        ),
        BackboneSpec(
            name="mobilenet_v3_large",
            constructor=apps.MobileNetV3Large,
            preprocess=apps.mobilenet_v3.preprocess_input,
            default_size=224,
            min_size=32,
            blocks=(
                "expanded_conv_add",
                "expanded_conv_2_add",
                "expanded_conv_5_add",
                "expanded_conv_9_add",
                "expanded_conv_11_add",
                "expanded_conv_14_add",
            ),
            weight_glob="weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5",
            imagenet_sizes=(224,),
        ),
        BackboneSpec(
            name="efficientnet_b0",
            constructor=apps.EfficientNetB0,
            preprocess=apps.efficientnet.preprocess_input,
            default_size=224,
            min_size=32,
            blocks=(
                "block1a_project_bn",
                "block2b_add",
                "block3b_add",
                "block4c_add",
                "block5c_add",
                "block6d_add",
                "block7a_project_bn",
                "top_activation",
            ),
            weight_glob="efficientnetb0_notop.h5",
        ),
        BackboneSpec(
            name="resnet50",
            constructor=apps.ResNet50,
            preprocess=apps.resnet50.preprocess_input,
            default_size=224,
            min_size=32,
            blocks=(
                "conv1_relu",
                "conv2_block3_out",
                "conv3_block4_out",
                "conv4_block6_out",
                "conv5_block3_out",
            ),
            weight_glob="resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        ),
        BackboneSpec(
            name="densenet121",
            constructor=apps.DenseNet121,
            preprocess=apps.densenet.preprocess_input,
            default_size=224,
            min_size=32,
            blocks=("conv1_relu", "pool2_pool", "pool3_pool", "pool4_pool", "relu"),
            weight_glob="densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
        ),
        BackboneSpec(
            name="vgg16",
            constructor=apps.VGG16,
            preprocess=apps.vgg16.preprocess_input,
            default_size=224,
            min_size=32,
            blocks=tuple(f"block{i}_pool" for i in range(1, 6)),
            weight_glob="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        ),
    ]
}


def get_spec(name: str | BackboneSpec) -> BackboneSpec:
    """The registry entry for `name`, with a suggestion when the name is unknown."""
    if isinstance(name, BackboneSpec):
        return name
    if name not in BACKBONES:
        raise ValueError(
            f"Unknown backbone {name!r}.{suggest(name, BACKBONES)} Known backbones: {', '.join(BACKBONES)}."
        )
    return BACKBONES[name]


# The names keras.applications gives each backbone's model (tlkit.load_backbone keeps them): the
# registry name of a base can be read off it, so a base carries its backbone with it, saved or not.
_MODEL_NAMES = {
    "mobilenet_0.25": r"mobilenet_0\.25_\d+",
    "mobilenet_0.5": r"mobilenet_0\.50_\d+",
    "mobilenet": r"mobilenet_1\.00_\d+",
    "mobilenet_v2": r"mobilenetv2_1\.00_\d+",
    "mobilenet_v3_small": r"MobileNetV3Small",
    "mobilenet_v3_large": r"MobileNetV3Large",
    "efficientnet_b0": r"efficientnetb0",
    "resnet50": r"resnet50",
    "densenet121": r"densenet121",
    "vgg16": r"vgg16",
}


def backbone_of(base: keras.Model) -> str | None:
    """The registry name of the backbone `base` was built from, or None if it is not one of them.

    Read from the model's name, which `keras.applications` sets and saving keeps (a base
    cut with `tlkit.cut` keeps it as a prefix); a renamed base is recognised by its layers.
    """
    name = str(getattr(base, "name", ""))
    for registry_name, pattern in _MODEL_NAMES.items():
        if re.fullmatch(pattern + r"(_to_.+)?", name):
            return registry_name
    layer_names = {layer.name for layer in getattr(base, "layers", [])}
    matches = [spec.name for spec in BACKBONES.values() if set(spec.blocks) <= layer_names]
    if len(matches) > 1 and "conv1" in layer_names:  # the MobileNet widths share layer names
        filters = getattr(base.get_layer("conv1"), "filters", None)
        by_width = {32: "mobilenet", 16: "mobilenet_0.5", 8: "mobilenet_0.25"}
        matches = [m for m in matches if m == by_width.get(filters)]
    return matches[0] if len(matches) == 1 else None


def resolve_backbone(base: keras.Model, backbone: str | BackboneSpec | None, argument: str = "backbone") -> str:
    """The registry name for `base`: `backbone` if given (it must match the base), else the base's own.

    Raises when the two disagree (the wrong preprocessing would train silently) or when
    neither says which backbone it is.
    """
    found = backbone_of(base) if isinstance(base, keras.Model) else None
    if backbone is None:
        if found is None:
            raise ValueError(
                f"Cannot tell which backbone {getattr(base, 'name', base)!r} is. Received: {argument}=None. "
                f"Expected {argument}= one of {', '.join(BACKBONES)} (the one the base was built from), "
                "or a base from tlkit.load_backbone."
            )
        return found
    if not isinstance(backbone, (str, BackboneSpec)):
        raise TypeError(
            f"Invalid value for argument `{argument}`. Received: {argument}={backbone!r}. "
            f"Expected a registry name such as 'mobilenet_0.25' (one of {', '.join(BACKBONES)})."
        )
    name = get_spec(backbone).name
    if found is not None and found != name:
        raise ValueError(
            f"The base {base.name!r} is a {found}, but {argument}={name!r} was passed: the model would get "
            f"{name}'s preprocessing and block list. Received: {argument}={name!r}. Expected {argument}={found!r}, "
            f"or leave it out (tlkit reads it from the base)."
        )
    return name


def check_image_size(spec: BackboneSpec, image_size: int) -> None:
    """Raises a clear error when `image_size` is below what the backbone accepts."""
    check_int("image_size", image_size, spec.min_size, fix=f"{spec.name} needs images of at least "
              f"{spec.min_size}x{spec.min_size} pixels: resize the images up (e.g. image_size={spec.default_size}, "
              "its default) when you load the data.")  # fmt: skip


def weight_dirs() -> list[Path]:
    """Where local ImageNet weight files are looked for, in order.

    Returns:
        `weights/` of the assets folder (`tlkit.assets.locate`: `$TLKIT_ASSETS`, else the cache)
        when there is one, then `$KERAS_HOME/models` (default `~/.keras/models`). A folder may
        not exist yet.

    Raises:
        tlkit.assets.AssetsError: `$TLKIT_ASSETS` is set to something that is not a folder.
    """
    dirs = []
    assets = locate(required=False)
    if assets is not None:
        dirs.append(assets / "weights")
    keras_home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    dirs.append(Path(keras_home) / "models")
    return dirs


def find_weight_file(spec: BackboneSpec, image_size: int) -> Path | None:
    """A local no-top ImageNet weight file for `spec`, preferring the one made for `image_size`.

    Without the classifier, a convolutional base has no size-dependent weights, so a file
    saved at any input size loads at any other.

    Args:
        spec: the backbone; its `weight_glob` names the files that fit.
        image_size: the input size the base is built at.

    Returns:
        A file of `weight_dirs()` (one made for `image_size` if any, else any that fits; ties go to
        the first path in sorted order), or `None` when there is none.

    Raises:
        tlkit.assets.AssetsError: `$TLKIT_ASSETS` is set to something that is not a folder.
    """
    found = sorted(p for d in weight_dirs() if d.is_dir() for p in d.glob(spec.weight_glob))
    exact = [p for p in found if f"_{image_size}_" in p.name]
    return (exact or found or [None])[0]


def in_pack(spec: BackboneSpec) -> bool:
    """Whether the asset pack holds ImageNet weights for `spec` (MobileNet alpha=0.25 does)."""
    from fnmatch import fnmatch

    return any(e.part == "weights" and fnmatch(e.path.rsplit("/", 1)[-1], spec.weight_glob) for e in read_manifest())


def load_backbone(
    name: str | BackboneSpec,
    image_size: int | None = None,
    weights: str | os.PathLike | None = "imagenet",
) -> keras.Model:
    """Builds the base of a `keras.applications` model, without its classifier.

    Args:
        name: a registry name, e.g. `"mobilenet_0.25"` or `"efficientnet_b0"`.
        image_size: square input size in pixels (default: the backbone's own).
        weights: `"imagenet"` (local file first, download only in the full profile),
            `None` for random initialisation, or the path of a weight file.

    Returns:
        The base, named as `keras.applications` names it (e.g. `mobilenet_0.25_128`): the
        name tells `build_classifier`, `feature_extractor` and `block_ends` which backbone it
        is (`tlkit.backbones.backbone_of(base)`), so they need not be told again.

    Example:

    ```python
    base = tlkit.load_backbone("mobilenet_0.25", 96)  # ImageNet weights
    random_base = tlkit.load_backbone("mobilenet_0.25", 96, weights=None)  # same architecture
    ```
    """
    spec = get_spec(name)
    image_size = spec.default_size if image_size is None else image_size
    check_image_size(spec, image_size)
    if weights is None:
        return spec.build(image_size)
    if (
        isinstance(weights, str)
        and weights.lower() in ("imagenet", "image_net", "pretrained")
        and weights != "imagenet"
    ):
        raise ValueError(f"Invalid value for argument `weights`. Received: weights={weights!r}. "
                         "Expected 'imagenet', None (random initialisation) or the path of a weight file.")  # fmt: skip
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(f"Invalid value for argument `weights`. Received: weights={weights!r}. "
                        "Expected 'imagenet', None (random initialisation) or the path of a weight file.")  # fmt: skip
    if weights != "imagenet":
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"Weight file {path} does not exist. Pass the path of a .h5/.weights.h5 file.")
        return _build_from_file(spec, image_size, path)
    local = find_weight_file(spec, image_size)
    if local is not None:
        return _build_from_file(spec, image_size, local)
    if get_profile().name == "offline":
        looked = ", ".join(str(d) for d in weight_dirs())
        if locate(required=False) is None:
            looked += f" (there is no assets folder: ${ASSETS_ENV} is not set and the cache {cache_dir()} is empty)"
        fetch = f" (`{FETCH_COMMAND} --only weights` fetches it into the assets folder)" if in_pack(spec) else ""
        raise AssetsError(
            f"No ImageNet weight file for {spec.name} at {image_size}px. Received: weights='imagenet', and no file "
            f"matching {spec.weight_glob!r} in {looked}. Expected the file in weights/ of the assets folder "
            f"(${ASSETS_ENV}, else the cache) or in $KERAS_HOME/models: the offline profile never downloads. "
            f"Put the file there{fetch}, or load it by path: load_backbone({spec.name!r}, {image_size}, "
            f"weights='/path/to/file.h5'). Backbones with offline weights: {', '.join(offline_backbones()) or 'none'}."
        )
    if in_pack(spec) and os.environ.get(MIRROR_ENV):  # a classroom mirror serves the pack's weights too
        fetched_part("weights")
        local = find_weight_file(spec, image_size)
        if local is not None:
            return _build_from_file(spec, image_size, local)
    by_path = (
        f"If you have the weight file, load it by path: load_backbone({spec.name!r}, {image_size}, "
        f"weights='/path/to/{spec.weight_glob.replace('*', str(image_size))}')."
    )
    require_network(f"ImageNet weights for {spec.name}", hint=by_path)
    try:
        return spec.build(image_size, weights="imagenet")
    except Exception as error:
        if "URL fetch failure" not in str(error):  # how keras.utils.get_file reports a failed download
            raise
        raise ConnectionError(f"Downloading ImageNet weights for {spec.name} failed ({error}). {by_path}") from error


def _build_from_file(spec: BackboneSpec, image_size: int, path: Path) -> keras.Model:
    model = spec.build(image_size)
    try:
        model.load_weights(str(path))
    except (ValueError, KeyError, OSError) as error:
        raise ValueError(
            f"The weight file {path} does not fit {spec.name}: {error}. "
            f"Pass the no-top file made for this architecture ({spec.weight_glob})."
        ) from error
    return model


def offline_backbones() -> list[str]:
    """Registry names whose ImageNet weights are on this machine."""
    return [name for name, spec in BACKBONES.items() if find_weight_file(spec, spec.default_size)]


def block_ends(base: keras.Model, name: str | BackboneSpec | None = None) -> list[str]:
    """The names of the layers that end each block of `base`, first to last.

    `name` is the registry name of the backbone; by default the base's own (`backbone_of`).

    Args:
        base: a base from `tlkit.load_backbone`.
        name: the backbone's registry name (default: read from the base).

    Returns:
        Layer names, one per block, in order: where a network can be cut, and the
        boundaries `unfreeze_top` counts blocks by.

    Example:

    ```python
    ends = tlkit.block_ends(base)  # one layer name per block (13 for MobileNet)
    trunk = tlkit.cut(base, ends[7])
    ```
    """
    spec = get_spec(resolve_backbone(base, name, "name"))
    ends = list(spec.blocks)
    last = base.layers[-1].name
    if ends[-1] != last:
        ends.append(last)
    return ends


class BackbonePreprocessing(keras.layers.Layer):
    """Applies a backbone's own `preprocess_input` inside the model.

    Keeping it in the model means the model takes plain 0-255 RGB images everywhere:
    in training, in evaluation and after `keras.models.load_model`.

    Args:
        backbone: the registry name whose `preprocess_input` is applied (e.g.
            `"mobilenet_0.25"`: pixels to [-1, 1]).
        **kwargs: passed to `keras.layers.Layer`.

    Example:

    ```python
    inputs = keras.Input((96, 96, 3))  # 0-255 images
    x = tlkit.BackbonePreprocessing("mobilenet_0.25")(inputs)
    features = base(x, training=False)
    ```
    """

    def __init__(self, backbone: str, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone
        self._preprocess = get_spec(backbone).preprocess

    def call(self, images):
        # `preprocess_input` works in place (`x /= 127.5`): on the PyTorch backend that would change the caller's
        # tensor, so that the next call preprocesses it twice. It gets a copy.
        return self._preprocess(keras.ops.copy(keras.ops.cast(images, self.compute_dtype)))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "backbone": self.backbone}


keras.saving.register_keras_serializable(package="tlkit")(BackbonePreprocessing)


def takes_raw_pixels(model: keras.Model) -> bool:
    """Whether `model` preprocesses its own input (it holds a `BackbonePreprocessing` layer): it takes 0-255 RGB."""
    return any(isinstance(layer, BackbonePreprocessing) for layer in nested_layers(model))
