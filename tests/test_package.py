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
    report = run_python(
        "import sys, tlkit; tlkit.get_profile; "
        "print(sorted(m for m in sys.modules if m.startswith(('tlkit', 'keras'))))"
    )
    assert "tlkit.profiles" in report and "tlkit.advice" not in report and "tlkit.detection" not in report, report
    assert "'keras'" not in report, report  # the profiles load no backend: a name loads only what it needs


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

    assert callable(tlkit.advise) and callable(tlkit.experiments.lr_find)
    assert tlkit.advise is tlkit.advice.advise and tlkit.experiments.lr_find is tlkit.range_test.lr_find
    assert tlkit.plots.__name__ == "tlkit.plots" and tlkit.assets.__name__ == "tlkit.assets"


def lesson_sources() -> dict[str, str]:
    """The code cells of every lesson and assignment, by file name."""
    paths = [*(REPO / "notebooks").glob("*.ipynb"), *(REPO / "assignments").glob("*.ipynb")]
    sources = {}
    for path in paths:
        cells = json.loads(path.read_text())["cells"]
        sources[path.name] = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    return sources


def test_the_top_level_holds_what_two_lessons_use():
    """fastai's rule: the top level is the core; a tool of one lesson lives in its own namespace."""
    import re

    sources = lesson_sources()
    users = {
        name: [f for f, code in sources.items() if re.search(rf"\btlkit\.{name}\b", code)] for name in tlkit.__all__
    }
    alone = {name: files for name, files in users.items() if len(files) < 2 and name != "advise"}
    assert not alone, f"top-level names used by fewer than two lessons or assignments: {alone}"
    for namespace in ("detection", "text", "experiments", "plots"):
        module = getattr(tlkit, namespace)
        assert not set(getattr(module, "__all__", ())) & set(tlkit.__all__), namespace


def test_every_top_level_function_is_documented_as_keras_documents_its_own():
    """Args:, an Example: and, when it returns something, Returns:, for every public function and class."""
    import inspect

    missing = {}
    for name in tlkit.__all__:
        obj = getattr(tlkit, name)
        if not callable(obj):
            continue
        doc = inspect.getdoc(obj) or ""
        returns = inspect.isfunction(obj) and inspect.signature(obj).return_annotation not in ("None", None)
        wanted = ["Args:", "Example:"] + (["Returns:"] if returns else [])
        if any(k not in doc for k in wanted):
            missing[name] = [k for k in wanted if k not in doc]
    assert not missing, missing


def test_every_training_function_returns_a_history_with_its_model():
    import numpy as np

    from tlkit.train import History

    x = np.random.default_rng(0).normal(size=(24, 4)).astype("float32")
    y = np.arange(24) % 2
    x[y == 1] += 2
    head = tlkit.train_head(x, y, 2, epochs=2)
    probes = tlkit.train_probes([x, x[:, :2]], y, 2, epochs=2)
    again = tlkit.fit(head.model, x, y=y, epochs=1, verbose=0)
    for history in (head, probes, again):
        assert isinstance(history, History) and history.model is not None and history.epochs >= 1
    assert again.model is head.model and len(probes.model.outputs) == 2
