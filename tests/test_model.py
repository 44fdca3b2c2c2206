"""Freezing, BatchNorm behaviour, cutting and the trainable report, on real Keras models.

All on a randomly initialised MobileNet alpha=0.25 at 32x32 (weights are not the point here).
Its layers are conv1, then 13 blocks of conv_dw_i / conv_dw_i_bn / conv_dw_i_relu /
conv_pw_i / conv_pw_i_bn / conv_pw_i_relu; the convolutions have no bias.
"""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest

import tlkit

BACKBONE = "mobilenet_0.25"
HEAD = {"head/kernel", "head/bias"}


def paths(weights) -> set[str]:
    return {w.path for w in weights}


def convs(*blocks: int) -> set[str]:
    return {f"conv_{kind}_{i}/kernel" for i in blocks for kind in ("dw", "pw")}


def bn_scales(*blocks: int) -> set[str]:
    return {f"conv_{kind}_{i}_bn/{w}" for i in blocks for kind in ("dw", "pw") for w in ("gamma", "beta")}


@pytest.fixture
def classifier(tiny_base):
    return tlkit.build_classifier(tiny_base, 3, BACKBONE)


def test_freeze_leaves_only_the_head_trainable(tiny_base, classifier):
    assert len(tiny_base.trainable_weights) == len(tiny_base.weights) - 2 * 27  # all but 27 BN moving mean/var
    tiny_base.trainable = False
    assert tiny_base.trainable_weights == []
    assert paths(classifier.trainable_weights) == HEAD


@pytest.mark.parametrize(
    "blocks, expected",
    [
        (0, set()),
        (1, convs(13)),
        (2, convs(12, 13)),
        (3, convs(11, 12, 13)),
        (14, {"conv1/kernel"} | convs(*range(1, 14))),  # all 14 blocks: every convolution
    ],
)
def test_unfreeze_top_unfreezes_exactly_the_top_blocks(tiny_base, classifier, blocks, expected):
    tlkit.unfreeze_top(tiny_base, blocks, BACKBONE)
    assert paths(tiny_base.trainable_weights) == expected
    assert paths(classifier.trainable_weights) == expected | HEAD
    bn = [layer for layer in tiny_base.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert not any(layer.trainable for layer in bn)  # BatchNorm stays frozen by default


def test_unfreeze_top_with_train_batchnorm(tiny_base):
    tlkit.unfreeze_top(tiny_base, 2, BACKBONE, train_batchnorm=True)
    assert paths(tiny_base.trainable_weights) == convs(12, 13) | bn_scales(12, 13)
    # Moving statistics are never trainable weights: an optimizer does not touch them.
    assert not any("moving" in p for p in paths(tiny_base.trainable_weights))


def test_freeze_up_to_a_named_layer(tiny_base):
    tlkit.model.freeze_up_to(tiny_base, "conv_pw_10_relu")
    assert paths(tiny_base.trainable_weights) == convs(11, 12, 13)
    tlkit.model.freeze_up_to(tiny_base, "conv_dw_12")  # mid-block: conv_pw_12 onwards learns
    assert paths(tiny_base.trainable_weights) == {"conv_pw_12/kernel"} | convs(13)
    tlkit.model.freeze_up_to(tiny_base, "conv_pw_12_relu", train_batchnorm=True)
    assert paths(tiny_base.trainable_weights) == convs(13) | bn_scales(13)


def _snapshot(model) -> dict[str, np.ndarray]:
    return {w.path: w.numpy().copy() for w in model.weights}


def _one_training_step(model, images, labels, learning_rate=1e-2):
    tlkit.compile_model(model, learning_rate)  # recompile: a trained model keeps its old trainable set until then
    model.run_eagerly = True  # one step: tracing a tf.function would cost more than it saves
    model.train_on_batch(images, labels)


def _changed(before, after) -> set[str]:
    return {p for p in before if not np.array_equal(before[p], after[p])}


@pytest.fixture
def batch(random_images):
    return random_images(8), np.arange(8) % 3


def test_fine_tune_step_changes_exactly_the_unfrozen_weights(live_base, classifier, batch):
    """Default fine-tuning (BatchNorm frozen): the unfrozen convolutions and the head change;
    every frozen weight, BatchNorm moving statistics included, stays bit-for-bit the same."""
    tlkit.unfreeze_top(live_base, 2, BACKBONE)
    before = _snapshot(classifier)
    _one_training_step(classifier, *batch)
    changed = _changed(before, _snapshot(classifier))
    # Adam moves every weight that has a non-zero gradient by about the learning rate.
    assert changed == convs(12, 13) | HEAD


def test_trainable_batchnorm_updates_its_statistics_despite_training_false(live_base, classifier, batch):
    """What Keras 3 (3.15) really does, measured: `build_classifier` calls the base with
    `training=False`, but when the outer model trains, Keras passes `training=True` to every
    layer of its graph, the nested base included, overriding the `training=False`
    (keras-team/keras#20285). So a *trainable* BatchNorm layer runs in training mode and its
    moving statistics move. Only `trainable=False` keeps a BatchNorm layer in inference
    mode, which is why the freezing helpers keep BatchNorm frozen unless asked.
    """
    top_stats = {f"conv_{k}_{i}_bn/moving_{s}" for i in (12, 13) for k in ("dw", "pw") for s in ("mean", "variance")}
    tlkit.unfreeze_top(live_base, 2, BACKBONE, train_batchnorm=True)
    before = _snapshot(classifier)
    _one_training_step(classifier, *batch)
    changed = _changed(before, _snapshot(classifier))
    assert changed == convs(12, 13) | bn_scales(12, 13) | top_stats | HEAD

    live_base.trainable = False  # "unfreeze everything" as in the Keras guide (see the next test for
    live_base.trainable = True  # why it takes two lines here): then every BatchNorm layer moves
    before = _snapshot(classifier)
    _one_training_step(classifier, *batch)
    changed = _changed(before, _snapshot(classifier))
    assert {p for p in changed if "moving" in p} == {w.path for w in live_base.weights if "moving" in w.path}


def test_setting_trainable_true_again_does_not_unfreeze_layers(tiny_base):
    """A Keras 3 trap of the TensorFlow backend, measured (Keras 3.15): `layer.trainable = value`
    is skipped when the attribute already has that value, so on a base whose own flag is True
    but whose layers were frozen one by one (as `unfreeze_top` and `freeze_up_to` do),
    `base.trainable = True` changes nothing there. On JAX and PyTorch it reaches every layer.
    Setting it to False first makes it take effect on every backend.
    """
    tlkit.unfreeze_top(tiny_base, 1, BACKBONE)
    assert tiny_base.trainable
    tiny_base.trainable = True
    if keras.backend.backend() == "tensorflow":
        assert paths(tiny_base.trainable_weights) == convs(13)  # still only the top block
    else:
        assert len(tiny_base.trainable_weights) == len(tiny_base.weights) - 2 * 27
    tiny_base.trainable = False
    tiny_base.trainable = True
    assert len(tiny_base.trainable_weights) == len(tiny_base.weights) - 2 * 27  # everything but moving stats


def test_cut_gives_the_feature_map_of_the_named_layer():
    base = tlkit.load_backbone(BACKBONE, 64, weights=None)
    part = tlkit.cut(base, "conv_pw_5_relu")
    # 64 px: strides 2 at conv1, conv_dw_2 and conv_dw_4 -> 8x8; conv_pw_5 has 256 * 0.25 filters.
    assert part.output_shape == (None, 8, 8, 64)
    assert part.layers[-1].name == "conv_pw_5_relu"
    assert part.get_layer("conv_pw_5").kernel is base.get_layer("conv_pw_5").kernel  # shared, not copied
    images = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype("float32")
    full_to_layer = keras.Model(base.input, base.get_layer("conv_pw_5_relu").output)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(part(images)), keras.ops.convert_to_numpy(full_to_layer(images)), atol=1e-6
    )


def _report_numbers(report: str) -> tuple[int, int, list[tuple[str, int, int]], tuple[int, int]]:
    head = re.search(r"([\d,]+) trainable / ([\d,]+) frozen parameters", report)
    rows = re.findall(r"(trainable|frozen)\s+(\d+) layers\s+([\d,]+) params", report)
    runs = [(state, int(n), int(p.replace(",", ""))) for state, n, p in rows]
    bn = re.search(r"BatchNorm: (\d+) frozen \(inference mode\), (\d+) trainable", report)
    return int(head[1].replace(",", "")), int(head[2].replace(",", "")), runs, (int(bn[1]), int(bn[2]))


@pytest.mark.parametrize("blocks, train_batchnorm", [(0, False), (2, False), (2, True), (14, False)])
def test_trainable_report_numbers(tiny_base, classifier, blocks, train_batchnorm):
    tlkit.unfreeze_top(tiny_base, blocks, BACKBONE, train_batchnorm=train_batchnorm)
    trainable, frozen, runs, (bn_frozen, bn_trainable) = _report_numbers(tlkit.trainable_report(classifier))
    expected_trainable = sum(int(np.prod(w.shape)) for w in classifier.trainable_weights)
    assert trainable == expected_trainable
    assert trainable + frozen == classifier.count_params()
    batchnorm = [layer for layer in tiny_base.layers if isinstance(layer, keras.layers.BatchNormalization)]
    bn_params = sum(layer.count_params() for layer in batchnorm)
    assert sum(p for _, _, p in runs) + bn_params == classifier.count_params()  # every layer counted once
    bn_trainable_params = sum(int(np.prod(w.shape)) for layer in batchnorm for w in layer.trainable_weights)
    assert sum(p for s, _, p in runs if s == "trainable") == expected_trainable - bn_trainable_params
    assert (bn_frozen, bn_trainable) == ((23, 4) if train_batchnorm else (27, 0))
    conv_layers = 1 + 2 * 13
    assert sum(n for _, n, _ in runs) == conv_layers + 1  # + the head
