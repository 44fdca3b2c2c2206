"""One lookup of the asset pack: `tlkit.assets.locate` (the folder) and `locate_part` (a path in it).

Every loader that reads the pack goes through these two, so each way the pack can be missing
raises the same `AssetsError` (a `FileNotFoundError`), naming the path and the fix.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tlkit import assets

REPO = Path(__file__).resolve().parents[1]
FETCH = re.escape(assets.FETCH_COMMAND)


@pytest.fixture
def no_pack(monkeypatch, tmp_path):
    """`$TLKIT_ASSETS` unset and an empty cache (conftest points XDG_CACHE_HOME at an empty folder)."""
    monkeypatch.delenv(assets.ASSETS_ENV, raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    return assets.cache_dir()


@pytest.fixture
def empty_pack(monkeypatch, tmp_path):
    """`$TLKIT_ASSETS` names a folder that holds none of the pack's parts."""
    folder = tmp_path / "pack"
    folder.mkdir()
    monkeypatch.setenv(assets.ASSETS_ENV, str(folder))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    return folder.resolve()


@pytest.fixture
def not_a_folder(monkeypatch, tmp_path):
    """`$TLKIT_ASSETS` names a file."""
    file = tmp_path / "assets.txt"
    file.write_text("not a folder\n")
    monkeypatch.setenv(assets.ASSETS_ENV, str(file))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    return file.resolve()


def test_assets_error_is_a_file_not_found_error():
    assert issubclass(assets.AssetsError, FileNotFoundError)
    error = assets.AssetsError("Received: x. Expected y.")
    assert str(error) == "Received: x. Expected y." and error.errno is None


def test_the_variable_names_and_the_fetch_command_are_defined_once():
    import tlkit.profiles
    import tlkit.text

    sources = {path.name: path.read_text() for path in (REPO / "tlkit").glob("*.py")}
    assert [name for name, text in sources.items() if re.search(r"^ASSETS_ENV\s*=", text, re.M)] == ["assets.py"]
    assert [name for name, text in sources.items() if re.search(r"^FETCH_COMMAND\s*=", text, re.M)] == ["assets.py"]
    assert tlkit.text.FETCH_COMMAND is assets.FETCH_COMMAND
    assert not hasattr(tlkit.profiles, "assets_dir") and not hasattr(tlkit.profiles, "ASSETS_ENV")


# ---------------------------------------------------------------------------- locate: the folder


def test_locate_reads_tlkit_assets_first(empty_pack):
    (assets.cache_dir() / "weights").mkdir(parents=True)  # a cache too: $TLKIT_ASSETS still wins
    assert assets.locate() == empty_pack


def test_locate_falls_back_to_a_cache_that_holds_anything(no_pack):
    assert assets.locate(required=False) is None
    (no_pack / "datasets" / "caltech101").mkdir(parents=True)
    assert assets.locate() == no_pack.resolve()


def test_locate_without_a_pack_names_where_it_looked_and_the_fix(no_pack):
    with pytest.raises(assets.AssetsError) as info:
        assets.locate()
    text = str(info.value)
    assert "Received: $TLKIT_ASSETS, which is not set" in text and str(no_pack) in text, text
    assert "Expected a folder laid out like the pack" in text and assets.FETCH_COMMAND in text, text
    assert "export TLKIT_ASSETS=/path/to/assets" in text and "Two ways on" in text, text
    assert "\n" not in text


def test_locate_with_tlkit_assets_naming_a_file_raises_even_when_not_required(not_a_folder):
    for required in (True, False):
        with pytest.raises(assets.AssetsError) as info:
            assets.locate(required=required)
        text = str(info.value)
        assert f"Received: TLKIT_ASSETS={str(not_a_folder)!r}" in text and "is not a folder" in text, text
        assert "Expected a folder laid out like the asset pack" in text, text
        assert f"{assets.FETCH_COMMAND} --dest DIR" in text and str(assets.cache_dir()) in text, text


def test_locate_with_tlkit_assets_naming_nothing_says_fetch_fills_it(monkeypatch, tmp_path):
    absent = tmp_path / "not-yet"
    monkeypatch.setenv(assets.ASSETS_ENV, str(absent))
    with pytest.raises(assets.AssetsError, match=rf"{re.escape(str(absent))} does not exist.*`{FETCH}` fetches"):
        assets.locate()


def test_locate_command_prints_the_error_as_one_paragraph(not_a_folder):
    run = subprocess.run(
        [sys.executable, "-S", "-m", "tlkit.assets", "locate"], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert run.returncode == 1 and run.stdout == "", run.stdout
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(not_a_folder) in lines[0] and "Expected a folder" in lines[0], run.stderr


# ---------------------------------------------------------------------------- locate_part: a path in the pack


def test_locate_part_finds_a_file_or_folder(empty_pack):
    (empty_pack / "datasets" / "eurosat").mkdir(parents=True)
    (empty_pack / "embeddings").mkdir()
    (empty_pack / "embeddings" / "vectors.txt").write_text("the 1 2\n")
    assert assets.locate_part("datasets/eurosat") == empty_pack / "datasets" / "eurosat"
    assert assets.locate_part(Path("embeddings", "vectors.txt")) == empty_pack / "embeddings" / "vectors.txt"


def test_locate_part_missing_from_the_pack_names_the_path_and_the_fix(empty_pack):
    assert assets.locate_part("datasets/caltech101", required=False) is None
    with pytest.raises(assets.AssetsError) as info:
        assets.locate_part("datasets/caltech101")
    text = str(info.value)
    assert text.startswith("datasets/caltech101 is missing from the asset pack."), text
    assert f"Received: the pack {empty_pack} ($TLKIT_ASSETS)" in text, text
    assert str(empty_pack / "datasets" / "caltech101") in text and "Expected a folder laid out like the pack" in text
    assert f"`{assets.FETCH_COMMAND} --only caltech101`" in text and "point TLKIT_ASSETS at a copy" in text, text


def test_locate_part_in_the_cache_says_so(no_pack):
    (no_pack / "weights").mkdir(parents=True)
    with pytest.raises(
        assets.AssetsError, match=r"embeddings/glove\.txt\.gz is missing.*\(the cache\).*--only embeddings"
    ):
        assets.locate_part("embeddings/glove.txt.gz")


def test_locate_part_without_a_pack_names_the_part_and_the_fix(no_pack):
    assert assets.locate_part("weights", required=False) is None
    with pytest.raises(
        assets.AssetsError, match=rf"looked for weights/x\.h5 .*TLKIT_ASSETS, which is not set.*{FETCH}"
    ):
        assets.locate_part("weights/x.h5")


def test_locate_part_with_tlkit_assets_naming_a_file(not_a_folder):
    for required in (True, False):
        with pytest.raises(assets.AssetsError, match=rf"Received: TLKIT_ASSETS='{re.escape(str(not_a_folder))}'"):
            assets.locate_part("datasets/eurosat", required=required)


@pytest.mark.parametrize("relative", ["", ".", "/etc", "../outside", "datasets/../../outside"])
def test_locate_part_rejects_a_path_outside_the_pack(relative, empty_pack):
    with pytest.raises(ValueError, match=r"Invalid value for argument `relative`\. Received: relative="):
        assets.locate_part(relative)


# ---------------------------------------------------------------------------- the loaders: one error


def _callers():
    from tlkit import backbones, data, text

    return {
        "data.local_dataset_dir": lambda: data.local_dataset_dir("caltech101"),
        "load_dataset(fashion_mnist)": lambda: data.load_dataset("fashion_mnist", 32),
        "text.asset_path": lambda: text.asset_path(text.GLOVE_FILE),
        "load_word_vectors": lambda: text.load_word_vectors(),
        "load_sentences": lambda: text.load_sentences("imdb"),
        "load_backbone(imagenet)": lambda: backbones.load_backbone("mobilenet_0.25", 96),
        "assets.dataset_path": lambda: assets.dataset_path("eurosat", download=False),
    }


CALLERS = list(_callers())


@pytest.mark.parametrize("state", ["no_pack", "empty_pack", "not_a_folder"])
@pytest.mark.parametrize("caller", CALLERS)
def test_every_offline_lookup_raises_assets_error_naming_the_fix(caller, state, request, monkeypatch):
    monkeypatch.setenv("TLKIT_PROFILE", "offline")
    where = request.getfixturevalue(state)
    with pytest.raises(assets.AssetsError) as info:
        _callers()[caller]()
    text = str(info.value)
    assert str(where) in text, text  # the folder or file looked at
    assert assets.FETCH_COMMAND in text and "TLKIT_ASSETS" in text, text  # the fix
    assert "Received:" in text and "Expected" in text, text


def test_weight_lookup_reads_the_pack_folder_then_keras_home(empty_pack, tmp_path):
    from tlkit.backbones import find_weight_file, get_spec, weight_dirs

    assert weight_dirs() == [empty_pack / "weights", tmp_path / "keras_home" / "models"]
    assert find_weight_file(get_spec("mobilenet_0.25"), 128) is None


def test_weight_lookup_with_tlkit_assets_naming_a_file(not_a_folder):
    from tlkit.backbones import find_weight_file, get_spec

    with pytest.raises(assets.AssetsError, match=re.escape(str(not_a_folder))):
        find_weight_file(get_spec("mobilenet_0.25"), 128)
