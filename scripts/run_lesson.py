"""Executes one lesson notebook end to end and saves the executed copy and its figures.

    python scripts/run_lesson.py notebooks/00_why_transfer_works.ipynb --out outputs

The profile comes from TLKIT_PROFILE; when that is unset, `offline` is used if TLKIT_ASSETS
names an assets folder, and `full` (GPU, downloads) otherwise.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--out", type=Path, default=Path("outputs"), help="folder for the executed notebook and figures")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    args = parser.parse_args(argv)
    if not args.notebook.is_file():
        parser.error(f"{args.notebook} does not exist")

    if os.environ.get("TLKIT_ASSETS"):  # the kernel runs in notebooks/: make a relative path absolute
        os.environ["TLKIT_ASSETS"] = str(Path(os.environ["TLKIT_ASSETS"]).resolve())
    os.environ.setdefault("TLKIT_PROFILE", "offline" if os.environ.get("TLKIT_ASSETS") else "full")
    print(f"Running {args.notebook} with the {os.environ['TLKIT_PROFILE']} profile ...", flush=True)
    notebook = nbformat.read(args.notebook, as_version=4)
    start = time.perf_counter()
    NotebookClient(notebook, timeout=args.timeout, kernel_name="python3", resources={"metadata": {"path": str(args.notebook.parent)}}).execute()
    elapsed = time.perf_counter() - start

    figures = args.out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    executed = args.out / args.notebook.name
    nbformat.write(notebook, executed)
    saved = 0
    for number, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            png = output.get("data", {}).get("image/png")
            if png:
                saved += 1
                (figures / f"{args.notebook.stem}_cell{number:02d}_{saved:02d}.png").write_bytes(base64.b64decode(png))
    print(f"Done in {elapsed:.0f} s: executed notebook {executed}, {saved} figure(s) in {figures}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
