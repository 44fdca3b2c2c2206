"""tlkit.detection: exact boxes, the grid encoding, decoding, mAP by pycocotools, KerasHub's RetinaNet."""

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
