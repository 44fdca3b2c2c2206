"""Run profiles: `full` (GPU and internet) and `offline` (CPU, local assets).

A notebook reads its profile from the `TLKIT_PROFILE` environment variable, so the
test suite runs exactly the notebook a reader runs, only with smaller defaults.
"""

from __future__ import annotations

import dataclasses
import os
import random

import numpy as np

from tlkit.assets import FETCH_COMMAND
from tlkit.errors import check_int, suggest

# The assets folder's variable, `TLKIT_ASSETS`, is `tlkit.assets.ASSETS_ENV`, found by `tlkit.assets.locate`.
PROFILE_ENV = "TLKIT_PROFILE"
# `TLKIT_GPU_SETTINGS=1` applies what `setup` does on a GPU (mixed precision) on a CPU too:
# how `make rehearse` runs the full profile's GPU path on a machine without one.
GPU_SETTINGS_ENV = "TLKIT_GPU_SETTINGS"


@dataclasses.dataclass(frozen=True)
class Profile:
    """Defaults for one way of running the lessons."""

    name: str
    image_size: int
    batch_size: int
    mixed_precision: bool
    description: str


PROFILES = {
    "full": Profile(
        name="full",
        image_size=224,
        batch_size=64,
        mixed_precision=True,
        description="GPU if present (mixed precision; Keras adds XLA), the pack's data and downloaded weights",
    ),
    "offline": Profile(
        name="offline",
        image_size=128,
        batch_size=32,
        mixed_precision=False,
        description="CPU-sized defaults, data and weights from TLKIT_ASSETS",
    ),
}


# Minutes each lesson takes in the full profile: (on a Colab T4, on a 2-core CPU), estimated from benchmark D's
# images per second; README.md "Time and memory on a Colab GPU" shows how.
FULL_PROFILE_MINUTES: dict[str, tuple[float, float]] = {
    "00": (3, 3),
    "01": (4, 7),
    "02": (4, 5),
    "03": (6, 29),
    "04": (9, 45),
    "05": (8, 25),
    "06": (8, 120),
    "07": (4, 5),
    "08": (3, 3),  # its runs use the CPU (two faked devices) on any machine
}


def get_profile(name: str | None = None) -> Profile:
    """Returns the profile `name`, or the one named by `$TLKIT_PROFILE` (default `full`).

    Args:
        name: `"offline"` (CPU, the asset pack) or `"full"` (GPU, downloads); None reads
            `$TLKIT_PROFILE`.

    Returns:
        The `Profile`: its `name`, default `image_size`, `batch_size` and a `description`.

    Example:

    ```python
    profile = tlkit.get_profile()  # $TLKIT_PROFILE, else "full"
    print(profile.name, profile.image_size, profile.batch_size)
    ```
    """
    name = name or os.environ.get(PROFILE_ENV) or "full"
    if name not in PROFILES:
        raise ValueError(
            f"Unknown profile {name!r}.{suggest(name, PROFILES)} "
            f"Known profiles: {', '.join(PROFILES)}. Set {PROFILE_ENV}=offline or full."
        )
    return PROFILES[name]


def gpus() -> list:
    """The visible GPUs (empty on a CPU-only machine)."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.config.list_physical_devices("GPU")
    if keras.backend.backend() == "jax":
        import jax

        return [d for d in jax.devices() if d.platform == "gpu"]
    return []


def set_seed(seed: int) -> None:
    """Seeds Python, NumPy and Keras; on a CPU-only TensorFlow also makes ops deterministic.

    Two runs with the same seed then give the same metrics on the CPU. (On a GPU some
    kernels have no deterministic version, so determinism is not forced there.)

    Args:
        seed: any non-negative integer.

    Example:

    ```python
    tlkit.set_seed(0)
    model = tlkit.build_classifier(base, splits.num_classes)  # the same initial head every run
    ```
    """
    check_int("seed", seed, 0)
    import keras

    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow" and not gpus():
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def gpu_settings_forced() -> bool:
    """Whether `$TLKIT_GPU_SETTINGS` asks for the GPU settings on any device (`make rehearse`)."""
    return os.environ.get(GPU_SETTINGS_ENV, "") not in ("", "0")


def no_gpu_message(lesson: str | None = None) -> str:
    """One line: the full profile found no GPU, what that costs, and how to choose the offline profile."""
    cost = ""
    if lesson is not None and lesson[:2] in FULL_PROFILE_MINUTES:
        t4, cpu = FULL_PROFILE_MINUTES[lesson[:2]]
        cost = f", where lesson {lesson[:2]} takes about {cpu:.0f} minutes (about {t4:.0f} on a Colab T4)"
    return (
        f"No GPU found: the full profile runs on this CPU{cost}. For a few minutes on a CPU, use the offline "
        f"profile: {PROFILE_ENV}=offline (its assets: `{FETCH_COMMAND}`, once); on Colab, pick a GPU "
        "runtime (Runtime > Change runtime type)."
    )


def setup(profile: Profile | str | None = None, seed: int | None = 0, lesson: str | None = None) -> Profile:
    """Applies a profile: seeds, GPU memory growth, and mixed precision on a GPU.

    Call it once at the top of a notebook, before building models. In the full profile on a machine
    without a GPU it prints one line saying so, with the lesson's expected time there.

    Args:
        profile: a `Profile`, its name (`"full"`, `"offline"`), or `None` for `$TLKIT_PROFILE`.
        seed: seeds Python, NumPy and Keras (`set_seed`); `None` leaves them.
        lesson: the lesson's number (`"04"`), for the expected time in the no-GPU line.

    Returns:
        The profile applied.

    Example:

    ```python
    profile = tlkit.setup("full", seed=0, lesson="04")
    ```
    """
    import keras

    profile = profile if isinstance(profile, Profile) else get_profile(profile)
    found = gpus()
    if profile.name == "full" and not found and not gpu_settings_forced():
        print(no_gpu_message(lesson))
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        for gpu in found:
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError:  # already initialised: growth can only be set before first use
                pass
    if profile.mixed_precision and (found or gpu_settings_forced()):
        keras.mixed_precision.set_global_policy("mixed_float16")
    else:
        keras.mixed_precision.set_global_policy("float32")
    if seed is not None:
        set_seed(seed)
    return profile
