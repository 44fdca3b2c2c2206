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
    assets = run_lesson._assets_module()
    monkeypatch.setattr(run_lesson, "_assets_module", lambda: assets)
    monkeypatch.setattr(assets, "reachable", lambda url, timeout=5.0: False)
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
