"""The data loader: exact per-class subsets, seeded disjoint splits, resizing, RGB, tf.data."""

from __future__ import annotations

import gzip
import hashlib

import numpy as np
import pytest
from PIL import Image

import tlkit
from conftest import write_image_folder
from tlkit.data import FASHION_MNIST_CLASSES, index_image_folder, read_idx, split_index


def fingerprints(images: np.ndarray) -> set[str]:
    return {hashlib.sha1(image.tobytes()).hexdigest() for image in images}


# ------------------------------------------------------------------ Caltech-101 (offline assets)
# car_side has 123 images, all grayscale JPEGs; yin_yang has 60 (RGB and a few grayscale).


def test_caltech_per_class_counts_are_exact(caltech):
    splits = tlkit.load_dataset(
        "caltech101", 32, classes=["car_side", "yin_yang"], images_per_class=5, val_per_class=2, test_per_class=3
    )
    assert splits.class_names == ["car_side", "yin_yang"]
    assert splits.train.class_counts().tolist() == [5, 5]
    assert splits.val.class_counts().tolist() == [2, 2]
    assert splits.test.class_counts().tolist() == [3, 3]
    assert splits.train.images.shape == (10, 32, 32, 3)
    assert splits.train.images.dtype == np.uint8 and splits.train.labels.dtype == np.int32
    car_side = splits.train.images[splits.train.labels == 0]
    assert (car_side[..., 0] == car_side[..., 1]).all() and (car_side[..., 1] == car_side[..., 2]).all()


def test_caltech_fractions_are_per_class(caltech):
    assert len(list((caltech / "car_side").glob("*.jpg"))) == 123
    assert len(list((caltech / "yin_yang").glob("*.jpg"))) == 60
    splits = tlkit.load_dataset(
        "caltech101", 32, classes=["car_side", "yin_yang"], images_per_class=4, val_per_class=0.1, test_per_class=0.2
    )
    assert splits.test.class_counts().tolist() == [25, 12]  # round(0.2 * 123), round(0.2 * 60)
    assert splits.val.class_counts().tolist() == [12, 6]  # round(0.1 * 123), round(0.1 * 60)
    assert splits.train.class_counts().tolist() == [4, 4]


def test_caltech_split_positions_are_disjoint_and_the_test_set_ignores_images_per_class(caltech):
    index = index_image_folder(caltech, ["Leopards", "watch", "bonsai"])
    splits = {n: split_index(index.labels, index.class_names, n, 0.1, 0.2, seed=0) for n in (5, 20, None)}
    for train, val, test in splits.values():
        assert not set(train) & set(val) and not set(train) & set(test) and not set(val) & set(test)
    assert all(np.array_equal(splits[5][2], s[2]) for s in splits.values())  # same test set
    assert all(np.array_equal(splits[5][1], s[1]) for s in splits.values())  # same val set
    assert set(splits[5][0]) < set(splits[20][0]) < set(splits[None][0])  # more images: a superset
    train, val, test = splits[None]
    assert len(train) + len(val) + len(test) == len(index.labels)  # nothing lost
    other_seed = split_index(index.labels, index.class_names, 5, 0.1, 0.2, seed=1)
    assert not np.array_equal(other_seed[2], splits[5][2])


# ------------------------------------------------------------------ Fashion-MNIST (IDX files)


def test_fashion_mnist_is_resized_to_rgb(fashion_mnist):
    splits = tlkit.load_dataset(
        "fashion_mnist", 32, classes=["Sandal", "Bag", "Coat"], images_per_class=4, val_per_class=2, test_per_class=3
    )
    assert splits.class_names == ["Sandal", "Bag", "Coat"]
    assert splits.train.images.shape == (12, 32, 32, 3)
    assert splits.test.class_counts().tolist() == [3, 3, 3]
    x = splits.train.images
    assert (x[..., 0] == x[..., 1]).all() and (x[..., 1] == x[..., 2]).all()
    assert x.max() > 100  # real pictures, not blank arrays

    raw = read_idx(fashion_mnist / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(fashion_mnist / "t10k-labels-idx1-ubyte.gz")
    assert raw.shape == (10000, 28, 28) and labels.shape == (10000,)
    assert np.bincount(labels).tolist() == [1000] * 10
    assert len(FASHION_MNIST_CLASSES) == 10


# ------------------------------------------------------------------ generated image folders


def test_image_folder_layout(image_folder):
    splits = tlkit.load_dataset(image_folder, 24, val_per_class=2, test_per_class=3, seed=0)
    assert splits.class_names == ["a", "b", "c"]  # SHA256SUMS, README.md and notes.txt ignored
    assert splits.skipped == 0
    assert splits.train.class_counts().tolist() == [7, 5, 4]  # 12, 10, 9 minus 2 val and 3 test
    everything = np.concatenate([splits.train.images, splits.val.images, splits.test.images])
    assert everything.shape == (31, 24, 24, 3)  # varied sizes and modes, all 24x24 RGB
    assert len(fingerprints(everything)) == 31  # every file once: the splits are disjoint and complete
    gray = [x for x in everything if (x[..., 0] == x[..., 1]).all() and (x[..., 1] == x[..., 2]).all()]
    assert len(gray) == 4 + 3 + 3  # every third file (i = 2, 5, 8, 11 / 2, 5, 8 / 2, 5, 8) is grayscale


def test_image_folder_splits_are_seeded_and_the_test_set_ignores_images_per_class(image_folder):
    small = tlkit.load_dataset(image_folder, 24, images_per_class=2, val_per_class=1, test_per_class=3, seed=3)
    large = tlkit.load_dataset(image_folder, 24, images_per_class=5, val_per_class=1, test_per_class=3, seed=3)
    again = tlkit.load_dataset(image_folder, 24, images_per_class=2, val_per_class=1, test_per_class=3, seed=3)
    other = tlkit.load_dataset(image_folder, 24, images_per_class=2, val_per_class=1, test_per_class=3, seed=4)
    np.testing.assert_array_equal(small.test.images, large.test.images)
    np.testing.assert_array_equal(small.test.labels, large.test.labels)
    assert fingerprints(small.train.images) < fingerprints(large.train.images)
    assert not fingerprints(large.train.images) & fingerprints(large.test.images)
    assert not fingerprints(large.val.images) & (fingerprints(large.test.images) | fingerprints(large.train.images))
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(small, part).images, getattr(again, part).images)
    assert fingerprints(other.test.images) != fingerprints(small.test.images)


def test_resize_keeps_colours_and_fills_transparency(tmp_path):
    root = tmp_path / "solid"
    for name, colour in {"red": (200, 10, 30), "teal": (0, 128, 128)}.items():
        (root / name).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (50 + 10 * i, 30), colour).save(root / name / f"{i}.png")
    Image.new("RGBA", (40, 40), (0, 0, 0, 0)).save(root / "teal" / "transparent.png")
    splits = tlkit.load_dataset(root, 16, val_per_class=0, test_per_class=0, seed=0)
    red = splits.train.images[splits.train.labels == 0]
    assert red.shape == (3, 16, 16, 3) and (red == (200, 10, 30)).all()
    teal = splits.train.images[splits.train.labels == 1]
    assert ((teal == (0, 128, 128)).all(axis=(1, 2, 3))).sum() == 3
    assert ((teal == 255).all(axis=(1, 2, 3))).sum() == 1  # transparent -> white, not black


def test_classes_by_count_picks_the_largest(tmp_path):
    root = write_image_folder(tmp_path / "imgs", {"small": 4, "big": 9, "mid": 6})
    splits = tlkit.load_dataset(root, 16, classes=2, val_per_class=0, test_per_class=1)
    assert splits.class_names == ["big", "mid"]
    assert splits.train.class_counts().tolist() == [8, 5]


def test_a_class_named_twice_or_a_single_class_folder_is_refused(tmp_path):
    root = write_image_folder(tmp_path / "imgs", {"cat": 4, "dog": 4})
    with pytest.raises(ValueError, match=r"names \['cat'\] more than once"):
        tlkit.load_dataset(root, 16, classes=["cat", "dog", "Cat"], test_per_class=1)
    single = write_image_folder(tmp_path / "one", {"cat": 4})
    with pytest.raises(ValueError, match="at least 2 classes.*has 1.*folder above the class folders"):
        tlkit.load_dataset(single, 16)


def test_an_image_size_that_cannot_fit_in_memory_is_refused_before_decoding(tmp_path, monkeypatch):
    import tlkit.data

    root = write_image_folder(tmp_path / "imgs", {"cat": 4, "dog": 4})
    monkeypatch.setattr(tlkit.data, "available_memory", lambda: 8 * 64 * 64 * 3 - 1)  # one byte short
    monkeypatch.setattr(tlkit.data, "decode_images", lambda *a, **k: pytest.fail("decoded before the check"))
    with pytest.raises(ValueError, match=r"`image_size`.*8 images of 64 x 64 x 3 bytes"):
        tlkit.load_dataset(root, 64, val_per_class=0, test_per_class=1)
    monkeypatch.setattr(tlkit.data, "available_memory", lambda: 8 * 64 * 64 * 3)
    with pytest.raises(pytest.fail.Exception, match="decoded before the check"):  # fits: decoding starts
        tlkit.load_dataset(root, 64, val_per_class=0, test_per_class=1)


# ------------------------------------------------------------------ IDX files


@pytest.mark.parametrize("compressed", [False, True])
def test_read_idx_round_trip(tmp_path, compressed):
    images = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    labels = np.arange(7, dtype=np.uint8)
    for name, array in {"images": images, "labels": labels}.items():
        header = b"\x00\x00\x08" + bytes([array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
        path = tmp_path / (f"{name}.idx" + (".gz" if compressed else ""))
        (gzip.open if compressed else open)(path, "wb").write(header + array.tobytes())
        np.testing.assert_array_equal(read_idx(path), array)
        assert read_idx(path).shape == array.shape


# ------------------------------------------------------------------ arrays and tf.data


def test_from_arrays_converts_grayscale(random_images):
    gray = random_images(6, 20)[..., 0]
    data = tlkit.from_arrays(gray, np.arange(6) % 2, ["x", "y"])
    assert data.images.shape == (6, 20, 20, 3)
    assert (data.images[..., 2] == gray).all()
    assert data.num_classes == 2 and data.class_counts().tolist() == [3, 3]


def test_to_tf_batches(random_images):
    data = tlkit.from_arrays(random_images(10, 16), np.arange(10) % 2)
    batches = list(tlkit.to_tf(data, batch_size=4, shuffle=True, seed=0))
    assert [b[0].shape for b in batches] == [(4, 16, 16, 3), (4, 16, 16, 3), (2, 16, 16, 3)]
    assert batches[0][0].dtype.name == "uint8" and batches[0][1].dtype.name == "int32"
    images = np.concatenate([b[0].numpy() for b in batches])
    assert fingerprints(images) == fingerprints(data.images)  # a permutation: nothing lost or repeated
    assert not np.array_equal(images, data.images)  # shuffled
    plain = np.concatenate([b[0].numpy() for b in tlkit.to_tf(data, batch_size=4)])
    np.testing.assert_array_equal(plain, data.images)  # no shuffle: in order


def test_to_tf_augments_every_batch_afresh(random_images):
    data = tlkit.from_arrays(random_images(8, 32), np.arange(8) % 2)
    ds = tlkit.to_tf(data, batch_size=4, augment=tlkit.augment.augmentation(0.2, seed=0))
    first, second = [np.concatenate([b[0].numpy() for b in ds]) for _ in range(2)]
    assert first.shape == (8, 32, 32, 3)
    assert not np.allclose(first, data.images.astype("float32"), atol=1)  # augmented
    for i in range(8):
        assert not np.allclose(first[i], second[i], atol=1), f"image {i} augmented the same way in two epochs"
    labels = np.concatenate([b[1].numpy() for b in ds])
    np.testing.assert_array_equal(labels, data.labels)


def test_fetched_part_rejects_an_unknown_part_before_any_network(monkeypatch):
    from tlkit import network
    from tlkit.data import fetched_part

    monkeypatch.setattr(network, "url_answers", lambda *a, **k: pytest.fail("the network was asked"))
    with pytest.raises(ValueError, match=r"Invalid value for argument `part`. Received: part='caltech'. .*caltech101"):
        fetched_part("caltech")


def test_sample_per_class_is_nested_and_names_the_smallest_class():
    labels = np.repeat(np.arange(3), [20, 12, 20])
    small, large = tlkit.sample_per_class(labels, 5, seed=1), tlkit.sample_per_class(labels, 12, seed=1)
    assert set(small) <= set(large)
    assert np.bincount(labels[large]).tolist() == [12, 12, 12]
    assert not np.array_equal(small, tlkit.sample_per_class(labels, 5, seed=2))
    with pytest.raises(ValueError, match="smallest class has 12 images"):
        tlkit.sample_per_class(labels, 13)
    assert np.bincount(labels[tlkit.sample_per_class(labels, 13, allow_fewer=True)]).tolist() == [13, 12, 13]


@pytest.mark.parametrize(
    ("labels", "per_class", "match"),
    [([], 1, "at least one"), ([[0, 1]], 1, "one class index per image"), ([0, 1], 0, "per_class=0"),
     ([0, 1], 1.5, "per_class=1.5")],
)  # fmt: skip
def test_sample_per_class_refuses_bad_arguments(labels, per_class, match):
    with pytest.raises(ValueError, match=match):
        tlkit.sample_per_class(np.asarray(labels), per_class)


# ------------------------------------------------------------------ area resizing, on every backend


def test_resize_area_averages_whole_blocks_exactly():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 8, 6, 3)).astype(np.float32)
    uneven = tlkit.data.resize_area(images, 3)  # 8x6 -> 3x3: not a whole factor in height
    quarter = tlkit.data.resize_area(images[:, :8, :4], 2)  # 8x4 -> 2x2: 4x2 blocks
    blocks = images[:, :8, :4].reshape(2, 2, 4, 2, 2, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(quarter, blocks, rtol=0, atol=1e-4)
    assert uneven.shape == (2, 3, 3, 3) and uneven.dtype == np.float32
    np.testing.assert_allclose(uneven.mean(axis=(1, 2)), images.mean(axis=(1, 2)), rtol=1e-5)  # mass kept


def test_resize_area_keeps_a_constant_image_and_the_dtype():
    flat = np.full((1, 10, 10, 3), 77, np.uint8)
    for size in (3, 4, 10, 17):
        resized = tlkit.data.resize_area(flat, size)
        assert resized.dtype == np.uint8 and resized.shape == (1, size, size, 3)
        assert (resized == 77).all()


def test_resize_area_rounds_integers_to_even_as_keras_does():
    def one_pixel(block):  # a 2x2 uint8 image, averaged to one pixel
        return tlkit.data.resize_area(np.array(block, np.uint8).reshape(1, 2, 2, 1), 1)[0, 0, 0, 0]

    assert one_pixel([[0, 0], [1, 2]]) == 1  # 0.75
    assert one_pixel([[1, 1], [2, 2]]) == 2  # 1.5: ties to even
    assert one_pixel([[0, 1], [0, 1]]) == 0  # 0.5: ties to even
    assert one_pixel([[255, 255], [255, 254]]) == 255  # 254.75


@pytest.mark.parametrize("old, new", [(128, 64), (96, 64), (28, 32), (64, 64)])
def test_resize_area_matches_keras_area_on_tensorflow(old, new):
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "tensorflow":
        pytest.skip('interpolation="area" is TensorFlow\'s only')
    images = np.random.default_rng(old + new).integers(0, 256, (3, old, old, 3)).astype(np.uint8)
    expected = keras.ops.convert_to_numpy(keras.ops.image.resize(images, (new, new), interpolation="area"))
    np.testing.assert_array_equal(tlkit.data.resize_area(images, new), expected)
    floats = images.astype("float32")
    as_float = keras.ops.convert_to_numpy(keras.ops.image.resize(floats, (new, new), interpolation="area"))
    np.testing.assert_allclose(tlkit.data.resize_area(floats, new), as_float, rtol=0, atol=1e-3)


def test_resize_area_names_a_wrong_shape():
    with pytest.raises(ValueError, match="a batch"):
        tlkit.data.resize_area(np.zeros((8, 8, 3)), 4)
