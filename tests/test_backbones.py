"""The backbone registry against `keras.applications` itself."""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np
import pytest

import tlkit
from tlkit.backbones import find_weight_file

apps = keras.applications

# Keras's own preprocessing module for each registry entry, written out here (not read from
# the registry) so a wrong `preprocess` in the registry fails the test.
KERAS_MODULE = {
    "mobilenet_0.25": apps.mobilenet,
    "mobilenet_0.5": apps.mobilenet,
    "mobilenet": apps.mobilenet,
    "mobilenet_v2": apps.mobilenet_v2,
    "mobilenet_v3_small": apps.mobilenet_v3,
    "mobilenet_v3_large": apps.mobilenet_v3,
    "efficientnet_b0": apps.efficientnet,
    "resnet50": apps.resnet50,
    "densenet121": apps.densenet,
    "vgg16": apps.vgg16,
}


def test_registry_covers_the_required_families():
    assert set(KERAS_MODULE) == set(tlkit.backbones.BACKBONES)


@pytest.mark.parametrize("name", list(tlkit.backbones.BACKBONES))
def test_every_backbone_builds_and_its_blocks_are_ordered_cut_points(name):
    spec = tlkit.backbones.get_spec(name)
    base = tlkit.load_backbone(name, spec.min_size, weights=None)
    assert base.input_shape == (None, spec.min_size, spec.min_size, 3)
    assert len(base.output_shape) == 4  # no classifier: a feature map

    names = [layer.name for layer in base.layers]
    missing = [b for b in spec.blocks if b not in names]
    assert not missing, f"{name}: block ends not in the model: {missing}"

    ends = tlkit.block_ends(base, name)
    assert ends[-1] == base.layers[-1].name
    assert base.get_layer(ends[-1]).output is base.output
    assert len(set(ends)) == len(ends)
    positions = [names.index(e) for e in ends]
    assert positions == sorted(positions), f"{name}: block ends out of order: {ends}"

    # Topological order, not just list order: each block end feeds the next one, and the
    # feature maps get no larger from block to block.
    previous = None
    for end in ends:
        upstream = {layer.name for layer in tlkit.cut(base, end).layers}
        if previous is not None:
            assert previous in upstream, f"{name}: {previous!r} does not feed {end!r}"
        previous = end
    sizes = [base.get_layer(e).output.shape[1] for e in ends]
    assert sizes == sorted(sizes, reverse=True)


@pytest.mark.parametrize(  # one per distinct preprocess_input
    "name",
    ["mobilenet_0.25", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "resnet50", "densenet121", "vgg16"],
)
def test_preprocessing_layer_equals_keras_preprocess_input(name):
    images = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    expected = KERAS_MODULE[name].preprocess_input(images.astype("float32").copy())  # it can work in place
    got = keras.ops.convert_to_numpy(tlkit.BackbonePreprocessing(name)(images))
    assert got.shape == images.shape
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize("name", ["mobilenet_0.25", "resnet50"])
def test_preprocessing_leaves_the_callers_tensor_as_it_was(name):
    """`preprocess_input` divides in place: on PyTorch, a float32 tensor passed in would come back changed."""
    images = keras.ops.convert_to_tensor(np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32"))
    before = keras.ops.convert_to_numpy(images).copy()
    layer = tlkit.BackbonePreprocessing(name)
    first, second = (keras.ops.convert_to_numpy(layer(images)) for _ in range(2))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(images), before)
    np.testing.assert_array_equal(first, second)


def test_preprocessing_modes_are_the_documented_ones():
    """Spot values, so the test above cannot pass by comparing two wrong things."""
    pixel = np.array([[[[0, 128, 255]]]], np.uint8)
    tf_mode = keras.ops.convert_to_numpy(tlkit.BackbonePreprocessing("mobilenet_0.25")(pixel))
    np.testing.assert_allclose(tf_mode.ravel(), [-1.0, 128 / 127.5 - 1, 1.0], atol=1e-6)
    caffe = keras.ops.convert_to_numpy(tlkit.BackbonePreprocessing("resnet50")(pixel))
    np.testing.assert_allclose(caffe.ravel(), [255 - 103.939, 128 - 116.779, 0 - 123.68], atol=1e-4)  # BGR
    same = keras.ops.convert_to_numpy(tlkit.BackbonePreprocessing("efficientnet_b0")(pixel))
    np.testing.assert_allclose(same.ravel(), [0, 128, 255])  # rescaling is inside the model


@pytest.mark.parametrize("size", [96, 128, 160])
def test_offline_imagenet_weights_load_at_any_size(size, weight_file):
    base = tlkit.load_backbone("mobilenet_0.25", size)  # "imagenet": found in $TLKIT_ASSETS/weights
    reference = apps.MobileNet(alpha=0.25, include_top=False, weights=str(weight_file), input_shape=(size, size, 3))
    random = tlkit.load_backbone("mobilenet_0.25", size, weights=None)
    assert base.output_shape == (None, size // 32, size // 32, 256)
    assert len(base.weights) == len(reference.weights)
    for ours, theirs in zip(base.weights, reference.weights):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=ours.path)
    assert not np.allclose(base.get_layer("conv1").kernel.numpy(), random.get_layer("conv1").kernel.numpy())
    by_path = tlkit.load_backbone("mobilenet_0.25", size, weights=weight_file)
    np.testing.assert_array_equal(by_path.get_layer("conv_pw_13").kernel.numpy(), base.get_layer("conv_pw_13").kernel)


def _linear_probe_accuracy(train_x, train_y, test_x, test_y) -> float:
    from sklearn.linear_model import LogisticRegression

    return float(LogisticRegression(max_iter=2000).fit(train_x, train_y).score(test_x, test_y))


@pytest.mark.parametrize("size", [96, 128])
def test_imagenet_features_separate_two_caltech_classes(size, weight_file, caltech):
    """10 training and 30 test images a class; a logistic-regression probe on pooled features.

    Measured (grand_piano vs hawksbill, split seeds 0-2, 96 and 128 px): ImageNet features
    0.983-1.0; the random-init base 0.50 every time (with Keras's default initialisation its
    deep features are almost constant, std ~1e-17, so the probe can only guess). Other pairs
    (bonsai/chandelier, Leopards/watch) gave 0.92-1.0 against 0.50. Thresholds: ImageNet
    >= 0.9, random-init <= 0.65, so "far better" means at least 0.25 apart.
    """
    splits = tlkit.load_dataset(
        "caltech101", size, classes=["grand_piano", "hawksbill"], images_per_class=10,
        val_per_class=0, test_per_class=30, seed=0,
    )  # fmt: skip
    scores = {}
    for weights in ("imagenet", None):
        base = tlkit.load_backbone("mobilenet_0.25", size, weights=weights)
        extractor = tlkit.feature_extractor(base, "mobilenet_0.25")
        train_x = tlkit.extract(extractor, splits.train.images)
        test_x = tlkit.extract(extractor, splits.test.images)
        scores[weights] = _linear_probe_accuracy(train_x, splits.train.labels, test_x, splits.test.labels)
    assert scores["imagenet"] >= 0.9, scores
    assert scores[None] <= 0.65, scores


def test_find_weight_file_prefers_the_exact_size(tmp_path, monkeypatch):
    assets, keras_home = tmp_path / "assets", tmp_path / "keras_home"
    (assets / "weights").mkdir(parents=True)
    (keras_home / "models").mkdir(parents=True)
    for size in (128, 224):
        (assets / "weights" / f"mobilenet_2_5_{size}_tf_no_top.h5").touch()
    (keras_home / "models" / "mobilenet_2_5_160_tf_no_top.h5").touch()
    (assets / "weights" / "mobilenet_5_0_96_tf_no_top.h5").touch()  # another alpha: never chosen
    monkeypatch.setenv("TLKIT_ASSETS", str(assets))
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    spec = tlkit.backbones.get_spec("mobilenet_0.25")
    assert find_weight_file(spec, 224).name == "mobilenet_2_5_224_tf_no_top.h5"  # not the first in sort order
    assert find_weight_file(spec, 128).name == "mobilenet_2_5_128_tf_no_top.h5"
    assert find_weight_file(spec, 160).name == "mobilenet_2_5_160_tf_no_top.h5"  # from $KERAS_HOME/models
    assert find_weight_file(spec, 96).name.startswith("mobilenet_2_5_")  # any size loads into a no-top base
    assert find_weight_file(tlkit.backbones.get_spec("mobilenet_v2"), 96) is None


def test_the_full_profile_takes_pack_weights_from_a_classroom_mirror(monkeypatch, tmp_path, assets, weight_file):
    """No Keras cache, no $TLKIT_ASSETS, a mirror on 127.0.0.1: MobileNet alpha=0.25 comes from the mirror."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(assets))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("TLKIT_PROFILE", "full")
        monkeypatch.delenv("TLKIT_ASSETS")
        monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
        monkeypatch.setenv("TLKIT_ASSETS_MIRROR", f"http://127.0.0.1:{server.server_address[1]}/")
        base = tlkit.load_backbone("mobilenet_0.25", 96)
    finally:
        server.shutdown()
        server.server_close()
    assert (Path(os.environ["XDG_CACHE_HOME"]) / "tlkit" / "assets" / "weights" / weight_file.name).is_file()
    from_pack = tlkit.load_backbone("mobilenet_0.25", 96, weights=str(weight_file))
    for mine, theirs in zip(base.weights, from_pack.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


@pytest.mark.parametrize("name", sorted(tlkit.backbones.BACKBONES))
def test_the_full_profile_loads_every_backbone_from_the_keras_cache(name, monkeypatch, tmp_path):
    """A file named as Keras caches its download, in $KERAS_HOME/models, is what the full profile loads.

    The file here holds random weights saved in Keras's legacy HDF5 layout (the layout of Keras's own
    files); the loaded base must hold exactly those weights, with no network asked.
    """
    spec = tlkit.backbones.get_spec(name)
    models = tmp_path / "keras" / "models"
    models.mkdir(parents=True)
    saved = spec.build(64)
    saved.save(models / spec.weight_glob.replace("*", "224"))
    monkeypatch.setenv("TLKIT_PROFILE", "full")
    monkeypatch.delenv("TLKIT_ASSETS")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("TLKIT_NO_NETWORK", "1")  # any download attempt fails at once
    base = tlkit.load_backbone(name, 64)
    assert len(base.weights) == len(saved.weights)
    for loaded, original in zip(base.weights, saved.weights):
        np.testing.assert_array_equal(loaded.numpy(), original.numpy())
