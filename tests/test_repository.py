"""The Colab badges and install cells agree with the one repository URL in pyproject.toml."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("set_repository", REPO / "scripts" / "set_repository.py")
set_repository = importlib.util.module_from_spec(spec)
spec.loader.exec_module(set_repository)


def test_badges_and_install_cells_agree_with_pyproject():
    url = set_repository.repository()
    owner_name = url.removeprefix("https://github.com/")
    for path in set_repository.files():
        text = path.read_text(encoding="utf-8")
        assert set_repository.rewrite(text, url) == text, f"{path.name}: run python scripts/set_repository.py"
        if path.suffix == ".ipynb":  # every lesson has its badge and its install cell
            assert f"colab.research.google.com/github/{owner_name}/blob/main/notebooks/{path.name}" in text, path.name
            assert f'TLKIT = \\"git+{url}\\"' in text, path.name  # JSON-escaped quotes


def test_install_cells_are_one_cell_within_88_columns():
    cells = set()
    for path in set_repository.files():
        if path.suffix == ".ipynb":
            for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
                source = "".join(cell["source"])
                if cell["cell_type"] == "code" and "google.colab" in source:
                    cells.add(source)
                    assert max(len(line) for line in source.splitlines()) <= 88, path.name
    assert len(cells) == 1, "the lessons' install cells differ"


def test_a_fork_changes_only_the_badge_and_install_lines(tmp_path):
    for name in ("README.md", "pyproject.toml", "notebooks"):
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy
        copy(REPO / name, tmp_path / name)
    before = {p: p.read_text().splitlines() for p in set_repository.files(tmp_path)}
    assert set_repository.main(["--root", str(tmp_path), "--url", "https://github.com/someone/tl-kit"]) == 0
    assert set_repository.repository(tmp_path) == "https://github.com/someone/tl-kit"
    for path, old in before.items():
        new = path.read_text().splitlines()
        assert len(new) == len(old), path.name
        changed = [(a, b) for a, b in zip(old, new) if a != b]
        assert changed, path.name
        for a, b in changed:
            assert "tlkit/tlkit" in a and "tlkit/tlkit" not in b and "someone/tl-kit" in b, (path.name, b)
            assert any(k in b for k in ("colab.research.google.com/github/", "git+https://github.com/", "lives at ")), b
    assert set_repository.main(["--root", str(tmp_path), "--check"]) == 0
    set_repository.main(["--root", str(tmp_path), "--url", set_repository.repository()])
    assert {p: p.read_text().splitlines() for p in set_repository.files(tmp_path)} == before  # round trip
