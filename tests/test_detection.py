"""tlkit.detection: exact boxes, the grid encoding, decoding, mAP by pycocotools, KerasHub's RetinaNet."""

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest

from tlkit import detection

SIZE = 64


def items_and_backgrounds():
    items = np.zeros((6, 28, 28), np.uint8)
    items[:, 4:20, 9:23] = 200  # a bright 14 x 16 rectangle on black: its tight box is known
    backgrounds = np.random.default_rng(0).integers(0, 60, (3, SIZE, SIZE, 3), dtype=np.uint8)
    return items, np.array([0, 1, 2, 0, 1, 2]), backgrounds


def test_pasted_item_has_its_exact_box():
    items, _, backgrounds = items_and_backgrounds()
    scenes = detection.make_scenes(items, np.zeros(6, int), backgrounds, 1, [0], objects=(1, 1), sizes=(28, 28))
    (x1, y1, x2, y2), image = scenes.boxes[0][0].astype(int), scenes.images[0]
    assert (x2 - x1, y2 - y1) == (14, 16)  # 28 px: the item at its own scale
    assert (image[y1:y2, x1:x2] == 200).all()
    outside = np.ones((SIZE, SIZE), bool)
    outside[y1:y2, x1:x2] = False
    assert (image[outside] < 60).all()  # the background everywhere else


def test_scenes_are_seeded_and_labelled_by_position_in_classes():
    items, labels, backgrounds = items_and_backgrounds()
    a = detection.make_scenes(items, labels, backgrounds, 5, [2, 1], ["c", "b"], seed=3)
    b = detection.make_scenes(items, labels, backgrounds, 5, [2, 1], ["c", "b"], seed=3)
    assert np.array_equal(a.images, b.images) and all(np.array_equal(x, y) for x, y in zip(a.boxes, b.boxes))
    assert set(np.concatenate(a.labels)) <= {0, 1} and a.class_names == ["c", "b"]
    assert len(a[1:3]) == 2


def test_encode_decode_round_trip_is_exact():
    items, labels, backgrounds = items_and_backgrounds()
    scenes = detection.make_scenes(items, labels, backgrounds, 20, [0, 1, 2], objects=(2, 4), sizes=(8, 30))
    targets = detection.encode_scenes(scenes, stride=8)
    assert targets["classes"].shape == (20, 8, 8, 3) and targets["boxes"].shape == (20, 8, 8, 5)
    for i in range(20):
        boxes, scores, labels_ = detection.decode(targets["classes"][i], targets["boxes"][i], SIZE)
        order = np.lexsort(boxes.T[::-1])
        truth = np.lexsort(scenes.boxes[i].T[::-1])
        np.testing.assert_allclose(boxes[order], scenes.boxes[i][truth], atol=1e-4)
        assert np.array_equal(labels_[order], scenes.labels[i][truth]) and (scores == 1).all()


def test_map_is_one_for_perfect_predictions_and_less_for_a_shifted_box():
    boxes = [np.array([[10, 10, 30, 30], [40, 5, 60, 25]], np.float32), np.array([[0, 0, 20, 40]], np.float32)]
    labels = [np.array([0, 1]), np.array([1])]
    scores = [np.array([0.9, 0.8]), np.array([0.7])]
    assert detection.mean_average_precision(boxes, labels, boxes, scores, labels, 2) == pytest.approx(1.0)
    shifted = [boxes[0] + np.array([[8, 0, 8, 0], [0, 0, 0, 0]], np.float32), boxes[1]]  # class 0's box
    # IoU 240/560 = 0.43 < 0.5: class 0's AP is 0, class 1's is 1
    assert detection.mean_average_precision(boxes, labels, shifted, scores, labels, 2) == pytest.approx(0.5)
    # A looser threshold accepts the same shift.
    assert detection.mean_average_precision(boxes, labels, shifted, scores, labels, 2, iou=0.4) == pytest.approx(1.0)
    nothing = [np.zeros((0, 4))] * 2
    assert detection.mean_average_precision(boxes, labels, nothing, [[]] * 2, [[]] * 2, 2) == 0.0


@pytest.mark.parametrize(
    "change, argument, message",
    [
        (lambda b, s, lab: ([b[0][:, :3]], s, lab), "pred_boxes", "shape"),  # three coordinates
        (lambda b, s, lab: ([b[0] * np.nan], s, lab), "pred_boxes", "non-finite"),
        (lambda b, s, lab: (b, [np.array([np.nan, 0.5])], lab), "pred_scores", "NaN score"),
        (lambda b, s, lab: (b, s, [np.array([0, 2])]), "pred", "run from 0 to 2, but the detector has 2 outputs"),
        (lambda b, s, lab: (b, s, [np.array([0.5, 1.0])]), "pred", "pass integer class"),
        (lambda b, s, lab: (b, [np.array([0.5])], lab), "pred_scores", "one per box"),
    ],
)
def test_map_refuses_malformed_predictions(change, argument, message):
    """A NaN score or a box in another format would otherwise yield a number, even a perfect one."""
    boxes, labels = [np.array([[10, 10, 30, 30], [40, 5, 60, 25]], np.float32)], [np.array([0, 1])]
    scores = [np.array([0.9, 0.8])]
    pred_boxes, pred_scores, pred_labels = change(boxes, scores, labels)
    with pytest.raises(ValueError, match=rf"{argument}.*{message}|{message}.*{argument}"):
        detection.mean_average_precision(boxes, labels, pred_boxes, pred_scores, pred_labels, 2)
    with pytest.raises(ValueError, match=r"true \(image 0\) labels run from 0 to 5"):
        detection.mean_average_precision(boxes, [np.array([0, 5])], boxes, scores, labels, 2)
    with pytest.raises(ValueError, match="`true_boxes`.*x2 >= x1"):  # xywh, or corners swapped
        detection.mean_average_precision([boxes[0][:, [2, 1, 0, 3]]], labels, boxes, scores, labels, 2)


def test_clear_errors_for_bad_input():
    items, labels, backgrounds = items_and_backgrounds()
    with pytest.raises(ValueError, match="Invalid value for argument `classes`"):
        detection.make_scenes(items, labels, backgrounds, 2, [7])
    with pytest.raises(ValueError, match="Invalid value for argument `sizes`"):
        detection.make_scenes(items, labels, backgrounds, 2, [0], sizes=(4, 30))
    with pytest.raises(ValueError, match="Invalid value for argument `boxes`"):
        detection.encode(np.array([[30, 10, 20, 20]]), np.array([0]), 2, SIZE)  # left > right
    with pytest.raises(ValueError, match="Invalid value for argument `labels`"):
        detection.encode(np.array([[10, 10, 20, 20]]), np.array([2]), 2, SIZE)
    with pytest.raises(ValueError, match="Invalid value for argument `stride`"):
        detection.encode(np.zeros((0, 4)), np.zeros(0), 2, SIZE, stride=10)
    with pytest.raises(ValueError, match="Two boxes have their centres"):
        detection.encode(np.array([[0, 0, 8, 8], [1, 1, 7, 7]]), np.array([0, 1]), 2, SIZE)
    with pytest.raises(ValueError, match="one entry per image"):
        detection.mean_average_precision([np.zeros((1, 4))], [[0]], [], [], [], 1)
    with pytest.raises(ValueError, match="Invalid value for argument `classes`"):
        detection.detection_scenes(["Trouser", "Trousers"], 2)


def keras_error(argument: str, received: str) -> str:
    """The pattern of the Keras-style error for `argument`, whose received value starts with `received` (a regex)."""
    name = re.escape(argument)
    return rf"^Invalid value for argument `{name}`. Received: {name}='?{received}"


def random_boxes(rng, count: int, size: int) -> np.ndarray:
    """`count` float32 xyxy boxes with fractional corners inside a `size` image."""
    corners = np.sort(rng.uniform(0, size, (count, 2, 2)).astype(np.float32), axis=1)
    return np.stack([corners[:, 0, 0], corners[:, 0, 1], corners[:, 1, 0], corners[:, 1, 1]], axis=1)


def test_encode_computes_what_it_computed_by_hand_to_the_last_bit():
    """keras.utils.bounding_boxes.convert_format gives the centres and sizes: the float32 targets are
    those of the hand-written (x1 + x2) / 2 / stride and (x2 - x1) / image_size, bit for bit, for
    fractional corners and a stride that is not a power of 2 too (lesson 06's numbers do not move)."""
    rng = np.random.default_rng(0)
    for stride in (8, 12):
        for _ in range(200):
            boxes, labels = random_boxes(rng, 2, 96), rng.integers(0, 3, 2)
            x1, y1, x2, y2 = boxes.T
            cx, cy = (x1 + x2) / 2 / stride, (y1 + y2) / 2 / stride
            cells = np.minimum(cx.astype(int), 96 // stride - 1), np.minimum(cy.astype(int), 96 // stride - 1)
            if len(set(zip(*cells))) < 2:
                continue  # two centres in one cell
            _, targets = detection.encode(boxes, labels, 3, 96, stride)
            expected = np.stack([cx - cells[0], cy - cells[1], (x2 - x1) / 96, (y2 - y1) / 96, np.ones(2)], 1)
            np.testing.assert_array_equal(targets[cells[1], cells[0]], expected.astype(np.float32))


def test_decode_computes_what_it_computed_by_hand_to_the_last_bit():
    rng = np.random.default_rng(1)
    scores = rng.uniform(0, 1, (12, 12, 2)).astype(np.float32)
    outputs = rng.uniform(-0.5, 1.5, (12, 12, 4)).astype(np.float32)
    boxes, found, labels = detection.decode(scores, outputs, 96, min_score=0.0, max_detections=1000)
    keep = detection._peaks(scores)
    rows, cols, classes = np.nonzero(keep)
    order = np.argsort(-scores[rows, cols, classes], kind="stable")
    rows, cols = rows[order], cols[order]
    dx, dy, w, h = (outputs[rows, cols, i] for i in range(4))
    cx, cy, w, h = (cols + dx) * 8.0, (rows + dy) * 8.0, w * 96, h * 96  # float64 centres, float32 sizes
    expected = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)
    assert boxes.dtype == np.float32 and len(boxes) > 10
    np.testing.assert_array_equal(boxes, expected)  # not computed in float32 first: that differs in ~30% of boxes


@pytest.mark.parametrize(
    "boxes, labels, argument, received",
    [
        (np.array([[10, 10, 20]]), [0], "boxes", r"an array of shape \(1, 3\)"),  # three coordinates
        (np.array([10, 10, 20, 20]), [0], "boxes", r"an array of shape \(4,\)"),  # one box, not (1, 4)
        (np.array([[10, np.nan, 20, 20]]), [0], "boxes", "non-finite coordinates"),
        (np.array([[10, 10, np.inf, 20]]), [0], "boxes", "non-finite coordinates"),
        (np.array([[30, 10, 20, 20]]), [0], "boxes", r"the box \[30.0, 10.0, 20.0, 20.0\]"),  # x2 < x1
        (np.array([[10, 40, 20, 20]]), [0], "boxes", r"the box \[10.0, 40.0, 20.0, 20.0\]"),  # y2 < y1
        (np.array([[10, 10, 10, 20]]), [0], "boxes", r"the box \[10.0, 10.0, 10.0, 20.0\]"),  # no width
        (np.array([[10, 10, 70, 20]]), [0], "boxes", r"the box \[10.0, 10.0, 70.0, 20.0\]"),  # past the edge
        (np.array([[10, 10, 20, 20]]), [2], "labels", r"the labels \[2\]"),  # 2 classes: 0 and 1
        (np.array([[10, 10, 20, 20]]), [-1], "labels", r"the labels \[-1\]"),
        (np.array([[10, 10, 20, 20]]), [0.5], "labels", r"the labels \[0.5\]"),
        (np.array([[10, 10, 20, 20]]), [0, 1], "labels", "2 labels"),
    ],
)
def test_encode_refuses_malformed_boxes_and_labels(boxes, labels, argument, received):
    with pytest.raises(ValueError, match=keras_error(argument, received)):
        detection.encode(boxes, labels, 2, SIZE)


def test_encode_scenes_checks_every_scene_before_encoding_any(monkeypatch):
    items, labels, backgrounds = items_and_backgrounds()
    scenes = detection.make_scenes(items, labels, backgrounds, 4, [0, 1, 2], objects=(1, 2), sizes=(8, 30))
    encoded = []
    monkeypatch.setattr(detection, "_grid_targets", lambda *args: encoded.append(args))
    bad = dataclasses.replace(scenes, boxes=[*scenes.boxes[:3], scenes.boxes[3] * np.nan])
    with pytest.raises(ValueError, match=r"argument `scenes.boxes`. Received: .*non-finite coordinates for image 3"):
        detection.encode_scenes(bad)
    bad = dataclasses.replace(scenes, labels=[*scenes.labels[:2], scenes.labels[2] + 3, scenes.labels[3]])
    with pytest.raises(ValueError, match=r"argument `scenes.labels`. Received: .* for image 2.*Expected integer"):
        detection.encode_scenes(bad)
    assert encoded == []  # the bad last scenes were found before the first was encoded


@pytest.mark.parametrize(
    "change, argument, received",
    [
        (lambda s, b: (s * np.nan, b), "class_scores", "scores with NaN or infinity"),
        (lambda s, b: (s, b + np.inf), "box_outputs", "boxes with NaN or infinity"),
        (lambda s, b: (s[..., 0], b), "class_scores", r"an array of shape \(8, 8\)"),
        (lambda s, b: (s, b[:4]), "box_outputs", r"\(4, 8, 5\)"),
        (lambda s, b: (s, b[..., :3]), "box_outputs", r"\(8, 8, 3\)"),
    ],
)
def test_decode_refuses_non_finite_or_misshapen_outputs(change, argument, received):
    """NaN scores used to decode to no boxes at all: a diverged training read as a detector that finds nothing."""
    heatmap, targets = detection.encode(np.array([[8, 16, 40, 48]]), np.array([1]), 2, SIZE)
    scores, boxes = change(heatmap, targets)
    with pytest.raises(ValueError, match=keras_error(argument, received)):
        detection.decode(scores, boxes, SIZE)


def test_detect_refuses_a_grid_detector_with_non_finite_outputs():
    import keras

    inputs = keras.Input((32, 32, 3))
    features = keras.layers.Conv2D(4, 3, strides=8, padding="same")(inputs)
    outputs = {"classes": keras.layers.Conv2D(2, 1)(features), "boxes": keras.layers.Conv2D(4, 1)(features)}
    model = keras.Model(inputs, outputs)
    images = np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 3)).astype("float32")
    boxes, scores, labels = detection.detect(model, images)
    assert len(boxes) == 2 and all(b.dtype == np.float32 and b.shape[1:] == (4,) for b in boxes)
    kernel, bias = model.layers[1].get_weights()
    model.layers[1].set_weights([kernel * np.nan, bias])
    with pytest.raises(ValueError, match=r"Invalid value for argument `model`.*NaN or infinity.*diverge"):
        detection.detect(model, images)


def test_map_refuses_malformed_true_boxes_in_keras_form():
    boxes, labels, scores = [np.array([[10, 10, 30, 30]], np.float32)], [np.array([0])], [np.array([0.9])]
    for bad, received in [([boxes[0][:, :2]], r"an array of shape \(1, 2\) for image 0"),
                          ([boxes[0] * np.inf], "non-finite coordinates for image 0")]:  # fmt: skip
        with pytest.raises(ValueError, match=keras_error("true_boxes", received)):
            detection.mean_average_precision(bad, labels, boxes, scores, labels, 1)
    with pytest.raises(ValueError, match=keras_error("pred_labels", r"the labels \[3\] for image 0")):
        detection.mean_average_precision(boxes, labels, boxes, scores, [np.array([3])], 1)


def test_checked_detections_names_the_arguments_it_is_given():
    with pytest.raises(ValueError, match=keras_error("predictions[1]", "non-finite scores for image 0")):
        detection.checked_detections(0, [[1, 1, 5, 5]], [0], 1, "pred", [np.nan], names=("a", "b", "predictions[1]"))
    with pytest.raises(ValueError, match=r"argument `boxes`. Received: boxes='the box \[5.0, 1.0, 1.0, 5.0\]'\. "):
        detection.checked_detections(None, [[5, 1, 1, 5]], [0], 1, "true", names=("boxes", "labels", "scores"))


def test_show_scenes_draws_each_box_where_it_is_and_refuses_bad_predictions():
    import matplotlib.pyplot as plt

    items, labels, backgrounds = items_and_backgrounds()
    scenes = detection.make_scenes(items, labels, backgrounds, 2, [0, 1, 2], objects=(1, 2), sizes=(8, 30))
    predictions = ([b + 0.25 for b in scenes.boxes], [np.full(len(b), 0.9) for b in scenes.boxes], scenes.labels)
    figure = detection.show_scenes(scenes, 2, 2, predictions=predictions)
    drawn = [(*p.get_xy(), p.get_width(), p.get_height()) for ax in figure.axes for p in ax.patches]
    expected = []
    for truth, predicted in zip(scenes.boxes, predictions[0]):
        expected += [(x1 - 0.5, y1 - 0.5, x2 - x1, y2 - y1) for x1, y1, x2, y2 in truth]
        expected += [(x1 - 0.5, y1 - 0.5, x2 - x1, y2 - y1) for x1, y1, x2, y2 in predicted]
    assert drawn == expected  # xywh rectangles, half a pixel out: around the edge pixels
    plt.close(figure)
    with pytest.raises(ValueError, match=keras_error("predictions", r"3 parts of lengths \[1, 2, 2\]")):
        detection.show_scenes(scenes, 2, predictions=(predictions[0][:1], *predictions[1:]))
    nan_score = (predictions[0], [predictions[1][0], predictions[1][1] * np.nan], predictions[2])
    with pytest.raises(ValueError, match=r"argument `predictions\[1\]`. Received: .*non-finite scores for image 1"):
        detection.show_scenes(scenes, 2, predictions=nan_score)
    with pytest.raises(ValueError, match="Invalid value for argument `count`"):
        detection.show_scenes(scenes, 0)


def test_focal_and_box_losses_are_zero_or_small_for_right_answers():
    import keras

    heat = np.zeros((1, 4, 4, 2), np.float32)
    heat[0, 1, 2, 1] = 1
    good = keras.ops.convert_to_tensor(np.where(heat > 0, 12.0, -12.0).astype("float32"))
    bad = keras.ops.convert_to_tensor(np.where(heat > 0, -12.0, 12.0).astype("float32"))
    assert float(detection.focal_loss(heat, good)[0]) < 1e-6 < 1.0 < float(detection.focal_loss(heat, bad)[0])
    targets = np.zeros((1, 4, 4, 5), np.float32)
    targets[0, 1, 2] = (0.5, 0.5, 0.2, 0.3, 1)
    predicted = np.zeros((1, 4, 4, 4), np.float32)
    predicted[0, 1, 2] = (0.5, 0.5, 0.2, 0.4)  # only h is off, by 0.1; other cells do not count
    predicted[0, 0, 0] = 5
    assert float(detection.box_loss(targets, predicted)[0]) == pytest.approx(0.1, abs=1e-6)


def test_retinanet_with_random_weights_trains_one_step_for_two_classes():
    pytest.importorskip("keras_hub")
    import keras

    keras.utils.set_random_seed(0)
    model = detection.retinanet(num_classes=2)  # ResNet-50 + FPN, built from its config: no download
    assert model.num_classes == 2 and model.classification_head.output_filters == 9 * 2
    model.compile(optimizer=keras.optimizers.Adam(1e-4), run_eagerly=True)  # tracing ResNet-50 takes longer
    images = np.random.default_rng(0).uniform(0, 255, (2, 128, 128, 3)).astype("float32")
    y = {
        "boxes": np.array([[[10, 10, 60, 70], [70, 20, 120, 90]], [[30, 30, 90, 100], [0, 0, 0, 0]]], "float32"),
        "labels": np.array([[0, 1], [1, -1]], "float32"),  # -1 pads
    }
    before = [w.numpy().copy() for w in model.classification_head.weights]
    history = model.fit(images, y, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    after = model.classification_head.weights
    assert any(not np.allclose(b, a.numpy()) for b, a in zip(before, after))


@pytest.mark.parametrize(
    "resize",
    [{"pad_to_aspect_ratio": True}, {"crop_to_aspect_ratio": True}, {}],
    ids=["pad", "crop", "stretch"],
)
def test_to_input_frame_inverts_the_box_transform_of_keras_resizing(resize):
    import keras

    boxes = np.array([[[20, 10, 50, 40], [60, 15, 88, 45]]], np.float32)  # inside the centre crop too
    images = np.zeros((1, 60, 100, 3), np.float32)  # 5:3 into 4:3: every mode moves the boxes differently
    layer = keras.layers.Resizing(96, 128, bounding_box_format="xyxy", **resize)
    out = layer({"images": images, "bounding_boxes": {"boxes": boxes, "labels": np.zeros((1, 2), np.float32)}})
    resized = keras.ops.convert_to_numpy(out["bounding_boxes"]["boxes"])
    assert not np.allclose(resized, boxes, atol=1)  # the resize moved them
    back = detection.to_input_frame(resized, (60, 100), (96, 128), **resize)
    np.testing.assert_allclose(back, boxes, atol=1e-3)


def _small_retinanet_preset(folder, input_size, resized):
    """A RetinaNet with a small ResNet, whose preprocessor resizes `input_size` images to `resized`."""
    import keras_hub

    encoder = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64, 16, 16, 16],
        stackwise_num_blocks=[1, 1, 1, 1], stackwise_num_strides=[1, 2, 2, 2], block_type="basic_block",
        image_shape=(None, None, 3),
    )  # fmt: skip
    backbone = keras_hub.models.RetinaNetBackbone(image_encoder=encoder, min_level=3, max_level=7, use_p5=False)
    converter = keras_hub.layers.RetinaNetImageConverter(
        image_size=(resized, resized), pad_to_aspect_ratio=True, crop_to_aspect_ratio=False, scale=1 / 255
    )  # as the COCO presets' converters: a centred pad to a square, then a resize
    preprocessor = keras_hub.models.RetinaNetObjectDetectorPreprocessor(image_converter=converter)
    coco = keras_hub.models.RetinaNetObjectDetector(backbone=backbone, num_classes=3, preprocessor=preprocessor)
    coco.save_to_preset(str(folder))
    return folder


def test_retinanet_from_a_local_preset_needs_no_network_and_detects_in_the_input_frame(tmp_path, monkeypatch):
    pytest.importorskip("keras_hub")
    import keras

    monkeypatch.setenv("TLKIT_NO_NETWORK", "1")  # a download would be refused: the folder must be enough
    preset = _small_retinanet_preset(tmp_path / "preset", 64, 128)
    keras.mixed_precision.set_global_policy("mixed_float16")  # as `setup` does on a GPU
    try:
        model = detection.retinanet(2, str(preset))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.preprocessor.image_converter.image_size == (128, 128) and model.num_classes == 2
    assert model.backbone.compute_dtype == "float16"
    assert {t.dtype for t in model.outputs} == {"float32"}  # box deltas and class logits
    prediction = model.classification_head.prediction_layer
    kernel, bias = prediction.get_weights()
    prediction.set_weights([kernel, np.full_like(bias, 3.0)])  # every anchor scores ~0.95: there are detections
    small = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    # The same scenes at the preprocessor's size: the network sees the same pixels and predicts the same
    # boxes in its 128 px frame, so in the frames of the inputs the 64 px boxes are half the 128 px ones.
    large = keras.ops.convert_to_numpy(model.preprocessor.image_converter.resizing(small))
    raw = model.predict(small, verbose=0)
    boxes_small, scores_small, _ = detection.detect(model, small)
    boxes_large, scores_large, _ = detection.detect(model, large)
    assert all(len(b) > 10 for b in boxes_small)
    for b_small, b_large, s_small, s_large in zip(boxes_small, boxes_large, scores_small, scores_large):
        np.testing.assert_allclose(s_small, s_large, atol=1e-3)
        np.testing.assert_allclose(b_small, b_large / 2, atol=0.5)
        assert b_small.min() >= 0 and b_small.max() <= 64
    assert raw["boxes"][0][: raw["num_detections"][0]].max() > 64  # predict itself answers in the 128 px frame


def test_retinanet_preset_download_refused_with_the_fix(monkeypatch):
    pytest.importorskip("keras_hub")
    monkeypatch.setenv("TLKIT_NO_NETWORK", "1")
    with pytest.raises(ConnectionError, match="folder of a preset saved with `save_to_preset`"):
        detection.retinanet(2, "retinanet_resnet50_fpn_coco")
    with pytest.raises(ValueError, match="Invalid value for argument `image_size`"):
        detection.retinanet(2, image_size=256)  # no preset: no preprocessor to resize with


# ---------------------------------------------------------------------------- lesson 06's detector, at any cut

LESSON = Path(__file__).resolve().parents[1] / "notebooks" / "06_beyond_classification_detection.ipynb"
DETECTOR_CELLS = ("def backbone(", "GRID[0] * STRIDE", "def heads(", "def detector(", "def compile_detector(",
                  "def train(")  # fmt: skip


def lesson_06(**overrides) -> dict:
    """Runs the parameters cell and the cells that build and train lesson 06's detector, with `overrides`."""
    import math

    import keras
    import tensorflow as tf

    import tlkit

    cells = [c for c in json.loads(LESSON.read_text())["cells"] if c["cell_type"] == "code"]
    namespace = {"keras": keras, "math": math, "np": np, "tf": tf, "tlkit": tlkit}
    parameters = next(c for c in cells if "parameters" in c["metadata"].get("tags", []))
    exec("".join(parameters["source"]), namespace)
    namespace.update(overrides)
    for marker in DETECTOR_CELLS:
        found = [c for c in cells if marker in "".join(c["source"])]
        assert len(found) == 1, f"lesson 06 has {len(found)} code cells with {marker!r}; expected 1"
        exec("".join(found[0]["source"]), namespace)
    return namespace


def exercise_4() -> dict:
    """The `CUT` and `STRIDE` that lesson 06's exercise 4 asks for, read from the exercise's text."""
    texts = ["".join(c["source"]) for c in json.loads(LESSON.read_text())["cells"]]
    item = re.search(r"^4\. (.*)$", next(t for t in texts if "## Exercises" in t), re.MULTILINE).group(1)
    stride = re.search(r"STRIDE = (\d+)", item).group(1)
    return {"CUT": re.search(r'CUT = "([^"]+)"', item).group(1), "STRIDE": int(stride)}


def test_lesson_06_exercise_4_builds_trains_and_detects_at_its_cut():
    """Exercise 4 cuts later: a coarser grid with more features, which the heads read off the cut.

    (The lesson's own cut runs in the notebook itself, under nbval.)
    """
    lesson = lesson_06(BATCH_SIZE=4, **exercise_4())
    size, stride = lesson["IMAGE_SIZE"], lesson["STRIDE"]
    assert lesson["GRID"] == (size // stride, size // stride, 128)  # conv_pw_11: 512 x alpha 0.25 features
    items, labels, _ = items_and_backgrounds()
    backgrounds = np.random.default_rng(1).integers(0, 60, (3, size, size, 3), dtype=np.uint8)
    scenes = detection.make_scenes(items, labels, backgrounds, 8, [0, 1], sizes=(24, 48), stride=stride)
    model = lesson["detector"](lesson["backbone"](weights=None), lesson["heads"](2))  # random weights: no assets
    lesson["compile_detector"](model, 1e-3)
    model.run_eagerly = True  # a few steps: tracing would cost more than running
    curve = lesson["train"](model, scenes.images.astype("float32"), scenes, 4, seed=0)
    assert list(curve) == [2, 4] and all(np.isfinite(list(curve.values())))  # the loss of every 2 steps
    outputs = model(scenes.images[:2].astype("float32"))
    shapes = {k: tuple(v.shape) for k, v in outputs.items()}
    assert shapes == {"classes": (2, *lesson["GRID"][:2], 2), "boxes": (2, *lesson["GRID"][:2], 4)}
    boxes, scores, found = detection.detect(model, scenes.images[:2])
    assert len(boxes) == len(scores) == len(found) == 2 and all(b.shape[1:] == (4,) for b in boxes)


def test_lesson_06_names_the_stride_its_cut_makes():
    cut = exercise_4()["CUT"]
    with pytest.raises(ValueError, match=r"Invalid STRIDE: 8\. .* Expected STRIDE = 16"):
        lesson_06(CUT=cut, STRIDE=8)
