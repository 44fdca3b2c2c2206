"""A reader's own tfds dataset (`load_dataset("tfds:<name>")`) under `tfds.testing.mock_data`: no download, no internet.

`mock_data` serves fake examples built from the dataset's own features (deterministic random
images and labels) and replaces `download_and_prepare` with a no-op. tlkit reads a tfds dataset
in one of two ways, and each is run here:

- prepared (its metadata in the data folder, as a download leaves it): read, with no network check;
- not prepared: every host the dataset downloads from must answer first. `mock_data` cannot tell
  tlkit that the download this check guards is fake, so here the network is a stand-in that
  answers (recording which hosts were asked); with no network the same call fails within seconds.
"""

from __future__ import annotations

import socket
import time
from unittest import mock

import pytest

import tlkit
from tlkit import data, network

tfds = pytest.importorskip("tensorflow_datasets")

# name: (class names, the hosts its download comes from: its pinned URLs and tfds's own store, fake examples)
DATASETS = {
    "tf_flowers": (
        ["dandelion", "daisy", "tulips", "sunflowers", "roses"],
        {"download.tensorflow.org", "storage.googleapis.com"},
        50,
    ),
    "beans": (["angular_leaf_spot", "bean_rust", "healthy"], {"storage.googleapis.com"}, 24),  # 500x500 px each
}
SIZES = {"image_size": 40, "images_per_class": 2, "val_per_class": 1, "test_per_class": 1}


def _refuse(*args, **kwargs):
    raise OSError("network unreachable (cut by the test)")


def _tripwire(*args, **kwargs):
    raise AssertionError("the network was asked: a prepared dataset needs no download")


@pytest.fixture
def full_profile_without_internet(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)
    monkeypatch.setenv("TLKIT_PROFILE", "full")
    monkeypatch.delenv("TLKIT_ASSETS", raising=False)
    monkeypatch.delenv("TLKIT_NO_NETWORK", raising=False)


def _check(splits, class_names):
    n = len(class_names)
    assert splits.class_names == class_names
    assert splits.train.images.shape == (2 * n, 40, 40, 3) and splits.train.images.dtype == "uint8"
    assert splits.train.class_counts().tolist() == [2] * n
    assert splits.val.class_counts().tolist() == [1] * n
    assert splits.test.class_counts().tolist() == [1] * n
    assert len({image.tobytes() for image in splits.train.images}) == 2 * n  # each fake example decoded, none blank


@pytest.mark.parametrize("name", DATASETS)
def test_a_prepared_tfds_dataset_is_read_with_no_network(name, full_profile_without_internet, tmp_path, monkeypatch):
    builder = tfds.builder(name, data_dir=tmp_path)
    builder.data_path.mkdir(parents=True)
    builder.info.write_to_directory(builder.data_path)  # the metadata a download leaves beside the records
    monkeypatch.setattr(network, "url_answers", _tripwire)
    mocked = tfds.testing.mock_data(DATASETS[name][2], policy=tfds.testing.MockPolicy.USE_FILES, data_dir=str(tmp_path))
    with mocked:
        splits = tlkit.load_dataset(f"tfds:{name}", **SIZES)
    _check(splits, DATASETS[name][0])


@pytest.mark.parametrize("name", DATASETS)
def test_an_unprepared_tfds_dataset_asks_its_own_hosts_then_downloads(name, full_profile_without_internet, monkeypatch):
    asked, prepared = [], []
    monkeypatch.setattr(network, "url_answers", lambda url, timeout=5.0: asked.append(url) or True)
    with tfds.testing.mock_data(DATASETS[name][2], policy=tfds.testing.MockPolicy.USE_CODE):
        fake = tfds.core.DatasetBuilder.download_and_prepare  # mock_data's no-op

        def recorded(self, *args, **kwargs):
            prepared.append((self.name, list(asked)))  # what had been asked when the download started
            return fake(self, *args, **kwargs)

        with mock.patch.object(tfds.core.DatasetBuilder, "download_and_prepare", recorded):
            splits = tlkit.load_dataset(f"tfds:{name}", **SIZES)
    hosts = DATASETS[name][1]
    assert len(prepared) == 1 and prepared[0][0] == name
    assert {url.split("/")[2] for url in prepared[0][1]} == hosts and len(asked) == len(hosts)
    _check(splits, DATASETS[name][0])


def test_an_unprepared_tfds_dataset_without_network_fails_fast_naming_its_host(full_profile_without_internet):
    with (
        tfds.testing.mock_data(num_examples=8, policy=tfds.testing.MockPolicy.USE_CODE),
        mock.patch.object(tfds.core.DatasetBuilder, "download_and_prepare", _tripwire),
    ):
        start = time.perf_counter()
        with pytest.raises(ConnectionError) as info:
            tlkit.load_dataset("tfds:eurosat/rgb", 32)
        assert time.perf_counter() - start < 15
    text = str(info.value)
    assert text.startswith("Cannot download the tfds dataset 'eurosat/rgb': madm.dfki.de and storage.googleapis.com")
    assert "tlkit.load_dataset('eurosat')" in text and "TLKIT_ASSETS" in text  # the pack's copy, and the offline route


def test_tfds_download_urls_are_the_pinned_hosts_and_tfds_own_store():
    urls = data.tfds_download_urls(tfds.builder("eurosat/rgb"))
    assert [u.split("/")[2] for u in urls] == ["madm.dfki.de", "storage.googleapis.com"]
    assert urls[0].startswith("http://madm.dfki.de/files/sentinel/EuroSAT")


def test_the_offline_profile_refuses_tfds_names_before_any_network(monkeypatch):
    monkeypatch.setenv("TLKIT_PROFILE", "offline")
    monkeypatch.setattr(network, "url_answers", _tripwire)
    with pytest.raises(ValueError, match="offline profile does not download: pass an image folder"):
        tlkit.load_dataset("tfds:tf_flowers", 32)
