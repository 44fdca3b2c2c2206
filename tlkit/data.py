"""One loader for image folders, Fashion-MNIST files, tfds names and NumPy arrays.

Loading happens in two steps. First an *index* is read: one cheap entry per image (a file
path, encoded bytes or a small raw array) and its label. The seeded per-class split is made
on that index, and only the chosen images are then decoded and resized, once, into uint8
arrays. `to_tf` turns such an array set into a shuffled, batched, prefetched `tf.data`
pipeline; Keras's `fit` also takes the arrays directly (as on the JAX backend).
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import os
import urllib.parse
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from tlkit.assets import MIRROR_ENV, SOURCES, AssetsError, dataset_path, locate_part
from tlkit.augment import augmented
from tlkit.checks import check_image_values, check_labels, remember_pipeline
from tlkit.errors import check_int, invalid, suggest
from tlkit.network import OFFLINE_HINT, probe_url, require_network, require_urls
from tlkit.profiles import get_profile

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")

# The datasets the asset pack holds: the name `load_dataset` takes, and the pack's folder (datasets/<folder>).
# Both profiles read these files: the offline profile from $TLKIT_ASSETS (else the cache), the full profile
# fetched once into the cache from their original sources (or $TLKIT_ASSETS_MIRROR), hash-checked.
LOCAL_DATASETS = {"caltech101": "caltech101", "fashion_mnist": "fashion-mnist", "eurosat": "eurosat"}


@dataclasses.dataclass
class ImageSet:
    """Images as uint8 arrays `(n, size, size, 3)` with int32 labels and the class names."""

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_counts(self) -> np.ndarray:
        """How many images each class has, in class order."""
        return np.bincount(self.labels, minlength=self.num_classes)


@dataclasses.dataclass
class Splits:
    """Train, validation and test sets that share one list of class names."""

    train: ImageSet
    val: ImageSet
    test: ImageSet
    skipped: int = 0

    @property
    def class_names(self) -> list[str]:
        return self.train.class_names

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_tf(self, batch_size: int = 32, augment=None, seed: int = 0):
        """`(train, val, test)` as batched, prefetched `tf.data` pipelines (train shuffled, augmented)."""
        return (
            to_tf(self.train, batch_size, shuffle=True, augment=augment, seed=seed),
            to_tf(self.val, batch_size),
            to_tf(self.test, batch_size),
        )

    def __repr__(self) -> str:
        size = self.train.images.shape[1]
        return (
            f"Splits({self.num_classes} classes, {size}x{size} px: train {len(self.train)}, "
            f"val {len(self.val)}, test {len(self.test)}"
            + (f", {self.skipped} unreadable images skipped" if self.skipped else "")
            + ")"
        )


@dataclasses.dataclass
class _Index:
    """One entry per image, not yet decoded: paths, encoded bytes or raw arrays."""

    items: Sequence
    labels: np.ndarray
    class_names: list[str]


# ---------------------------------------------------------------------------- indexes


def index_image_folder(root: str | os.PathLike, classes: Sequence[str] | int | None = None) -> _Index:
    """Indexes `root/<class>/<image>` (the Caltech-101 and `image_dataset_from_directory` layout).

    `classes` picks class folders by name, or the `classes` largest ones by an int.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Image folder {root} does not exist. Pass a folder with one sub-folder per class.")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise ValueError(f"{root} has no class sub-folders. Lay the images out as {root}/<class name>/<image>.jpg.")
    files = {p.name: sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS) for p in folders}
    names = _choose_classes(files, classes, where=str(root))
    empty = [n for n in names if not files[n]]
    if empty:
        raise ValueError(
            f"Class folder(s) with no images in {root}: {', '.join(empty)}. "
            f"Add images ({', '.join(IMAGE_EXTENSIONS)}) or remove the folder(s)."
        )
    items = [f for n in names for f in files[n]]
    labels = np.concatenate([np.full(len(files[n]), i, np.int32) for i, n in enumerate(names)])
    return _Index(items, labels, names)


def _choose_classes(members: dict[str, Sequence], classes, where: str) -> list[str]:
    known = sorted(members)
    if len(known) < 2:
        raise ValueError(
            f"A classifier needs at least 2 classes; {where} has {len(known)}: {known}. Expected one folder of "
            "images per class (root/<class>/<image>): point `source` at the folder above the class folders."
        )
    if classes is None:
        return known
    if isinstance(classes, int):
        if not 2 <= classes <= len(known):
            raise ValueError(f"classes={classes} but {where} has {len(known)} classes; ask for 2 to {len(known)}.")
        largest = sorted(known, key=lambda n: (-len(members[n]), n))[:classes]
        return sorted(largest)
    # Match names case-insensitively: Caltech-101's folders say "Leopards", its tfds labels "leopards".
    by_lower = {k.lower(): k for k in known}
    classes = [c if c in members else by_lower.get(str(c).lower(), c) for c in classes]
    unknown = [c for c in classes if c not in members]
    if unknown:
        hint = suggest(unknown[0], known)
        raise ValueError(f"Unknown class(es) {unknown} in {where}.{hint} Known classes: {', '.join(known)}.")
    repeated = sorted({c for c in classes if classes.count(c) > 1})
    if repeated:
        raise ValueError(
            f"Invalid value for argument `classes`. Received: classes={list(classes)!r}, which names {repeated} "
            "more than once (names match case-insensitively). Expected each class once."
        )
    if len(set(classes)) < 2:
        raise ValueError(f"A classifier needs at least 2 classes; got {list(classes)}.")
    return list(classes)


FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads one (optionally gzipped) IDX file, the format of MNIST and Fashion-MNIST."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes.")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def index_fashion_mnist(folder: str | os.PathLike | None = None) -> _Index:
    """Indexes all 70,000 Fashion-MNIST images (train files first, then t10k)."""
    folder = Path(folder) if folder is not None else local_dataset_dir("fashion_mnist")
    parts = [
        (read_idx(folder / f"{p}-images-idx3-ubyte.gz"), read_idx(folder / f"{p}-labels-idx1-ubyte.gz"))
        for p in ("train", "t10k")
    ]
    images = np.concatenate([x for x, _ in parts])
    labels = np.concatenate([y for _, y in parts])
    return _Index(images, labels.astype(np.int32), list(FASHION_MNIST_CLASSES))


def tfds_download_urls(builder) -> list[str]:
    """One URL per host that `builder.download_and_prepare()` downloads from.

    These are the URLs the dataset pins with their checksums (`builder.url_infos`), and tfds's
    own store of prepared datasets on storage.googleapis.com, which tfds asks first.

    Args:
        builder: a `tfds.core.DatasetBuilder`.

    Returns:
        URLs, the first of each host.

    Example:

    ```python
    tfds_download_urls(tfds.builder("tf_flowers"))
    # ['http://download.tensorflow.org/example_images/flower_photos.tgz', 'https://storage.googleapis.com/...']
    ```
    """
    try:
        pinned = sorted(builder.url_infos or ())  # None for a dataset that pins no checksums
    except (AttributeError, OSError, ValueError):  # a builder without its code (read from files) pins none
        pinned = []
    by_host: dict[str, str] = {}
    for url in [*pinned, probe_url("storage.googleapis.com")]:
        by_host.setdefault(urllib.parse.urlsplit(url).netloc, url)
    return list(by_host.values())


def index_tfds(name: str, split: str = "all", data_dir: str | None = None) -> _Index:
    """Indexes a TensorFlow Datasets image classification dataset, without decoding its images.

    A prepared dataset (in `data_dir`, default `~/tensorflow_datasets`) is read with no network.
    Otherwise every host the dataset downloads from (`tfds_download_urls`) must answer one HTTP
    request within seconds before `download_and_prepare` starts: tfds itself retries an unreachable
    host for minutes.
    """
    import tensorflow_datasets as tfds  # imported when used: it loads TensorFlow

    if tfds.core.naming.parse_builder_name_kwargs(name)[0].namespace:  # huggingface:, kaggle: are online
        require_network(f"the tfds dataset {name!r}")
    try:
        builder = tfds.builder(name, data_dir=data_dir)  # tfds 4.9 reads no network here
    except tfds.core.registered.DatasetNotFoundError:
        known = tfds.list_builders(with_community_datasets=False)
        raise ValueError(
            f"No tfds dataset named {name!r}.{suggest(name, known)} See https://www.tensorflow.org/datasets/catalog, "
            "or pass an image folder (root/<class>/<image>)."
        ) from None
    if not builder.is_prepared():
        base = name.split("/")[0].split(":")[-1]
        pack = (
            f"tlkit's asset pack has its own copy of {base}, from its original source and hash-checked: "
            f"tlkit.load_dataset({base!r})."
            if base in LOCAL_DATASETS
            else ""
        )
        require_urls(f"the tfds dataset {name!r}", tfds_download_urls(builder), hint=pack)
        try:
            builder.download_and_prepare()
        except Exception as error:
            raise RuntimeError(
                f"Downloading the tfds dataset {name!r} failed: {str(error).strip()[:300]}. Retry later, or download "
                f"it once elsewhere and pass data_dir; or use a local image folder. {pack + ' ' if pack else ''}"
                f"{OFFLINE_HINT}"
            ) from error
    features = builder.info.features
    image_key = next(k for k, f in features.items() if isinstance(f, tfds.features.Image))
    label_key = next(k for k, f in features.items() if isinstance(f, tfds.features.ClassLabel))
    ds = builder.as_dataset(split=split, decoders={image_key: tfds.decode.SkipDecoding()})
    items, labels = [], []
    for example in tfds.as_numpy(ds):
        items.append(example[image_key])
        labels.append(example[label_key])
    return _Index(items, np.asarray(labels, np.int32), list(features[label_key].names))


def fetched_part(part: str) -> Path:
    """The full profile's folder of one part of the asset pack (`caltech101`, `embeddings`, ...).

    The local copy when it is complete (`$TLKIT_ASSETS`, else the cache, which may hold other
    parts only: each part is fetched when first needed), else fetched once into the cache and
    hash-checked: from the mirror `$TLKIT_ASSETS_MIRROR` when that is set, else from the part's
    public source. One HTTP request to that host comes first, so with no network (or a mirror
    that is down) it fails within seconds, naming the offline route.

    Args:
        part: a part of the pack: `caltech101`, `fashion-mnist` (or `fashion_mnist`), `eurosat`,
            `sentiment-labelled-sentences`, `embeddings`, `weights`.

    Returns:
        The part's folder, e.g. `<cache>/datasets/caltech101`.

    Raises:
        ValueError: `part` is not a part of the pack.
        ConnectionError: the part is absent and its source (or the mirror) cannot be reached.
        tlkit.assets.AssetsError: `$TLKIT_ASSETS` is not a folder, or fetching the part fails.
    """
    name = part.replace("_", "-")
    if name not in SOURCES:
        raise ValueError(
            f"Invalid value for argument `part`. Received: part={part!r}. Expected one of: {', '.join(SOURCES)}."
        )
    try:
        return dataset_path(name, download=False)
    except AssetsError:
        pass
    mirror = os.environ.get(MIRROR_ENV)
    if mirror:
        hint = f"${MIRROR_ENV} is {mirror}: start the mirror, or unset {MIRROR_ENV} to fetch from the public sources."
        require_urls(f"the {part} files from the mirror", [mirror], hint=hint)
    else:
        require_urls(f"the {part} files", [SOURCES[name][0].url])
    return dataset_path(name)


def local_dataset_dir(name: str) -> Path:
    """The folder of the pack's dataset `name` (a key of `LOCAL_DATASETS`, e.g. `"caltech101"`).

    The offline profile reads it from the assets folder and never downloads
    (`tlkit.assets.locate_part`); the full profile's is local if complete, else fetched once
    (`fetched_part`).

    Raises:
        tlkit.assets.AssetsError: (offline profile) there is no assets folder, or it lacks
            `datasets/<folder>`; the message names the path and the fix.
    """
    if get_profile().name == "full":  # the offline profile's files: local if complete, else fetched once
        return fetched_part(LOCAL_DATASETS[name])
    return locate_part(f"datasets/{LOCAL_DATASETS[name]}")


def index_source(source: str | os.PathLike, classes=None) -> _Index:
    """Indexes `source`: an image folder, `"fashion_mnist"`, `"caltech101"`, `"eurosat"`, or a tfds name."""
    is_tfds = isinstance(source, str) and source.startswith("tfds:")  # e.g. "tfds:eurosat/rgb" (a config name)
    if not is_tfds and (isinstance(source, os.PathLike) or (isinstance(source, str) and os.sep in source)):
        return index_image_folder(source, classes)
    if source == "fashion_mnist":
        index = index_fashion_mnist()
    elif source in ("caltech101", "eurosat"):
        return index_image_folder(local_dataset_dir(source), classes)
    elif get_profile().name == "offline":
        raise ValueError(
            f"{source!r} is neither a folder nor a dataset with an offline copy ({', '.join(LOCAL_DATASETS)}). "
            "The offline profile does not download: pass an image folder, or use TLKIT_PROFILE=full."
        )
    else:
        index = index_tfds(source.removeprefix("tfds:"))
    if classes is None:
        return index
    members = {n: np.flatnonzero(index.labels == i) for i, n in enumerate(index.class_names)}
    names = _choose_classes(members, classes, where=str(source))
    keep = np.concatenate([members[n] for n in names])
    relabel = np.concatenate([np.full(len(members[n]), i, np.int32) for i, n in enumerate(names)])
    items = index.items[keep] if isinstance(index.items, np.ndarray) else [index.items[i] for i in keep]
    return _Index(items, relabel, names)


# ---------------------------------------------------------------------------- decoding


def to_rgb_array(image: Image.Image, image_size: int) -> np.ndarray:
    """Converts one PIL image to an RGB uint8 array of `image_size` x `image_size`."""
    if image.format == "JPEG":
        image.draft("RGB", (image_size, image_size))  # decode at a reduced scale: much faster
    if image.mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    image = image.convert("RGB").resize((image_size, image_size), Image.BILINEAR)
    return np.asarray(image, np.uint8)


def _decode(item, image_size: int) -> np.ndarray | None:
    try:
        if isinstance(item, np.ndarray):
            image = Image.fromarray(item.squeeze() if item.ndim == 3 and item.shape[-1] == 1 else item)
        elif isinstance(item, bytes):
            image = Image.open(io.BytesIO(item))
        else:
            image = Image.open(item)
        with image:
            return to_rgb_array(image, image_size)
    except (OSError, ValueError, SyntaxError):
        return None


def decode_images(items: Sequence, image_size: int, workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Decodes and resizes `items` in parallel; returns the images and the mask of readable ones."""
    workers = workers or min(8, (os.cpu_count() or 1) + 2)
    with ThreadPoolExecutor(workers) as pool:
        decoded = list(pool.map(lambda item: _decode(item, image_size), items, chunksize=32))
    ok = np.array([d is not None for d in decoded], bool)
    images = (
        np.stack([d for d in decoded if d is not None])
        if ok.any()
        else np.zeros((0, image_size, image_size, 3), np.uint8)
    )
    return images, ok


def _area_weights(old: int, new: int) -> np.ndarray:
    """`new` x `old` weights: each new pixel's share of every old one it covers (rows sum to 1)."""
    scale = old / new
    starts = np.arange(new)[:, None] * scale
    first = np.arange(old)[None, :]
    overlap = np.minimum(starts + scale, first + 1) - np.maximum(starts, first)
    return np.clip(overlap, 0, None) / scale


def resize_area(images: np.ndarray, image_size: int) -> np.ndarray:
    """Resizes a batch of images by area averaging, in NumPy: the same on every Keras backend.

    Each new pixel is the mean of the old pixels it covers, weighted by how much of each it covers:
    what `keras.ops.image.resize(images, size, interpolation="area")` computes on TensorFlow, the one
    backend that offers it. Like Keras, it returns the input's dtype, integer images rounded to the
    nearest value (ties to even). An integer factor (128 to 64 px) averages 2x2 blocks exactly.

    Args:
        images: a batch `(n, height, width, channels)`, any numeric dtype.
        image_size: the square size to resize to.

    Returns:
        `(n, image_size, image_size, channels)` images of the input's dtype.

    Example:

    ```python
    half = tlkit.data.resize_area(splits.train.images, 64)  # 128 px uint8 -> 64 px uint8
    ```
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise invalid("images", f"an array of shape {images.shape}", "a batch (n, height, width, channels)")
    check_int("image_size", image_size, 1)
    n, height, width, channels = images.shape
    if height % image_size == 0 and width % image_size == 0:  # whole blocks: their plain mean
        block = (height // image_size, width // image_size)
        blocks = images.reshape(n, image_size, block[0], image_size, block[1], channels)
        resized = blocks.mean(axis=(2, 4), dtype=np.float64)
    else:  # rows, then columns, each weighted by the share of every old pixel a new one covers
        rows = np.matmul(_area_weights(height, image_size), images.reshape(n, height, -1).astype(np.float64))
        resized = np.matmul(_area_weights(width, image_size), rows.reshape(n, image_size, width, channels))
    if np.issubdtype(images.dtype, np.integer):
        limits = np.iinfo(images.dtype)
        resized = np.clip(np.rint(resized), limits.min, limits.max)
    return resized.astype(images.dtype)


# ---------------------------------------------------------------------------- splitting


def _per_class_counts(n: int, amount: int | float | None, role: str) -> int:
    if amount is None:
        return 0
    if isinstance(amount, bool) or not isinstance(amount, (int, float, np.integer, np.floating)):
        raise TypeError(f"{role}={amount!r}: give a count (int) or a fraction (float) in [0, 1).")
    if isinstance(amount, (float, np.floating)):
        if not 0 <= amount < 1:
            raise ValueError(f"{role}={amount}: a fraction must be in [0, 1).")
        return int(round(n * amount))
    if amount < 0:
        raise ValueError(f"{role}={amount}: give a count of 0 or more, or a fraction in [0, 1).")
    return int(amount)


def shuffled_by_class(labels: np.ndarray, classes: Sequence[int], seed: int) -> Iterator[np.ndarray]:
    """The positions of each class's images in a seeded random order, one class after the other.

    Every seeded per-class draw of the package (the splits, `sample_per_class`) shuffles this way.
    A generator: the shuffles are drawn as the classes are reached.
    """
    rng = np.random.default_rng(seed)
    for c in classes:
        yield rng.permutation(np.flatnonzero(labels == c))


def sample_per_class(labels: np.ndarray, per_class: int, seed: int = 0, allow_fewer: bool = False) -> np.ndarray:
    """Positions of `per_class` images of each class, drawn at random with `seed`.

    The draws are nested: with the same seed, a smaller `per_class` gives a subset of a larger
    one (the first images of each class's shuffled order), so a learning curve compares sizes
    on the same images.

    Args:
        labels: the class of each image.
        per_class: how many images of each class to keep.
        seed: fixes the draw.
        allow_fewer: keep every image of a class with fewer than `per_class` (instead of raising).

    Returns:
        The sorted positions of the kept images.

    Example:

    ```python
    keep = tlkit.sample_per_class(splits.train.labels, 20, seed=0)
    small = tlkit.from_arrays(splits.train.images[keep], splits.train.labels[keep])
    ```
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0:
        raise invalid("labels", f"an array of shape {labels.shape}", "one class index per image, at least one")
    classes, counts = np.unique(labels, return_counts=True)
    check_int("per_class", per_class, 1)
    if not allow_fewer and per_class > counts.min():
        raise ValueError(
            f"Invalid value for argument `per_class`. Received: per_class={per_class}, but the smallest class has "
            f"{counts.min()} images. Expected 1 to {counts.min()}: ask for fewer per class, load more images per "
            "class, or pass allow_fewer=True to keep all of a smaller class."
        )
    check_int("seed", seed)
    picks = [members[:per_class] for members in shuffled_by_class(labels, classes, seed)]
    return np.sort(np.concatenate(picks))


def split_index(
    labels: np.ndarray,
    class_names: Sequence[str],
    images_per_class: int | None,
    val_per_class: int | float,
    test_per_class: int | float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded per-class split of an index into train, val and test positions.

    The test images are drawn first, so the test set does not change when only
    `images_per_class` changes: learning curves compare like with like.
    """
    train, val, test = [], [], []
    for name, members in zip(class_names, shuffled_by_class(labels, range(len(class_names)), seed)):
        n_test = _per_class_counts(len(members), test_per_class, "test_per_class")
        n_val = _per_class_counts(len(members), val_per_class, "val_per_class")
        left = len(members) - n_test - n_val
        n_train = left if images_per_class is None else images_per_class
        if n_train < 1 or n_train > left:
            smallest = min((int((labels == k).sum()), n) for k, n in enumerate(class_names))
            raise ValueError(
                f"Class {name!r} has {len(members)} images: {n_test} test + {n_val} val leaves {left} for "
                f"training, but images_per_class={images_per_class}. The smallest class here is "
                f"{smallest[1]!r} with {smallest[0]}; lower images_per_class, val_per_class or test_per_class, "
                "or choose other classes."
            )
        test.append(members[:n_test])
        val.append(members[n_test : n_test + n_val])
        train.append(members[n_test + n_val : n_test + n_val + n_train])
    return tuple(np.sort(np.concatenate(part)).astype(np.int64) for part in (train, val, test))


def available_memory() -> int | None:
    """Bytes of memory available now (Linux's MemAvailable), else the machine's total, else None."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def check_fits_in_memory(num_images: int, image_size: int) -> None:
    """Raises before decoding if `num_images` RGB uint8 images of `image_size` px exceed the available memory.

    Args:
        num_images: how many images will be held at once.
        image_size: their side, in pixels.

    Example:

    ```python
    check_fits_in_memory(1_000, 96)  # 28 MB: passes
    check_fits_in_memory(9_144, 4_000)  # 439 GB: ValueError naming image_size
    ```
    """
    needed, free = num_images * image_size * image_size * 3, available_memory()
    if free is not None and needed > free:
        raise ValueError(
            f"Invalid value for argument `image_size`. Received: image_size={image_size}. Expected a size whose "
            f"images fit in memory: {num_images:,} images of {image_size} x {image_size} x 3 bytes need "
            f"{needed / 1e9:.1f} GB, and {free / 1e9:.1f} GB are available. Lower image_size or images_per_class "
            "(224 px is what ImageNet backbones were trained on)."
        )


def load_dataset(
    source: str | os.PathLike,
    image_size: int | None = None,
    classes: Sequence[str] | int | None = None,
    images_per_class: int | None = None,
    val_per_class: int | float = 0.1,
    test_per_class: int | float = 0.2,
    seed: int = 0,
) -> Splits:
    """Loads `source` into seeded train/val/test splits of RGB uint8 images.

    Args:
        source: an image folder (`root/<class>/<image>`); `"caltech101"`, `"eurosat"` or
            `"fashion_mnist"` (the asset pack's copies: from `$TLKIT_ASSETS` in the offline profile,
            fetched once into the cache from their original sources, or `$TLKIT_ASSETS_MIRROR`, in the
            full profile); or `"tfds:<name>"`, a TensorFlow Datasets dataset (full profile only).
        image_size: square size the images are resized to (default: the profile's).
        classes: class names to keep, or an int for that many of the largest classes.
        images_per_class: training images per class (default: all that are left).
        val_per_class, test_per_class: per class, a count (int) or a fraction (float).
        seed: fixes which images land in which split.

    Returns:
        `Splits` with `train`, `val` and `test` `ImageSet`s (uint8 images, integer labels) and
        `class_names`.

    Raises:
        ValueError: before any image is decoded, for unknown or repeated classes, a folder
            with one class, counts that do not fit the classes, or images that cannot fit in
            memory.

    Example:

    ```python
    splits = tlkit.load_dataset("caltech101", 96, classes=["airplanes", "watch"],
                                images_per_class=20, test_per_class=30)
    print(splits)  # the classes and the size of each split
    ```
    """
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            f"Invalid value for argument `source`. Received: source={source!r}. Expected a folder path, "
            "'caltech101', 'fashion_mnist' or 'tfds:<name>'. For arrays use tlkit.from_arrays(images, labels)."
        )
    if image_size is None:
        image_size = get_profile().image_size
    check_int("image_size", image_size, 1)
    if images_per_class is not None:
        check_int("images_per_class", images_per_class, 1, fix="Pass None for every image of each class.")
    check_int("seed", seed, 0)
    if isinstance(classes, bool):
        raise TypeError(
            f"Invalid value for argument `classes`. Received: classes={classes!r}. "
            "Expected class names, or an int for that many of the largest classes."
        )
    for role, amount in (("val_per_class", val_per_class), ("test_per_class", test_per_class)):
        _per_class_counts(1, amount, role)  # checked before any image is read
    index = index_source(source, classes)
    positions = split_index(index.labels, index.class_names, images_per_class, val_per_class, test_per_class, seed)
    check_fits_in_memory(sum(len(where) for where in positions), image_size)
    parts, skipped = [], 0
    for where in positions:
        images, ok = decode_images([index.items[i] for i in where], image_size)
        skipped += int((~ok).sum())
        parts.append(ImageSet(images, index.labels[where][ok], list(index.class_names)))
    if skipped:
        warnings.warn(f"Skipped {skipped} unreadable or corrupt image file(s) in {source}.", stacklevel=2)
    empty = [n for n, count in zip(index.class_names, parts[0].class_counts()) if count == 0]
    if empty:
        raise ValueError(
            f"No readable training image left for class(es) {', '.join(empty)} in {source} "
            f"({skipped} unreadable file(s) skipped). Replace the broken files or leave the class out."
        )
    return Splits(*parts, skipped=skipped)


def from_arrays(images: np.ndarray, labels: np.ndarray, class_names: Sequence[str] | None = None) -> ImageSet:
    """Wraps NumPy images `(n, h, w[, c])` and integer labels as an `ImageSet`, checked.

    Grayscale (no channel axis, or 1 channel) is repeated to RGB; a 4th (alpha) channel is
    dropped with a warning. Values must be 0-255; floats that all lie in [0, 1] (the other
    common way to hold images) are scaled to 0-255, with a warning. Negative values, values
    above 255, NaN and infinity are refused: they would be clipped into garbage.

    Args:
        images: `(n, height, width)`, `(n, height, width, 1)`, `(n, height, width, 3)` or
            `(n, height, width, 4)` pixels, 0-255 (or floats in 0-1).
        labels: one integer class index per image, 0 to `num_classes - 1`.
        class_names: a name per class; default `"0"`, `"1"`, ...

    Returns:
        An `ImageSet` of uint8 RGB images and int32 labels.

    Example:

    ```python
    (x, y), _ = keras.datasets.mnist.load_data()
    digits = tlkit.from_arrays(x[:500], y[:500])  # grayscale repeated to RGB
    ```
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(
            f"Invalid value for argument `images`. Received: an array of shape {images.shape}. "
            "Expected shape (n, height, width[, channels])."
        )
    if len(images) == 0:
        raise ValueError("Invalid value for argument `images`. Received: 0 images. Expected at least 2.")
    channels = images.shape[-1]
    if channels == 1:
        images = np.repeat(images, 3, axis=-1)
    elif channels == 4:
        warnings.warn("Images have 4 channels (RGBA): the alpha channel is dropped.", stacklevel=2)
        images = images[..., :3]
    elif channels != 3:
        raise ValueError(
            f"Images have {channels} channels; ImageNet backbones take 3 (RGB). "
            "Convert them to RGB (grayscale with 1 channel is converted for you)."
        )
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels: pass one label per image.")
    if labels.ndim != 1 or labels.dtype == bool or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            "Labels must be a 1-D array of integer class indices (not one-hot, not strings). Received: labels of "
            f"shape {labels.shape} and dtype {labels.dtype}. For one-hot labels pass labels.argmax(-1); for names, "
            "np.unique(names, return_inverse=True)."
        )
    if class_names is not None and (
        isinstance(class_names, str) or len(set(map(str, class_names))) != len(class_names)
    ):
        raise ValueError(
            f"Invalid value for argument `class_names`. Received: class_names={class_names!r}. "
            "Expected a list of distinct names, one per class."
        )
    num_classes = len(class_names) if class_names is not None else max(int(labels.max()) + 1, 1)
    fix = "Pass class_names for every class, or fix the labels."
    check_labels(labels, num_classes, "input", complete=True, name="the set", classes=f"{num_classes} classes", fix=fix)
    check_image_values(images, "input", floats_0_1="ignore")
    if all(np.array_equal(image, images[0]) for image in images[1:]):  # stops at the first that differs
        raise ValueError(
            f"Invalid value for argument `images`. Received: {len(images)} copies of one image. Expected images that "
            "differ: a model can learn nothing from them (a blank or repeated file, or an index that never moves?)."
        )
    if np.issubdtype(images.dtype, np.floating) and 0 < images.max() <= 1:
        warnings.warn(
            f"The images are floats from {float(images.min()):g} to {float(images.max()):g}: read as 0-1 images "
            "and scaled to 0-255. Pass uint8 or 0-255 values to silence this.",
            stacklevel=2,
        )
        images = images * 255.0
    elif np.issubdtype(images.dtype, np.integer) and images.max() == 1:
        warnings.warn(
            f"The images only hold the values {int(images.min())}..{int(images.max())}: they will look black. "
            "If they are binary masks or 0-1 images, multiply them by 255.",
            stacklevel=2,
        )
    names = list(map(str, class_names)) if class_names is not None else [str(i) for i in range(num_classes)]
    pixels = images if images.dtype == np.uint8 else np.rint(images).astype(np.uint8)
    return ImageSet(pixels, labels.astype(np.int32), names)


# ---------------------------------------------------------------------------- pipelines


def to_tf(data: ImageSet, batch_size: int = 32, shuffle: bool = False, augment=None, seed: int = 0):
    """A `tf.data` pipeline over decoded images: shuffle, batch, augment per batch, prefetch.

    The images are decoded and resized once, in memory, so nothing is re-read per epoch;
    augmentation runs after batching on the batch, so it never gets cached.

    Args:
        data: an `ImageSet` (e.g. `splits.train`).
        batch_size: images per batch.
        shuffle: reshuffle every epoch (for training).
        augment: a layer applied to each batch (e.g. `tlkit.augment.augmentation()`), or None.
        seed: fixes the shuffle order.

    Returns:
        A `tf.data.Dataset` of `(images, labels)` batches.

    Example:

    ```python
    train = tlkit.to_tf(splits.train, 32, shuffle=True)
    history = tlkit.fit(model, train, epochs=5)
    ```
    """
    import tensorflow as tf  # imported when used: `import tlkit.data` loads no backend

    if not isinstance(data, ImageSet):
        raise TypeError(
            f"Invalid value for argument `data`. Received: {type(data).__name__}. Expected an ImageSet "
            "(splits.train, or tlkit.from_arrays(images, labels)); for Splits use splits.to_tf(batch_size)."
        )
    check_int("batch_size", batch_size, 1)
    if augment is not None and not callable(augment):
        raise TypeError(
            f"Invalid value for argument `augment`. Received: augment={augment!r}. "
            "Expected a Keras layer such as tlkit.augment.augmentation(), or None."
        )
    ds = tf.data.Dataset.from_tensor_slices((data.images, data.labels))
    if shuffle:
        ds = ds.shuffle(len(data), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if augment is not None:
        ds = augmented(ds, augment, seed)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    remember_pipeline(ds, data.images, data.labels, batch_size)  # so that tlkit.fit checks every label before training
    return ds
