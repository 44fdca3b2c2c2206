"""Shared fixtures: the offline profile, the offline assets, tiny backbones and image folders.

The tests run in the offline profile. `TLKIT_ASSETS` is read from the environment and
defaults to `../shared/data` beside the repository; tests that need the assets skip, with
the reason, when they are absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

# Set before tlkit (and so Keras) is imported by any test module.
os.environ["TLKIT_PROFILE"] = "offline"
if not os.environ.get("TLKIT_ASSETS") and (REPO.parent / "shared" / "data").is_dir():
    os.environ["TLKIT_ASSETS"] = str(REPO.parent / "shared" / "data")

import matplotlib

matplotlib.use("Agg")

import keras

import tlkit


@pytest.fixture(autouse=True)
def _offline_and_seeded(monkeypatch, tmp_path_factory):
    """Every test: offline profile, float32 policy, seed 0, an empty asset cache."""
    monkeypatch.setenv("TLKIT_PROFILE", "offline")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))  # no test reads ~/.cache/tlkit
    keras.mixed_precision.set_global_policy("float32")
    keras.utils.set_random_seed(0)
    yield


def _assets() -> Path | None:
    value = os.environ.get("TLKIT_ASSETS")
    return Path(value) if value and Path(value).is_dir() else None


@pytest.fixture(scope="session")
def assets() -> Path:
    """The offline assets folder (`weights/`, `datasets/`); skips when it is absent."""
    path = _assets()
    if path is None:
        pytest.skip("offline assets absent: set TLKIT_ASSETS to a folder laid out like ../shared/data")
    return path


@pytest.fixture(scope="session")
def weight_file(assets) -> Path:
    """The MobileNet alpha=0.25 no-top ImageNet weight file from the assets."""
    files = sorted((assets / "weights").glob("mobilenet_2_5_*_tf_no_top.h5"))
    if not files:
        pytest.skip(f"no MobileNet 0.25 weight file in {assets / 'weights'}")
    return files[0]


@pytest.fixture(scope="session")
def caltech(assets) -> Path:
    folder = assets / "datasets" / "caltech101"
    if not folder.is_dir():
        pytest.skip(f"Caltech-101 absent from {assets / 'datasets'}")
    return folder


@pytest.fixture(scope="session")
def fashion_mnist(assets) -> Path:
    folder = assets / "datasets" / "fashion-mnist"
    if not (folder / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"Fashion-MNIST IDX files absent from {folder}")
    return folder


@pytest.fixture
def tiny_base():
    """A randomly initialised MobileNet alpha=0.25 base at 32x32: builds in a fraction of a second."""
    return tlkit.load_backbone("mobilenet_0.25", 32, weights=None)


@pytest.fixture
def live_base(tiny_base):
    """`tiny_base` with He-normal kernels, so its activations and gradients do not vanish.

    With Keras's default (Glorot) initialisation the signal shrinks about twofold per layer,
    and after MobileNet's 27 convolutions the features are ~1e-17: the gradients of the base
    are too small for one Adam step to change a float32 weight.
    """
    rng = np.random.default_rng(0)
    for layer in tiny_base.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
            kernel = layer.kernel
            depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
            fan_in = int(np.prod(kernel.shape[:2])) * (1 if depthwise else kernel.shape[2])
            kernel.assign(rng.normal(0, np.sqrt(2 / fan_in), kernel.shape).astype("float32"))
    return tiny_base


@pytest.fixture
def random_images():
    def make(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
        return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)

    return make


def write_image_folder(root: Path, counts: dict[str, int], seed: int = 0) -> Path:
    """Writes `root/<class>/<i>.png|jpg` with distinct random content, in varied sizes and modes.

    Also writes the clutter a real download has: top-level files (SHA256SUMS, README.md)
    and a non-image file inside a class folder.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "SHA256SUMS").write_text("0" * 64 + "  a/0.png\n")
    (root / "README.md").write_text("generated test images\n")
    for name, n in counts.items():
        folder = root / name
        folder.mkdir()
        (folder / "notes.txt").write_text("not an image\n")
        for i in range(n):
            h, w = int(rng.integers(20, 60)), int(rng.integers(20, 60))
            if i % 3 == 2:  # grayscale
                Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8), "L").save(folder / f"{i}.png")
            elif i % 3 == 1:
                Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"{i}.jpg", quality=90)
            else:
                Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return root


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """Three classes (a: 12, b: 10, c: 9 images) of PNG/JPEG files, RGB and grayscale."""
    return write_image_folder(tmp_path / "images", {"a": 12, "b": 10, "c": 9})
