"""scripts/run_lesson.py (`make lesson`): one paragraph, not a traceback, when a lesson cannot run."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("run_lesson", REPO / "scripts" / "run_lesson.py")
run_lesson = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_lesson)


def test_no_assets_and_no_network_is_one_paragraph_before_installing(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    lesson = REPO / "notebooks" / "00_why_transfer_works.ipynb"
    run = subprocess.run(
        [sys.executable, "-S", str(REPO / "scripts/run_lesson.py"), str(lesson), "--check"],
        capture_output=True, text=True, env={**env, "TLKIT_PROFILE": "offline"}, timeout=30,
    )  # fmt: skip
    assert run.returncode == 1  # -S: no site-packages, as before `make lesson` installs anything
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Two ways on" in lines[0] and "TLKIT_ASSETS" in lines[0], run.stderr


def test_full_profile_without_network_or_assets_names_both_ways(tmp_path, monkeypatch):
    monkeypatch.delenv("TLKIT_ASSETS", raising=False)
    monkeypatch.delenv("TLKIT_PROFILE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(run_lesson.network, "network_available", lambda **ask: False)
    with pytest.raises(SystemExit) as info:
        run_lesson.choose_profile(Path("notebooks/00_why_transfer_works.ipynb"))
    text = str(info.value)
    assert "cannot be reached" in text and "make assets" in text and "TLKIT_ASSETS=/path/to/assets" in text


def test_a_failing_cell_ends_in_two_lines_and_keeps_the_traceback_in_the_notebook(tmp_path, capsys, monkeypatch):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('raise ConnectionError("host down")')])
    path = tmp_path / "lesson.ipynb"
    nbformat.write(notebook, path)
    monkeypatch.setenv("TLKIT_PROFILE", "offline")
    assert run_lesson.run(path, tmp_path / "out", timeout=60) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 2 and "ConnectionError: host down" in err[0], err
    executed = nbformat.read(tmp_path / "out" / "lesson.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["ename"] == "ConnectionError"


# ---------------------------------------------------------------------------- a classroom mirror


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A mirror of a tiny pack on 127.0.0.1, an empty cache, TLKIT_PROFILE and TLKIT_ASSETS unset."""
    from test_assets import PACK, Server, _write_manifest

    server = Server(PACK)
    assets = run_lesson.assets
    manifest = _write_manifest(tmp_path / "manifest.tsv", PACK)
    monkeypatch.setattr(assets, "manifest_path", lambda: manifest)
    for name in ("TLKIT_ASSETS", "TLKIT_PROFILE", "TLKIT_NO_NETWORK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("TLKIT_ASSETS_MIRROR", server.url)
    server.assets = assets
    yield server
    server.close()


def test_mirror_and_no_internet_fetches_the_pack_then_runs_offline(mirror, monkeypatch, capsys):
    from test_assets import _dead_url

    monkeypatch.setattr(run_lesson, "DOWNLOAD_URL", _dead_url())  # the internet's probe: nothing answers
    profile, folder = run_lesson.choose_profile(Path("notebooks/00_why_transfer_works.ipynb"))
    cache = mirror.assets.cache_dir()
    assert (profile, folder) == ("offline", cache.resolve())
    assert mirror.assets.verify(folder) == []  # the whole (tiny) pack, fetched from the mirror and checked
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"No internet: fetching the asset pack from the mirror {mirror.url} into {cache}")
    assert "offline profile" in lines[0]
    served = len(mirror.requests)
    assert run_lesson.choose_profile(Path("notebooks/00_why_transfer_works.ipynb")) == ("offline", folder)
    assert len(mirror.requests) == served  # the second call (`make lesson` after --check) fetches nothing


def test_mirror_and_internet_runs_the_full_profile_fetching_nothing_up_front(mirror, monkeypatch, capsys):
    monkeypatch.setattr(run_lesson, "DOWNLOAD_URL", mirror.url)  # the internet's probe answers
    assert run_lesson.choose_profile(Path("notebooks/00_why_transfer_works.ipynb")) == ("full", None)
    assert mirror.requests == []  # the full profile fetches each part from the mirror when it needs it
    out = capsys.readouterr().out.strip()
    expected = "Running 00_why_transfer_works with the full profile; the asset pack's parts come from the mirror"
    assert out == f"{expected} {mirror.url}."


def test_no_network_variable_refuses_the_mirror_too(mirror, monkeypatch):
    monkeypatch.setenv("TLKIT_NO_NETWORK", "1")
    with pytest.raises(SystemExit) as info:
        run_lesson.choose_profile(Path("notebooks/00_why_transfer_works.ipynb"))
    text = str(info.value).strip()
    assert "\n" not in text and "TLKIT_NO_NETWORK is set" in text and "Two ways on" in text, text
    assert mirror.requests == [] and mirror.heads == []


def test_check_with_a_mirror_runs_on_the_standard_library_alone(tmp_path):
    """`make lesson` runs --check before installing anything: the mirror route needs no package either."""
    from test_assets import _dead_url

    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache2")}
    env.update(TLKIT_ASSETS_MIRROR=_dead_url())  # a mirror that is down: one paragraph, no traceback
    lesson = REPO / "notebooks" / "00_why_transfer_works.ipynb"
    run = subprocess.run(
        [sys.executable, "-S", str(REPO / "scripts/run_lesson.py"), str(lesson), "--check"],
        capture_output=True, text=True, env={**env, "TLKIT_PROFILE": "offline"}, timeout=60,
    )  # fmt: skip
    assert run.returncode == 1, run.stderr
    assert run.stdout.startswith("The offline profile: fetching the asset pack from the mirror http://127.0.0.1:")
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot be reached" in lines[0] and "Two ways on" in lines[0], run.stderr
