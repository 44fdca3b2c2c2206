"""`import tlkit` is cheap and honest: names load on first use, nothing else happens at import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import tlkit

REPO = Path(__file__).resolve().parents[1]


def run_python(code: str, *flags: str) -> str:
    run = subprocess.run(
        [sys.executable, *flags, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120, check=True
    )
    return run.stdout


def test_import_loads_no_submodule_no_backend_and_sets_nothing():
    report = run_python(
        "import json, os, sys; before = dict(os.environ); import tlkit; "
        "print(json.dumps({'modules': sorted(m for m in sys.modules if m.startswith(('tlkit', 'keras', "
        "'tensorflow', 'numpy', 'jax', 'torch'))), 'changed': sorted(set(os.environ.items()) ^ "
        "set(before.items()))}))"
    )
    loaded = json.loads(report)
    assert loaded == {"modules": ["tlkit"], "changed": []}, loaded


def test_a_name_loads_its_own_submodule_only():
    report = run_python("import sys, tlkit; tlkit.LARGE_FROM; print(sorted(m for m in sys.modules if 'tlkit' in m))")
    assert "tlkit.advice" in report and "tlkit.detection" not in report and "tlkit.text" not in report, report


def test_assets_run_without_any_installed_package():
    """-S: no site-packages, as before `make` installs anything."""
    run = subprocess.run(
        [sys.executable, "-S", "-m", "tlkit.assets", "--help"], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert run.returncode == 0 and "fetch" in run.stdout and "verify" in run.stdout, run.stderr


def test_every_public_name_resolves_and_unknown_names_fail():
    assert len(tlkit.__all__) == len(set(tlkit.__all__))
    for name in tlkit.__all__:
        assert getattr(tlkit, name) is not None, name
    assert set(tlkit.__all__) <= set(dir(tlkit)) and "plots" in dir(tlkit)
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        tlkit.nonexistent  # noqa: B018


def test_functions_keep_their_names_once_their_modules_are_imported():
    import tlkit.advice
    import tlkit.range_test

    assert callable(tlkit.advise) and callable(tlkit.lr_find)
    assert tlkit.advise is tlkit.advice.advise and tlkit.lr_find is tlkit.range_test.lr_find
    assert tlkit.plots.__name__ == "tlkit.plots" and tlkit.assets.__name__ == "tlkit.assets"


def test_the_core_names_are_documented_as_keras_documents_its_own():
    """Every name that four lessons or more use has Args:, an Example: and, if it returns something, Returns:."""
    import inspect

    lessons = [path.read_text() for path in (REPO / "notebooks").glob("*.ipynb")]
    core = [name for name in tlkit.__all__ if sum(f"tlkit.{name}" in text for text in lessons) >= 4]
    assert len(core) >= 10, core
    missing = {}
    for name in core:
        obj = getattr(tlkit, name)
        doc = inspect.getdoc(obj) or ""
        returns = inspect.isfunction(obj) and inspect.signature(obj).return_annotation not in ("None", None)
        wanted = ["Args:", "Example:"] + (["Returns:"] if returns else [])
        missing.update({name: [k for k in wanted if k not in doc]} if any(k not in doc for k in wanted) else {})
    assert not missing, missing
