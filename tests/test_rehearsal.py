"""`make rehearse`'s overrides: each one changes a parameter the notebook's parameters cell defines.

Papermill injects its values after the cell tagged `parameters`; a misspelt name would be injected as a new
variable and change nothing, and the rehearsal would then run a scale nobody chose.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from rehearsal_parameters import PARAMETERS  # noqa: E402

NOTEBOOKS = {
    p.stem: p for p in [*REPO.glob("notebooks/[0-9][0-9]_*.ipynb"), *REPO.glob("assignments/[0-9][0-9]_*.ipynb")]
}


def parameter_names(notebook: Path) -> set[str]:
    cells = json.loads(notebook.read_text())["cells"]
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{notebook.name}: expected one cell tagged 'parameters', found {len(tagged)}"
    names = set()
    for node in ast.walk(ast.parse("".join(tagged[0]["source"]))):
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        for target in targets:
            for name in ast.walk(target):
                if isinstance(name, ast.Name):
                    names.add(name.id)
    return names


def test_every_override_names_a_notebook():
    assert set(PARAMETERS) <= set(NOTEBOOKS)


@pytest.mark.parametrize("stem", sorted(PARAMETERS))
def test_every_override_is_a_parameter_of_its_notebook(stem):
    unknown = set(PARAMETERS[stem]) - parameter_names(NOTEBOOKS[stem])
    assert not unknown, f"{stem}: {sorted(unknown)} are not set in its parameters cell"


def test_the_check_catches_a_misspelt_override(tmp_path):
    notebook = tmp_path / "99_x.ipynb"
    cell = {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": ["EPOCHS = 3\n", "A, B = 1, 2\n"]}
    notebook.write_text(json.dumps({"cells": [cell]}))
    assert parameter_names(notebook) == {"EPOCHS", "A", "B"}
    assert {"EPOCH"} - parameter_names(notebook) == {"EPOCH"}
