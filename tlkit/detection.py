"""Object detection on a feature grid: scenes with exact boxes, targets, decoding and mAP.

The detection lesson pastes Fashion-MNIST items (black backgrounds, so their masks are clean) onto
real photos, so every box is known to the pixel. A single-stage detector predicts, on a grid of
cells `stride` pixels wide, a score per class and a box for each cell (CenterNet-style: the cell that
holds an object's centre is responsible for it). This module holds what the lesson reuses: the scene
generator, encoding boxes onto the grid, decoding predictions back into boxes, the losses, mean average
precision by pycocotools, and the KerasHub RetinaNet of the full profile.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import keras
import numpy as np
from keras.utils import bounding_boxes
from PIL import Image

from tlkit.checks import check_labels
from tlkit.data import decode_images, index_fashion_mnist, index_image_folder, local_dataset_dir
from tlkit.errors import check_int, check_number, invalid
from tlkit.network import network_available

if TYPE_CHECKING:
    from matplotlib.figure import Figure

BOX_FORMAT = "xyxy"  # pixels: left, top, right, bottom; right and bottom are exclusive edges


def _convert_boxes(boxes: np.ndarray, source: str, target: str) -> np.ndarray:
    """`keras.utils.bounding_boxes.convert_format` on NumPy boxes, computed in their own float dtype.

    Keras computes in float32 unless told otherwise; in the boxes' dtype (float64 for anything but
    float32) its arithmetic gives the same bits as the NumPy expressions it replaced.
    """
    boxes = np.asarray(boxes)
    dtype = boxes.dtype if boxes.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    converted = bounding_boxes.convert_format(boxes.astype(dtype), source, target, dtype=dtype.name)
    return np.asarray(keras.ops.convert_to_numpy(converted), dtype)


def _convert_each(boxes: Sequence[np.ndarray], source: str, target: str) -> list[np.ndarray]:
    """`_convert_boxes` for one `(n, 4)` array an image, in one call for all (a call costs about a millisecond)."""
    if not boxes:
        return []
    converted = _convert_boxes(np.concatenate(boxes), source, target)
    return np.split(converted, np.cumsum([len(b) for b in boxes])[:-1])


@dataclasses.dataclass
class Scenes:
    """Images with their boxes.

    Attributes:
        images: uint8 array (N, size, size, 3).
        boxes: one float32 array (k, 4) a scene, `xyxy` in pixels.
        labels: one int32 array (k,) a scene, indices into `class_names`.
        class_names: the names of the classes.
    """

    images: np.ndarray
    boxes: list[np.ndarray]
    labels: list[np.ndarray]
    class_names: list[str]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index) -> Scenes:
        indices = np.arange(len(self))[index]
        return Scenes(self.images[indices], [self.boxes[i] for i in indices], [self.labels[i] for i in indices],
                      self.class_names)  # fmt: skip

    def __repr__(self) -> str:
        objects = sum(len(b) for b in self.boxes)
        return f"Scenes({len(self)} images of {self.images.shape[1]} px, {objects} objects, classes {self.class_names})"


def _tight_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def make_scenes(
    items: np.ndarray,
    item_labels: np.ndarray,
    backgrounds: np.ndarray,
    count: int,
    classes: Sequence[int],
    class_names: Sequence[str] | None = None,
    objects: tuple[int, int] = (1, 3),
    sizes: tuple[int, int] = (24, 56),
    stride: int = 8,
    threshold: int = 20,
    seed: int = 0,
) -> Scenes:
    """Pastes grayscale items with black backgrounds at random places and scales onto photos.

    Items do not overlap, and no two object centres fall into the same `stride`-pixel grid cell, so
    every object has its own cell. A pixel belongs to an item where the resized item is brighter
    than `threshold`; the box is the tight box of those pixels, exact to the pixel.

    Args:
        items: uint8 (n, h, w) grayscale images with black backgrounds (e.g. Fashion-MNIST).
        item_labels: (n,) their labels.
        backgrounds: uint8 (m, size, size, 3) photos; each scene draws one.
        count: the number of scenes.
        classes: the item labels to use; scene label i is `classes[i]`.
        class_names: names for the scene labels (default: the labels as text).
        objects: the least and the most objects a scene.
        sizes: the least and the most side, in pixels, of a pasted item.
        stride: the grid cell size of the detector that will read the scenes.
        threshold: the brightness above which an item pixel counts as the object.
        seed: seeds the whole draw.

    Returns:
        `Scenes`.
    """
    check_int("count", count, 1)
    if backgrounds.ndim != 4 or backgrounds.shape[1] != backgrounds.shape[2] or backgrounds.shape[3] != 3:
        raise invalid("backgrounds", backgrounds.shape, "square RGB photos of shape (m, size, size, 3)")
    size = backgrounds.shape[1]
    if not (1 <= objects[0] <= objects[1]):
        raise invalid("objects", objects, "(least, most) with 1 <= least <= most")
    if not (stride <= sizes[0] <= sizes[1] <= size):
        raise invalid("sizes", sizes, f"(least, most) with stride={stride} <= least <= most <= image size {size}")
    pools = [np.flatnonzero(np.asarray(item_labels) == c) for c in classes]
    missing = [c for c, pool in zip(classes, pools) if len(pool) == 0]
    if missing or len(classes) == 0:
        raise invalid("classes", list(classes), f"labels present in `item_labels` (absent: {missing})")
    rng = np.random.default_rng(seed)
    images = backgrounds[rng.integers(len(backgrounds), size=count)].copy()
    all_boxes, all_labels = [], []
    for image in images:
        boxes, labels, squares, cells = [], [], [], set()
        wanted = rng.integers(objects[0], objects[1] + 1)
        for _ in range(50 * wanted):  # placements are drawn until `wanted` fit
            if len(boxes) == wanted:
                break
            label = int(rng.integers(len(classes)))
            item = items[rng.choice(pools[label])]
            side = int(rng.integers(sizes[0], sizes[1] + 1))
            x, y = (int(v) for v in rng.integers(0, size - side + 1, size=2))
            if any(x < sx + ss and sx < x + side and y < sy + ss and sy < y + side for sx, sy, ss in squares):
                continue
            resized = np.asarray(Image.fromarray(item).resize((side, side), Image.BILINEAR))
            mask = resized > threshold
            if not mask.any():
                continue
            left, top, right, bottom = _tight_box(mask)
            box = (x + left, y + top, x + right, y + bottom)
            cell = (int((box[0] + box[2]) / 2 // stride), int((box[1] + box[3]) / 2 // stride))
            if cell in cells:
                continue
            region = image[y : y + side, x : x + side]
            region[mask] = resized[mask, None]
            squares.append((x, y, side))
            cells.add(cell)
            boxes.append(box)
            labels.append(label)
        all_boxes.append(np.asarray(boxes, np.float32).reshape(-1, 4))
        all_labels.append(np.asarray(labels, np.int32))
    names = list(class_names) if class_names is not None else [str(c) for c in classes]
    return Scenes(images, all_boxes, all_labels, names)


@functools.lru_cache(maxsize=4)
def _backgrounds(image_size: int) -> np.ndarray:
    index = index_image_folder(local_dataset_dir("caltech101"), ["BACKGROUND_Google", "Faces"])
    paths = [p for p, label in zip(index.items, index.labels) if label == 0]
    images, _ = decode_images(paths, image_size)
    return images


@functools.lru_cache(maxsize=1)
def _fashion_mnist():
    index = index_fashion_mnist()
    return index.items, index.labels, index.class_names


def detection_scenes(
    classes: Sequence[str],
    count: int,
    split: str = "train",
    image_size: int = 128,
    seed: int = 0,
    **kwargs,
) -> Scenes:
    """Fashion-MNIST items of `classes` on Caltech-101 `BACKGROUND_Google` photos, with exact boxes.

    The `"train"` split takes the Fashion-MNIST training images and the first half of the photos,
    `"test"` the Fashion-MNIST test images and the other half: no item and no photo is in both.

    Args:
        classes: Fashion-MNIST class names, e.g. `["Trouser", "Bag"]`.
        count: the number of scenes.
        split: `"train"` or `"test"`.
        image_size: the side of the square scenes in pixels.
        seed: seeds the draw.
        **kwargs: passed to `make_scenes` (`objects`, `sizes`, `stride`, ...).

    Returns:
        `Scenes`, labelled 0, 1, ... in the order of `classes`.
    """
    if split not in ("train", "test"):
        raise invalid("split", split, "'train' or 'test'")
    items, labels, names = _fashion_mnist()
    unknown = [c for c in classes if c not in names]
    if unknown or len(set(classes)) != len(classes) or not classes:
        raise invalid("classes", list(classes), f"distinct Fashion-MNIST class names: {', '.join(names)}")
    photos = _backgrounds(image_size)
    half = len(photos) // 2
    part = slice(0, 60000) if split == "train" else slice(60000, None)
    photos = photos[:half] if split == "train" else photos[half:]
    ids = [names.index(c) for c in classes]
    seed = seed * 2 + (split == "test")  # the two splits never share a draw
    return make_scenes(items[part], labels[part], photos, count, ids, list(classes), seed=seed, **kwargs)


# ---------------------------------------------------------------------------- the grid


def _check_grid(image_size: int, stride: int) -> None:
    check_int("image_size", image_size, 1)
    check_int("stride", stride, 1)
    if image_size % stride:
        raise invalid("stride", stride, f"a divisor of image_size={image_size}")


def _grid_boxes(
    image: int | None, boxes, labels, num_classes: int, image_size: int, names: tuple[str, str, str]
) -> tuple[np.ndarray, np.ndarray]:
    """`checked_detections` of true boxes, then what the grid also needs: float32 boxes of positive
    size inside the image."""
    b, lab, _ = checked_detections(image, boxes, labels, num_classes, "true", names=names)
    b = b.astype(np.float32)  # as `encode` always computed
    bad = (b[:, 2:] <= b[:, :2]).any(axis=1) | (b < 0).any(axis=1) | (b > image_size).any(axis=1)
    if bad.any():
        where = "" if image is None else f" for image {image}"
        raise invalid(names[0], f"the box {b[bad][0].tolist()}{where}",
                      f"xyxy boxes with left < right, top < bottom, inside 0-{image_size}")  # fmt: skip
    return b, lab


def _centres(boxes: Sequence[np.ndarray]) -> list[np.ndarray]:
    """float32 `center_xywh` of float32 `xyxy` boxes, one array an image, by one `convert_format` call.

    Keras computes the centre as x1 + (x2 - x1) / 2; in float64 that is exactly (x1 + x2) / 2 for
    float32 corners, so rounded once to float32 it is what `encode` computed in float32 before.
    """
    centred = _convert_each([b.astype(np.float64) for b in boxes], BOX_FORMAT, "center_xywh")
    return [c.astype(np.float32) for c in centred]


def _grid_targets(
    centred: np.ndarray, labels: np.ndarray, num_classes: int, image_size: int, stride: int
) -> tuple[np.ndarray, np.ndarray]:
    """The heatmap and box targets of one image's `center_xywh` pixel boxes."""
    grid = image_size // stride
    heatmap = np.zeros((grid, grid, num_classes), np.float32)
    targets = np.zeros((grid, grid, 5), np.float32)
    for (cx, cy, w, h), label in zip(centred, labels):
        cx, cy = cx / stride, cy / stride  # in cells
        col, row = min(int(cx), grid - 1), min(int(cy), grid - 1)
        if targets[row, col, 4]:
            raise ValueError(
                f"Two boxes have their centres in grid cell (row {row}, col {col}); each cell holds one box. "
                "Use scenes whose centres fall into distinct cells (`make_scenes` draws them so)."
            )
        heatmap[row, col, label] = 1.0
        targets[row, col] = (cx - col, cy - row, w / image_size, h / image_size, 1.0)
    return heatmap, targets


def encode(
    boxes: np.ndarray, labels: np.ndarray, num_classes: int, image_size: int, stride: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """Encodes one image's boxes onto the detector's grid.

    The cell that holds a box's centre gets the box: a 1 in its class channel, and
    `(dx, dy, w, h)`: the centre's offset inside the cell (0-1) and the box size as a fraction
    of the image. The fifth box channel marks the cells that hold a box. The centres and sizes
    come from `keras.utils.bounding_boxes.convert_format(boxes, "xyxy", "center_xywh")`.

    Args:
        boxes: `(n, 4)` boxes, `xyxy` pixels, of positive size and inside the image (`(0, 4)`
            for an image without objects).
        labels: `n` class indices in `[0, num_classes)`.
        num_classes: the number of classes (channels of the heatmap).
        image_size: the side of the square image in pixels.
        stride: the side of a grid cell in pixels; divides `image_size`.

    Returns:
        `heatmap` (grid, grid, num_classes) and `box_targets` (grid, grid, 5), float32, where
        `grid = image_size // stride`.

    Raises:
        ValueError: before any encoding, for boxes that are not a finite `(n, 4)` array, not `xyxy`
            (x2 < x1), of no width or height, or outside the image, labels outside the classes or
            not one per box, or two boxes whose centres share a cell.

    Example:

    ```python
    heatmap, targets = tlkit.detection.encode([[8, 16, 40, 48]], [1], num_classes=2, image_size=64)
    heatmap[4, 3]  # [0., 1.]: the cell (row 4, col 3) holds the centre (24, 32) of a class-1 box
    targets[4, 3]  # [0., 0., 0.5, 0.5, 1.]: at the cell's corner, half the image wide and high
    ```
    """
    _check_grid(image_size, stride)
    boxes, labels = _grid_boxes(None, boxes, labels, num_classes, image_size, ("boxes", "labels", "scores"))
    return _grid_targets(_centres([boxes])[0], labels, num_classes, image_size, stride)


def encode_scenes(scenes: Scenes, stride: int = 8) -> dict[str, np.ndarray]:
    """`encode` for every scene, the targets of a grid detector's `fit`.

    Every scene is checked before any is encoded, and the boxes of all scenes are converted in one
    call of `keras.utils.bounding_boxes.convert_format`.

    Args:
        scenes: `Scenes` (e.g. from `detection_scenes`).
        stride: the side of a grid cell in pixels; divides the scenes' size.

    Returns:
        `{"classes": (N, g, g, C), "boxes": (N, g, g, 5)}`, float32, as `encode` gives each scene.

    Raises:
        ValueError: naming the scene, for the boxes and labels that `encode` refuses.

    Example:

    ```python
    targets = tlkit.detection.encode_scenes(scenes, stride=8)
    model.fit(scenes.images, targets, epochs=5)  # a model with outputs named "classes" and "boxes"
    ```
    """
    size, num_classes = scenes.images.shape[1], len(scenes.class_names)
    _check_grid(size, stride)
    names = ("scenes.boxes", "scenes.labels", "scores")
    given = enumerate(zip(scenes.boxes, scenes.labels))
    checked = [_grid_boxes(i, b, lab, num_classes, size, names) for i, (b, lab) in given]
    centred = _centres([b for b, _ in checked])
    pairs = [_grid_targets(c, lab, num_classes, size, stride) for c, (_, lab) in zip(centred, checked)]
    return {"classes": np.stack([h for h, _ in pairs]), "boxes": np.stack([t for _, t in pairs])}


def _peaks(scores: np.ndarray) -> np.ndarray:
    """Where a cell's score is the highest of its 3x3 neighbourhood (per class)."""
    padded = np.pad(scores, ((1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    g1, g2 = scores.shape[:2]
    windows = np.stack([padded[i : i + g1, j : j + g2] for i in range(3) for j in range(3)])
    return scores >= windows.max(axis=0)


def decode(
    class_scores: np.ndarray,
    box_outputs: np.ndarray,
    image_size: int,
    min_score: float = 0.01,
    max_detections: int = 100,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Turns one image's grid outputs into boxes: the inverse of `encode`.

    A detection is a cell and class whose score is at least `min_score` and the highest in its
    3x3 neighbourhood (the grid's stand-in for non-maximum suppression, as in CenterNet).

    The boxes are converted from `center_xywh` by `keras.utils.bounding_boxes.convert_format`.

    Args:
        class_scores: (grid, grid, C) probabilities (sigmoid of the class logits) or a heatmap.
        box_outputs: (grid, grid, 4 or 5) `(dx, dy, w, h)` per cell.
        image_size: the side of the image in pixels.
        min_score: the least score of a detection.
        max_detections: the most detections kept, the highest scores.

    Returns:
        `boxes` (k, 4) xyxy pixels, `scores` (k,), `labels` (k,), highest score first.

    Raises:
        ValueError: for outputs of other shapes, or non-finite scores or boxes (a diverged training).

    Example:

    ```python
    heatmap, targets = tlkit.detection.encode([[8, 16, 40, 48]], [1], num_classes=2, image_size=64)
    boxes, scores, labels = tlkit.detection.decode(heatmap, targets, 64)  # [[8, 16, 40, 48]], [1.], [1]
    ```
    """
    centred, scores, labels = _grid_detections(class_scores, box_outputs, image_size, min_score, max_detections)
    return _convert_boxes(centred, "center_xywh", BOX_FORMAT).astype(np.float32), scores, labels


def _grid_detections(
    class_scores, box_outputs, image_size: int, min_score: float, max_detections: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`decode` up to the boxes: their centres and sizes, `center_xywh` pixels (float64)."""
    class_scores, box_outputs = np.asarray(class_scores), np.asarray(box_outputs)
    if class_scores.ndim != 3:
        raise invalid("class_scores", f"an array of shape {class_scores.shape}", "(grid, grid, num_classes) scores")
    if box_outputs.ndim != 3 or box_outputs.shape[:2] != class_scores.shape[:2] or box_outputs.shape[2] < 4:
        raise invalid("box_outputs", box_outputs.shape, f"(grid, grid, 4) beside class_scores {class_scores.shape}")
    diverged = "Did training diverge (a NaN loss)? Lower the learning rate, or check the images for NaN."
    if not np.isfinite(class_scores).all():
        raise invalid("class_scores", "scores with NaN or infinity", "finite scores", diverged)
    if not np.isfinite(box_outputs[..., :4]).all():
        raise invalid("box_outputs", "boxes with NaN or infinity", "finite (dx, dy, w, h)", diverged)
    check_int("image_size", image_size, 1)
    check_number("min_score", min_score)
    check_int("max_detections", max_detections, 1)
    grid = class_scores.shape[0]
    stride = image_size / grid
    keep = _peaks(class_scores) & (class_scores >= min_score)
    rows, cols, labels = np.nonzero(keep)
    scores = class_scores[rows, cols, labels]
    order = np.argsort(-scores, kind="stable")[:max_detections]
    rows, cols, labels, scores = rows[order], cols[order], labels[order], scores[order]
    dx, dy, w, h = (box_outputs[rows, cols, i] for i in range(4))
    cx, cy = (cols + dx) * stride, (rows + dy) * stride
    w, h = w * image_size, h * image_size
    centred = np.stack([cx, cy, w, h], axis=1).astype(np.float64)  # cx is float64 already, as was `cx - w / 2`
    return centred, scores.astype(np.float32), labels.astype(np.int32)


# ---------------------------------------------------------------------------- losses


def focal_loss(y_true, y_pred, alpha: float = 0.25, gamma: float = 2.0):
    """Sigmoid focal loss on class logits (RetinaNet's, `keras.losses.binary_focal_crossentropy`),
    summed per image over cells and classes and divided by the number of objects in the image
    (at least 1), as CenterNet normalises it."""
    y_true = keras.ops.cast(y_true, y_pred.dtype)
    per_cell = keras.losses.binary_focal_crossentropy(
        y_true, y_pred, apply_class_balancing=True, alpha=alpha, gamma=gamma, from_logits=True
    )  # the mean over the classes of each cell
    loss = keras.ops.sum(per_cell, axis=(1, 2)) * keras.ops.shape(y_pred)[-1]
    return loss / keras.ops.maximum(keras.ops.sum(y_true, axis=(1, 2, 3)), 1.0)


def box_loss(y_true, y_pred):
    """L1 distance of `(dx, dy, w, h)` on the cells that hold a box, averaged per image."""
    mask = y_true[..., 4:5]
    loss = keras.ops.sum(mask * keras.ops.abs(y_true[..., :4] - y_pred), axis=(1, 2, 3))
    return loss / keras.ops.maximum(keras.ops.sum(mask, axis=(1, 2, 3)), 1.0)


# ---------------------------------------------------------------------------- evaluation


def checked_detections(
    image: int | None,
    boxes,
    labels,
    num_classes: int,
    role: str,
    scores=None,
    names: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One image's boxes, labels (and scores) as arrays, checked before any metric uses them.

    Args:
        image: the image's index, named in the error (None for a function of one image).
        boxes: `(n, 4)` boxes, `xyxy` pixels (an empty list for none). True boxes must have
            x2 >= x1 and y2 >= y1. A predicted box may be inverted (a head that has not learnt
            sizes predicts negative ones): COCOeval gives it a negative area, outside every
            area range, and so ignores it, as it did before this check.
        labels: `n` integer classes in `[0, num_classes)`.
        num_classes: the number of classes.
        role: `"true"` or `"pred"`, the prefix of the argument names in the error.
        scores: `n` finite scores (predictions only).
        names: the argument names the errors give for the boxes, the labels and the scores
            (default `{role}_boxes`, `{role}_labels`, `{role}_scores`).

    Returns:
        `(boxes, labels, scores)`: float `(n, 4)`, int `(n,)`, float `(n,)` or None.

    Example:

    ```python
    boxes, labels, _ = checked_detections(0, [[2, 2, 10, 12]], [1], 3, "true")  # (1, 4), [1]
    checked_detections(0, [[10, 2, 2, 12]], [1], 3, "true")  # ValueError: a true box with x2 < x1
    ```
    """
    box_name, label_name, score_name = names or (f"{role}_boxes", f"{role}_labels", f"{role}_scores")
    where = "" if image is None else f" for image {image}"
    try:
        b = np.asarray(boxes, float)
    except (TypeError, ValueError):  # ragged lists, text
        raise invalid(box_name, f"{str(boxes)[:60]}{where}", "(n, 4) numbers per image, xyxy boxes") from None
    b = b.reshape(0, 4) if b.size == 0 else b
    if b.ndim != 2 or b.shape[1] != 4:
        raise invalid(box_name, f"an array of shape {b.shape}{where}", "(n, 4) boxes per image, xyxy")
    if not np.isfinite(b).all():
        raise invalid(box_name, f"non-finite coordinates{where}", "finite xyxy pixel coordinates")
    if role == "true" and ((b[:, 2] < b[:, 0]).any() or (b[:, 3] < b[:, 1]).any()):
        first = b[(b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1])][0].tolist()
        raise invalid(
            box_name, f"the box {first}{where}", "xyxy boxes, x2 >= x1 and y2 >= y1",
            "Boxes in another format (xywh, yxyx)? keras.utils.bounding_boxes.convert_format converts them.",
        )  # fmt: skip
    lab = np.asarray(labels).reshape(-1)
    if len(lab) != len(b):
        raise invalid(label_name, f"{len(lab)} labels{where}", f"one per box ({len(b)} boxes)")
    if len(lab):  # an image may have no boxes; check_labels refuses empty labels
        try:
            check_labels(lab, num_classes, role=role + ("" if image is None else f" (image {image})"),
                         name="the detector")  # fmt: skip
        except ValueError as error:  # the package's one label check, in the form of every argument error
            shown = f"{lab[:6].tolist()}{'...' if len(lab) > 6 else ''}"
            raise invalid(label_name, f"the labels {shown}{where}", f"integer class indices in [0, {num_classes})",
                          str(error)) from None  # fmt: skip
    if scores is None:
        return b, lab.astype(int), None
    try:
        s = np.asarray(scores, float).reshape(-1)
    except (TypeError, ValueError):
        raise invalid(score_name, f"{str(scores)[:60]}{where}", "one number per box") from None
    if len(s) != len(b):
        raise invalid(score_name, f"{len(s)} scores{where}", f"one per box ({len(b)} boxes)")
    if not np.isfinite(s).all():
        raise invalid(
            score_name, f"non-finite scores{where}", "finite scores",
            "A NaN score would sort anywhere and make the mAP meaningless: did training diverge?",
        )  # fmt: skip
    return b, lab.astype(int), s


def _coco_ground_truth(boxes, labels, num_classes):
    from pycocotools.coco import COCO

    checked = [checked_detections(i, b, lab, num_classes, "true") for i, (b, lab) in enumerate(zip(boxes, labels))]
    converted = _convert_each([b for b, _, _ in checked], BOX_FORMAT, "xywh")
    annotations = []
    for image_id, ((_, lab, _), xywh) in enumerate(zip(checked, converted)):
        for (x, y, w, h), c in zip(xywh, lab):
            box = {"bbox": [x, y, w, h], "area": w * h, "iscrowd": 0}  # COCO's boxes are xywh
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(c), **box})
    coco = COCO()
    coco.dataset = {"images": [{"id": i} for i in range(len(boxes))], "annotations": annotations,
                    "categories": [{"id": c} for c in range(num_classes)]}  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def mean_average_precision(
    true_boxes: Sequence[np.ndarray],
    true_labels: Sequence[np.ndarray],
    pred_boxes: Sequence[np.ndarray],
    pred_scores: Sequence[np.ndarray],
    pred_labels: Sequence[np.ndarray],
    num_classes: int,
    iou: float = 0.5,
) -> float:
    """Mean average precision at one IoU threshold, computed by pycocotools' `COCOeval`.

    COCO's 101-point interpolated precision, averaged over the classes that have objects
    (COCO's AP50 when `iou=0.5`). Boxes are `xyxy` pixels, one array per image.

    Args:
        true_boxes, true_labels: per image, the `(n, 4)` true boxes and their `n` classes.
        pred_boxes, pred_scores, pred_labels: per image, the predicted boxes, their scores and classes
            (what `detect` returns).
        num_classes: the number of classes; every label lies in `[0, num_classes)`.
        iou: the overlap from which a prediction counts as a hit.

    Returns:
        mAP in 0-1 (0.0 when there are no predictions at all).

    Raises:
        ValueError: before any scoring, for boxes that are not finite `(n, 4)` arrays, true boxes
            with x2 < x1 or y2 < y1, labels outside the classes, non-finite scores, or counts
            that disagree.

    Example:

    ```python
    boxes, labels = [np.array([[10, 10, 30, 30]])], [np.array([0])]
    tlkit.detection.mean_average_precision(boxes, labels, boxes, [np.array([0.9])], labels, 1)  # 1.0
    ```
    """
    from pycocotools.cocoeval import COCOeval

    lengths = {len(true_boxes), len(true_labels), len(pred_boxes), len(pred_scores), len(pred_labels)}
    if len(lengths) != 1:
        raise invalid("pred_boxes", f"lists of lengths {sorted(lengths)}", "one entry per image in every argument")
    if not 0 < iou < 1:
        raise invalid("iou", iou, "a threshold between 0 and 1")
    check_int("num_classes", num_classes, minimum=1)
    truth = _coco_ground_truth(true_boxes, true_labels, num_classes)
    predictions = [checked_detections(i, b, lab, num_classes, "pred", s)
                   for i, (b, s, lab) in enumerate(zip(pred_boxes, pred_scores, pred_labels))]  # fmt: skip
    detections = []
    converted = _convert_each([b for b, _, _ in predictions], BOX_FORMAT, "xywh")
    for image_id, ((_, lab, s), xywh) in enumerate(zip(predictions, converted)):
        for (x, y, w, h), score, c in zip(xywh, s, lab):
            detections.append({"image_id": image_id, "category_id": int(c), "bbox": [x, y, w, h],
                               "score": float(score)})  # fmt: skip
    if not detections or not truth.dataset["annotations"]:
        return 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        result = truth.loadRes(detections)
        evaluation = COCOeval(truth, result, "bbox")
        evaluation.params.iouThrs = np.array([iou])
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return float(max(evaluation.stats[0], 0.0))  # stats[0]: AP over params.iouThrs, all areas, 100 detections


def detect(model: keras.Model, images: np.ndarray, min_score: float = 0.01, batch_size: int = 64):
    """Runs a detector on `images` and returns its boxes in the frame of `images`.

    Two kinds of detector are read: a grid detector with outputs `{"classes": logits, "boxes": ...}`
    (decoded here by `decode`), and a KerasHub object detector such as `retinanet`, whose `predict`
    returns boxes in the frame of the images *after its preprocessor* (the COCO presets resize every
    image to 800 x 800). Those boxes are mapped back through the preprocessor's resize, so that
    both kinds can be compared with the true boxes of `images` as they are.

    Args:
        model: a grid detector or a KerasHub object detector.
        images: (N, height, width, 3) images, as the true boxes are drawn on them.
        min_score: predictions scoring lower are left out.
        batch_size: images a `predict` batch.

    Returns:
        Lists of `boxes` (xyxy pixels of `images`), `scores` and `labels`, one array per image.

    Raises:
        ValueError: when a grid detector's outputs are not finite (a diverged training).
    """
    outputs = model.predict(images, batch_size=batch_size, verbose=0)
    if "num_detections" in outputs:  # a KerasHub detector: decoded and suppressed by the model
        return _kerashub_detections(model, outputs, images.shape[1:3], min_score)
    logits, box_outputs = np.asarray(outputs["classes"], np.float32), np.asarray(outputs["boxes"])
    if not (np.isfinite(logits).all() and np.isfinite(box_outputs).all()):
        raise invalid("model", "a detector whose outputs hold NaN or infinity", "finite class logits and boxes",
                      "Did training diverge (a NaN loss)? Lower the learning rate, or check the images.")  # fmt: skip
    scores = 1 / (1 + np.exp(-logits))
    found = [_grid_detections(s, b, images.shape[1], min_score, 100) for s, b in zip(scores, box_outputs)]
    boxes = _convert_each([c for c, _, _ in found], "center_xywh", BOX_FORMAT)  # one call for all images
    return [b.astype(np.float32) for b in boxes], [f[1] for f in found], [f[2] for f in found]


def _kerashub_detections(model, outputs, input_size: tuple[int, int], min_score: float):
    """Slices each image's detections and maps their boxes into the frame of the input images."""
    converter = getattr(getattr(model, "preprocessor", None), "image_converter", None)
    resized = tuple(converter.image_size) if converter is not None and converter.image_size else tuple(input_size)
    boxes = bounding_boxes.convert_format(
        np.asarray(outputs["boxes"], np.float32), model.bounding_box_format, "xyxy", resized[0], resized[1]
    )  # in the frame of the preprocessed images
    boxes = np.asarray(keras.ops.convert_to_numpy(boxes), np.float32)
    if converter is not None and converter.image_size:
        boxes = to_input_frame(boxes, input_size, resized, converter.pad_to_aspect_ratio,
                               converter.crop_to_aspect_ratio)  # fmt: skip
    height, width = input_size
    limits = np.array([width, height, width, height], np.float32)
    found, kept = [], []
    for i, count in enumerate(np.asarray(outputs["num_detections"]).reshape(-1)):
        scores = np.asarray(outputs["confidence"][i][:count], np.float32)
        keep = scores >= min_score
        kept.append((np.clip(boxes[i][:count][keep], 0, limits), scores[keep]))
        found.append(np.asarray(outputs["labels"][i][:count])[keep].astype(np.int32))
    return [b for b, _ in kept], [s for _, s in kept], found


def to_input_frame(
    boxes: np.ndarray,
    input_size: tuple[int, int],
    resized: tuple[int, int],
    pad_to_aspect_ratio: bool = False,
    crop_to_aspect_ratio: bool = False,
) -> np.ndarray:
    """Maps xyxy boxes from resized images back to the images before `keras.layers.Resizing`.

    The inverse of the box transform of `keras.layers.Resizing(*resized, pad_to_aspect_ratio=...,
    crop_to_aspect_ratio=...)` (the resize of KerasHub's image converters): a stretch, a scale and a
    centred pad, or a scale and a centred crop.

    Args:
        boxes: (..., 4) xyxy pixels in the resized frame.
        input_size: `(height, width)` of the images before the resize.
        resized: `(height, width)` after it.

    Returns:
        The boxes, xyxy pixels in the frame of the input images.
    """
    (h, w), (target_h, target_w) = (float(v) for v in input_size), (float(v) for v in resized)
    boxes = np.asarray(boxes, np.float32)
    if pad_to_aspect_ratio:
        ratio = min(target_h / h, target_w / w)
        scale_x = scale_y = ratio
        x_off, y_off = (target_w - w * ratio) // 2, (target_h - h * ratio) // 2
    elif crop_to_aspect_ratio:
        source, target = w / h, target_w / target_h
        new_w, new_h = (target_h * source, target_h) if source > target else (target_w, target_w / source)
        scale_x, scale_y = new_w / w, new_h / h
        x_off, y_off = -((new_w - target_w) // 2), -((new_h - target_h) // 2)
    else:
        scale_x, scale_y, x_off, y_off = target_w / w, target_h / h, 0.0, 0.0
    offset = np.array([x_off, y_off, x_off, y_off], np.float32)
    scale = np.array([scale_x, scale_y, scale_x, scale_y], np.float32)
    return ((boxes - offset) / scale).astype(np.float32)


def evaluate_detector(model: keras.Model, scenes: Scenes, iou: float = 0.5, batch_size: int = 64) -> float:
    """mAP at `iou` of a detector (a grid detector or a KerasHub one, see `detect`) on `scenes` (pycocotools)."""
    boxes, scores, labels = detect(model, scenes.images, batch_size=batch_size)
    return mean_average_precision(scenes.boxes, scenes.labels, boxes, scores, labels, len(scenes.class_names), iou)


# ---------------------------------------------------------------------------- plots


def show_scenes(
    scenes: Scenes,
    count: int = 6,
    columns: int = 6,
    predictions: tuple[Sequence[np.ndarray], Sequence[np.ndarray], Sequence[np.ndarray]] | None = None,
) -> Figure:
    """Draws scenes with their boxes (and, if given, the predictions scoring at least 0.3, dashed).

    Args:
        scenes: `Scenes` (e.g. from `detection_scenes`).
        count: how many of the first scenes to draw (at most all of them).
        columns: scenes a row.
        predictions: `(boxes, scores, labels)` as `detect` returns them, one array per image of
            (at least) the drawn scenes; `xyxy` pixels.

    Returns:
        The matplotlib `Figure`.

    Raises:
        ValueError: before drawing, for boxes that are not finite `(n, 4)` arrays, true boxes with
            x2 < x1 or y2 < y1, labels outside the classes, non-finite scores, or too few predictions.

    Example:

    ```python
    predicted = tlkit.detection.detect(model, scenes.images[:6])
    tlkit.detection.show_scenes(scenes, 6, predictions=predicted)
    ```
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    check_int("count", count, 1)
    check_int("columns", columns, 1)
    count = min(count, len(scenes))
    num_classes = len(scenes.class_names)
    truth = [checked_detections(i, scenes.boxes[i], scenes.labels[i], num_classes, "true",
                                names=("scenes.boxes", "scenes.labels", "scores")) for i in range(count)]  # fmt: skip
    predicted = [(np.zeros((0, 4)), np.zeros(0, int), np.zeros(0))] * count  # (boxes, labels, scores)
    if predictions is not None:
        if len(predictions) != 3 or any(len(p) < count for p in predictions):
            raise invalid(
                "predictions",
                f"{len(predictions)} parts of lengths {[len(p) for p in predictions]}",
                f"(boxes, scores, labels) for at least the {count} scenes drawn, as `detect` returns",
            )
        boxes, scores, labels = predictions
        predicted = [checked_detections(i, boxes[i], labels[i], num_classes, "pred", scores[i],
                                        names=("predictions[0]", "predictions[2]", "predictions[1]"))
                     for i in range(count)]  # fmt: skip

    def xywh(checked, given) -> list[np.ndarray]:  # matplotlib's rectangles; in the float dtype the boxes came in
        dtype = np.result_type(np.float32, *(np.asarray(b).dtype for b in given))
        return _convert_each([b.astype(dtype) for b, _, _ in checked], BOX_FORMAT, "xywh")

    true_xywh = xywh(truth, scenes.boxes[:count])
    predicted_xywh = xywh(predicted, [] if predictions is None else predictions[0][:count])
    rows = -(-count // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2 * columns, 2 * rows), squeeze=False)
    colours = plt.get_cmap("tab10")
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= count:
            continue
        ax.imshow(scenes.images[i])
        for (x, y, w, h), c in zip(true_xywh[i], truth[i][1]):  # a pixel's edges lie half a pixel around it
            ax.add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, color=colours(c), lw=1.5))
            ax.text(x, y - 2, scenes.class_names[c], color=colours(c), fontsize=7)
        for (x, y, w, h), s in zip(predicted_xywh[i], predicted[i][2]):
            if s >= 0.3:
                ax.add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, color="w", ls="--"))
    figure.tight_layout()
    return figure


# ---------------------------------------------------------------------------- KerasHub RetinaNet

RESNET50 = {
    "input_conv_filters": [64],
    "input_conv_kernel_sizes": [7],
    "stackwise_num_filters": [64, 128, 256, 512],
    "stackwise_num_blocks": [3, 4, 6, 3],
    "stackwise_num_strides": [1, 2, 2, 2],
    "block_type": "bottleneck_block",
}  # the image encoder of KerasHub's "retinanet_resnet50_fpn_coco"


PRESET_HOSTS = {"hf://": "huggingface.co"}  # where a preset handle downloads from; Kaggle for the rest


@contextlib.contextmanager
def _global_policy(name: str):
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _load_detector_preset(preset: str, bounding_box_format: str):
    """`RetinaNetObjectDetector.from_preset`, with the download checked first and errors that name the fix."""
    import os

    import keras_hub

    local = os.path.isdir(os.path.expanduser(preset))  # a folder written by `save_to_preset`: no download
    host = next((h for prefix, h in PRESET_HOSTS.items() if preset.startswith(prefix)), "www.kaggle.com")
    fixes = (
        f"Check that this machine reaches {host}, or pass the folder of a preset saved with "
        "`save_to_preset` (e.g. on a machine with internet), or call `retinanet(num_classes)` without a preset "
        "for the same architecture with random weights (no download; lesson 06 skips it with TLKIT_PROFILE=offline)."
    )
    if not local and not network_available(host):
        raise ConnectionError(f"Cannot download the KerasHub preset {preset!r}: {host} does not answer. {fixes}")
    try:
        with warnings.catch_warnings():  # the preset's saved optimizer state is not used: the model is recompiled
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            return keras_hub.models.RetinaNetObjectDetector.from_preset(
                os.path.expanduser(preset) if local else preset, bounding_box_format=bounding_box_format
            )
    except Exception as error:  # noqa: BLE001 (kagglehub, HTTP and file errors alike: re-raised with the fix)
        raise RuntimeError(f"Could not load the KerasHub preset {preset!r} ({type(error).__name__}: {error}). "
                           f"Expected a KerasHub RetinaNet preset name or folder. {fixes}") from error  # fmt: skip


def retinanet(
    num_classes: int,
    preset: str | None = None,
    bounding_box_format: str = "xyxy",
    image_size: int | None = None,
):
    """KerasHub's RetinaNet (ResNet-50 + FPN) for `num_classes` classes.

    With a `preset` (e.g. `"retinanet_resnet50_fpn_coco"`, downloaded once, or the folder of a preset
    saved with `save_to_preset`, which needs no network): the COCO-trained backbone, feature pyramid
    and box head, the preset's preprocessor, and a new classification head for `num_classes`.
    Without one: the same architecture with random weights and no preprocessor (no download).

    Under mixed precision the network computes in float16 and its outputs (box deltas and class
    logits) in float32, so that box decoding and the losses are computed in float32.

    Args:
        num_classes: the number of classes of the new classification head.
        preset: a KerasHub preset name or folder, or `None` for random weights.
        bounding_box_format: the box format of `fit`'s targets and `predict`'s boxes.
        image_size: the side the preprocessor resizes each image to (default: the preset's own, 800
            for the COCO presets). `predict` returns boxes in that frame; `detect` maps them back.

    Returns:
        A `keras_hub.models.RetinaNetObjectDetector`.

    Example:

    ```python
    model = tlkit.detection.retinanet(2, "retinanet_resnet50_fpn_coco")
    model.compile(optimizer=keras.optimizers.Adam(1e-4))
    boxes, scores, labels = tlkit.detection.detect(model, images)  # in the frame of `images`
    ```
    """
    try:
        import keras_hub
    except ImportError as error:
        raise ImportError("`retinanet` builds KerasHub's RetinaNet: `pip install keras-hub`.") from error

    check_int("num_classes", num_classes, 1)
    if image_size is not None:
        check_int("image_size", image_size, 32)
        if preset is None:
            raise invalid("image_size", image_size, "None without a preset (there is no preprocessor to resize)")
    Detector = keras_hub.models.RetinaNetObjectDetector
    policy = keras.mixed_precision.global_policy()
    if preset is None:
        encoder = keras_hub.models.ResNetBackbone(**RESNET50)
        backbone = keras_hub.models.RetinaNetBackbone(image_encoder=encoder, min_level=3, max_level=7, use_p5=False)
        coco = None
    else:
        coco = _load_detector_preset(preset, bounding_box_format)
        backbone = coco.backbone
    preprocessor = None
    if coco is not None and coco.preprocessor is not None:
        converter = coco.preprocessor.image_converter
        config = converter.get_config() | {"bounding_box_format": bounding_box_format}  # boxes resized with images
        if image_size is not None:
            config["image_size"] = (image_size, image_size)
        preprocessor = type(coco.preprocessor)(image_converter=type(converter).from_config(config))
    with _global_policy("float32"):  # outputs (the reshapes and concatenations) in float32; heads as the backbone
        model = Detector(backbone=backbone, num_classes=num_classes, bounding_box_format=bounding_box_format,
                         preprocessor=preprocessor, dtype=backbone.dtype_policy)  # fmt: skip
    model.dtype_policy = policy  # so that `compile` scales the loss under mixed_float16, as for any model
    if coco is not None:
        model.box_head.set_weights(coco.box_head.get_weights())  # reused; the class head is new
    return model
