"""Generates the student notebooks and the autograders from the master notebooks.

    python assignments/build.py [--out build/assignments] [NAME ...]

For each master notebook `assignments/NN_name.ipynb` (otter-grader's format), `otter assign`
writes `OUT/NN_name/student/` (the notebook without solutions, its visible tests, checks.py)
and `OUT/NN_name/autograder/` (the solution notebook, every test including the hidden ones).
This script then adds, beside them:

- `OUT/NN_name/NN_name-handout.zip`: the student folder, to hand out (JupyterLab or Colab);
- `OUT/NN_name/NN_name-autograder.zip`: what `otter run` and `grade.py` grade with.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def masters(names: list[str] | None = None) -> list[Path]:
    """The master notebooks, all of them or those whose stem starts with one of `names`."""
    found = sorted(HERE.glob("[0-9][0-9]_*.ipynb"))
    if names:
        found = [p for p in found if any(p.stem.startswith(n) for n in names)]
        if not found:
            known = ", ".join(p.stem for p in sorted(HERE.glob("[0-9][0-9]_*.ipynb")))
            raise SystemExit(f"No master notebook matches {names}. Known: {known}.")
    return found


def zip_folder(folder: Path, target: Path) -> None:
    """Zips the files of `folder` (relative paths) into `target`."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                z.write(path, path.relative_to(folder))


def build(master: Path, out: Path) -> Path:
    """Runs `otter assign` on `master` into `out/<stem>`; returns that folder."""
    target = out / master.stem
    shutil.rmtree(target, ignore_errors=True)
    command = [sys.executable, "-m", "otter", "assign", "--no-run-tests", "--no-pdfs", master.name, str(target)]
    result = subprocess.run(command, cwd=HERE, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"otter assign failed for {master.name}:\n{result.stdout}\n{result.stderr}")
    (autograder_zip,) = (target / "autograder").glob("*-autograder_*.zip")  # otter stamps the time in the name
    shutil.move(autograder_zip, target / f"{master.stem}-autograder.zip")
    zip_folder(target / "student", target / f"{master.stem}-handout.zip")
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="build only these (e.g. 01 03_large_similar)")
    parser.add_argument("--out", type=Path, default=HERE.parent / "build" / "assignments")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    for master in masters(args.names):
        target = build(master, out)
        print(f"{master.name}: {target.relative_to(out.parent) if out.parent in target.parents else target}")


if __name__ == "__main__":
    main()
