"""Bad input gets an error that names the problem and the fix, before any long work starts."""

import time
import warnings

import keras
import numpy as np
import pytest
from PIL import Image

import tlkit
from tlkit import backbones


@pytest.fixture(scope="module")
def base():
    """A random-init MobileNet alpha=0.25 at 32 px: builds in about a second."""
    return tlkit.load_backbone("mobilenet_0.25", 32, weights=None)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """The offline profile with empty asset and Keras folders (no weight file anywhere)."""
    (tmp_path / "weights").mkdir()
    monkeypatch.setenv("TLKIT_PROFILE", "offline")
    monkeypatch.setenv("TLKIT_ASSETS", str(tmp_path))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    return tmp_path


def write_images(folder, n, size=(40, 30), color=(200, 30, 30)):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", size, color).save(folder / f"img_{i}.jpg", quality=90)


# ---------------------------------------------------------------------------- names


def test_unknown_backbone_lists_known_and_suggests_closest():
    with pytest.raises(ValueError, match="Did you mean 'mobilenet_v2'") as info:
        tlkit.load_backbone("mobilenetv2", 96, weights=None)
    assert "Known backbones: mobilenet_0.25" in str(info.value)
    with pytest.raises(ValueError, match="Did you mean 'resnet50'"):
        tlkit.backbones.get_spec("ResNet-50")


def test_unknown_profile_suggests_closest(monkeypatch):
    with pytest.raises(ValueError, match="Did you mean 'offline'") as info:
        tlkit.setup("ofline")
    assert "Known profiles: full, offline" in str(info.value)
    monkeypatch.setenv("TLKIT_PROFILE", "cpu")
    with pytest.raises(ValueError, match="TLKIT_PROFILE=offline"):
        tlkit.get_profile()


def test_unknown_cut_point_or_block(base):
    with pytest.raises(ValueError, match="Did you mean 'conv_pw_5_relu'") as info:
        tlkit.cut(base, "conv_pw5_relu")
    assert "tlkit.block_ends" in str(info.value)
    with pytest.raises(ValueError, match="has no layer 'block_3_add'"):
        tlkit.model.freeze_up_to(base, "block_3_add")
    ends = tlkit.block_ends(base, "mobilenet_0.25")
    with pytest.raises(ValueError, match=f"has {len(ends)} blocks"):
        tlkit.unfreeze_top(base, len(ends) + 1, "mobilenet_0.25")
    # Another backbone's name: the base says which backbone it is.
    with pytest.raises(ValueError, match="is a mobilenet_0.25, but backbone='resnet50'"):
        tlkit.unfreeze_top(base, 2, "resnet50")


def test_unknown_class_name_suggests_closest(tmp_path):
    for name in ("cat", "dog"):
        write_images(tmp_path / name, 3)
    with pytest.raises(ValueError, match="Did you mean 'dog'") as info:
        tlkit.load_dataset(tmp_path, 32, classes=["cat", "dgo"])
    assert "Known classes: cat, dog" in str(info.value)


# ---------------------------------------------------------------------------- sizes and weights


def test_image_size_below_backbone_minimum():
    start = time.perf_counter()
    with pytest.raises(
        ValueError, match=r"Received: image_size=28\. Expected an integer >= 32\. .* at least 32x32 pixels"
    ) as info:
        tlkit.load_backbone("mobilenet_0.25", 28, weights=None)
    assert "image_size=224" in str(info.value)  # the fix: resize up when loading
    assert time.perf_counter() - start < 1  # refused before building anything
    backbones.check_image_size(tlkit.backbones.get_spec("mobilenet_0.25"), np.int64(64))  # NumPy ints are sizes too


def test_imagenet_weights_without_a_file_say_how_to_load_by_path(offline):
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError) as info:
        tlkit.load_backbone("mobilenet_v2", 96)
    text = str(info.value)
    assert "weights='/path/to/file.h5'" in text and "TLKIT_ASSETS" in text and "KERAS_HOME" in text
    assert time.perf_counter() - start < 1  # before building the network
    with pytest.raises(FileNotFoundError, match="does not exist"):
        tlkit.load_backbone("mobilenet_0.25", 32, weights=offline / "missing.h5")


# ---------------------------------------------------------------------------- arrays


def test_grayscale_is_repeated_to_rgb():
    gray = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4)
    for images in (gray, gray[..., None]):
        converted = tlkit.from_arrays(images, [0, 1])
        assert converted.images.shape == (2, 4, 4, 3)
        assert (converted.images == gray[..., None]).all()


def _pixels(count: int, size: int) -> np.ndarray:
    """`count` different random RGB images, 0-255."""
    return np.random.default_rng(count).integers(0, 256, (count, size, size, 3), dtype=np.uint8)


def test_rgba_is_converted_with_a_warning():
    rgba = np.stack([np.full((4, 4, 4), 7, np.uint8), np.full((4, 4, 4), 9, np.uint8)])
    with pytest.warns(UserWarning, match="alpha channel is dropped"):
        converted = tlkit.from_arrays(rgba, [0, 1])
    assert converted.images.shape == (2, 4, 4, 3)


@pytest.mark.parametrize("channels", [2, 5])
def test_other_channel_counts_are_refused(channels):
    with pytest.raises(ValueError, match=f"{channels} channels; ImageNet backbones take 3"):
        tlkit.from_arrays(np.zeros((2, 4, 4, channels), np.uint8), [0, 1])


def test_labels_out_of_range_or_one_class():
    x = np.zeros((3, 4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match=r"labels run from 0 to 5, but the set has 3 classes \(labels 0..2\)"):
        tlkit.from_arrays(x, [0, 1, 5], ["a", "b", "c"])
    with pytest.raises(ValueError, match="run from -1 to 1"):
        tlkit.from_arrays(x, [0, 1, -1], ["a", "b", "c"])
    with pytest.raises(ValueError, match="at least 2 classes"):
        tlkit.from_arrays(x, [0, 0, 0])
    with pytest.raises(ValueError, match="one label per image"):
        tlkit.from_arrays(x, [0, 1])


# ---------------------------------------------------------------------------- the model and training


def test_num_classes_below_two(base):
    for bad in (1, 0, 2.0):
        with pytest.raises(ValueError, match=r"Received: num_classes=.*Expected an integer >= 2"):
            tlkit.build_classifier(base, bad, "mobilenet_0.25")


class _Started(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        raise AssertionError("training started although the data does not fit the model")


def _tiny_model(outputs=3, channels=3, size=8):
    inputs = keras.Input((size, size, channels))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    return keras.Model(inputs, keras.layers.Dense(outputs, activation="softmax", name="head")(x), name="tiny")


def test_fit_refuses_labels_beyond_the_outputs_before_training():
    model = _tiny_model(outputs=3)
    tlkit.compile_model(model)
    data = tlkit.from_arrays(_pixels(12, 8), np.arange(12) % 5)
    augmented = tlkit.to_tf(data, 4, shuffle=True, augment=tlkit.augment.augmentation())
    with pytest.raises(ValueError, match="has 3 outputs.*num_classes=5"):  # every label checked, not one batch
        tlkit.fit(model, augmented, epochs=1, verbose=0, callbacks=[_Started()])
    with pytest.raises(ValueError, match="validation labels run from 0 to 4"):
        good = tlkit.to_tf(tlkit.from_arrays(_pixels(6, 8), np.arange(6) % 3), 4)
        tlkit.fit(model, good, tlkit.to_tf(data, 4), epochs=1, verbose=0, callbacks=[_Started()])
    with pytest.raises(ValueError, match="one-hot labels pass labels.argmax"):
        tlkit.fit(model, np.zeros((4, 8, 8, 3)), y=np.eye(3)[[0, 1, 2, 0]], epochs=1, verbose=0, callbacks=[_Started()])
    # More outputs than the labels use trains, but probably is not what was meant.
    wide = _tiny_model(outputs=7)
    tlkit.compile_model(wide)
    warns = pytest.warns(UserWarning, match="7 outputs but the train labels only use 0..4: did you mean num_classes=5")
    with warns, pytest.raises(AssertionError, match="training started"):
        tlkit.fit(wide, tlkit.to_tf(data, 4), epochs=1, verbose=0, callbacks=[_Started()])
    # A pipeline whose labels are not held in memory is checked on its first batch.
    import tensorflow as tf

    streamed = tf.data.Dataset.from_tensor_slices((data.images, data.labels)).filter(lambda x, y: True).batch(6)
    with pytest.raises(ValueError, match="labels run from 0 to 4"):
        tlkit.fit(model, streamed, epochs=1, verbose=0, callbacks=[_Started()])
    # A pipeline that maps its labels is judged by what comes out of it (first batch): no false alarm.
    shifted = (
        tf.data.Dataset.from_tensor_slices((data.images, data.labels % 3 + 1)).batch(4).map(lambda x, y: (x, y - 1))
    )
    with pytest.raises(AssertionError, match="training started"):
        tlkit.fit(model, shifted, epochs=1, verbose=0, callbacks=[_Started()])
    with pytest.raises(ValueError, match="labels run from 0 to 4, but the model has 3 outputs"):
        tlkit.train_head(np.zeros((5, 4), np.float32), np.arange(5), num_classes=3)


def test_fit_refuses_images_that_do_not_fit_the_model():
    model = _tiny_model(channels=3, size=8)
    tlkit.compile_model(model)
    gray = tlkit.to_tf(tlkit.data.ImageSet(np.zeros((4, 8, 8, 1), np.uint8), np.arange(4) % 3, list("abc")), 2)
    with pytest.raises(ValueError, match="1 channel.*tlkit.from_arrays"):
        tlkit.fit(model, gray, epochs=1, verbose=0, callbacks=[_Started()])
    small = tlkit.to_tf(tlkit.from_arrays(_pixels(4, 6), np.arange(4) % 3), 2)
    with pytest.raises(ValueError, match="6x6 pixels.*image_size=8"):
        tlkit.fit(model, small, epochs=1, verbose=0, callbacks=[_Started()])
    with pytest.raises(TypeError, match="tlkit.to_tf"):
        tlkit.fit(model, tlkit.from_arrays(_pixels(4, 8), np.arange(4) % 3), epochs=1, verbose=0)


# ---------------------------------------------------------------------------- folders


def test_empty_class_folder(tmp_path):
    write_images(tmp_path / "cat", 3)
    (tmp_path / "dog").mkdir()
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match="Class folder\\(s\\) with no images in .*: dog") as info:
        tlkit.load_dataset(tmp_path, 32)
    assert "remove the folder" in str(info.value)


def test_folder_without_class_folders_or_missing(tmp_path):
    write_images(tmp_path, 0)
    Image.new("RGB", (8, 8)).save(tmp_path / "loose.jpg")
    with pytest.raises(ValueError, match="no class sub-folders.*<class name>/<image>"):
        tlkit.load_dataset(tmp_path, 32)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        tlkit.load_dataset(tmp_path / "nowhere", 32)


def test_images_per_class_above_the_smallest_class(tmp_path):
    write_images(tmp_path / "big", 6)
    write_images(tmp_path / "small", 3)
    with pytest.raises(ValueError, match="smallest class here is 'small' with 3") as info:
        tlkit.load_dataset(tmp_path, 32, images_per_class=4, val_per_class=0, test_per_class=0)
    assert "lower images_per_class" in str(info.value)


def test_corrupt_and_unreadable_images_are_skipped_and_counted(tmp_path):
    cats, dogs = tmp_path / "cat", tmp_path / "dog"
    write_images(cats, 4, size=(64, 48))
    write_images(dogs, 4, size=(64, 48), color=(20, 20, 220))
    whole = (cats / "img_0.jpg").read_bytes()
    (cats / "truncated.jpg").write_bytes(whole[: len(whole) // 2])  # a download cut off half way
    (cats / "text.jpg").write_text("<html>404 Not Found</html>")  # not an image, .jpg name
    (dogs / "empty.jpeg").write_bytes(b"")
    (dogs / "header_only.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    with pytest.warns(UserWarning, match="Skipped 4 unreadable or corrupt image file"):
        splits = tlkit.load_dataset(tmp_path, 32, val_per_class=0, test_per_class=0)
    assert splits.skipped == 4
    assert len(splits.train) == 8
    assert splits.train.class_counts().tolist() == [4, 4]
    for bad in ("truncated.jpg", "text.jpg"):
        (cats / bad).unlink()
    for bad in ("empty.jpeg", "header_only.png"):
        (dogs / bad).unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean folder loads without a warning
        assert tlkit.load_dataset(tmp_path, 32, val_per_class=0, test_per_class=0).skipped == 0


# ---------------------------------------------------------------------------- GPU memory


class _OutOfMemory(keras.callbacks.Callback):
    """Raises what an accelerator raises when a batch does not fit in its memory."""

    def __init__(self, error):
        super().__init__()
        self.error = error

    def on_train_batch_begin(self, batch, logs=None):
        raise self.error


def test_out_of_memory_names_the_batch_size_to_try_next():
    import tensorflow as tf

    from tlkit.memory import OutOfMemoryError

    model = _tiny_model()
    tlkit.compile_model(model)
    data = tlkit.from_arrays(_pixels(32, 8), np.arange(32) % 3)
    tf_oom = tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[16,8,8,3]")
    with pytest.raises(OutOfMemoryError, match=r"Try batch_size=8 \(half of 16\)") as info:
        tlkit.fit(model, tlkit.to_tf(data, 16, shuffle=True), epochs=1, verbose=0, callbacks=[_OutOfMemory(tf_oom)])
    assert info.value.suggested_batch_size == 8
    assert "OOM when allocating" in str(info.value)
    # JAX/XLA says RESOURCE_EXHAUSTED; NumPy inputs take their batch size from fit's argument.
    xla_oom = RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 1048576 bytes.")
    with pytest.raises(OutOfMemoryError, match=r"Try batch_size=2 \(half of 4\)"):
        tlkit.fit(
            model, data.images, y=data.labels, batch_size=4, epochs=1, verbose=0, callbacks=[_OutOfMemory(xla_oom)]
        )
    # Any other error passes through unchanged.
    with pytest.raises(KeyError, match="not memory"):
        tlkit.fit(model, tlkit.to_tf(data, 16), epochs=1, verbose=0, callbacks=[_OutOfMemory(KeyError("not memory"))])


def test_full_profile_turns_on_memory_growth(monkeypatch):
    import tensorflow as tf

    from tlkit import profiles

    grown = []
    monkeypatch.setattr(profiles, "gpus", lambda: ["GPU:0"])
    monkeypatch.setattr(tf.config.experimental, "set_memory_growth", lambda gpu, on: grown.append((gpu, on)))
    try:
        tlkit.setup("full", seed=None)
        assert grown == [("GPU:0", True)]
        assert keras.mixed_precision.global_policy().name == "mixed_float16"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_bad_image_size_or_count_is_refused_before_loading(tmp_path):
    write_images(tmp_path / "cat", 3)
    write_images(tmp_path / "dog", 3)
    # A negative size would make every image fail to resize and be "skipped" as unreadable.
    for bad in (-32, "128", 64.0):
        with pytest.raises(ValueError, match=r"Received: image_size=.*Expected an integer >= 1"):
            tlkit.load_dataset(tmp_path, bad)
    with pytest.raises(ValueError, match=r"Received: images_per_class=2.5. Expected an integer >= 1"):
        tlkit.load_dataset(tmp_path, 32, images_per_class=2.5)
    with pytest.raises(ValueError, match="test_per_class=-1: give a count of 0 or more"):
        tlkit.load_dataset(tmp_path, 32, test_per_class=-1)
    with pytest.raises(ValueError, match=r"val_per_class=1.5: a fraction must be in \[0, 1\)"):
        tlkit.load_dataset(tmp_path, 32, val_per_class=1.5)


def test_class_whose_images_are_all_unreadable(tmp_path):
    write_images(tmp_path / "cat", 3)
    (tmp_path / "dog").mkdir()
    for i in range(3):
        (tmp_path / "dog" / f"broken_{i}.jpg").write_bytes(b"not a jpeg")
    with pytest.warns(UserWarning, match="Skipped 3"), pytest.raises(ValueError, match="class\\(es\\) dog"):
        tlkit.load_dataset(tmp_path, 32, val_per_class=0, test_per_class=0)
