"""Runs a lesson over many seeds in the offline profile and tabulates what its asserts check.

    python scripts/seeds.py notebooks/02_small_different_cut_earlier.ipynb --seeds 0-14 \\
        --show colour_drop different_drop random_accuracy
    python scripts/seeds.py 07 --seeds 10-14 --set EPOCHS=30 --jobs 2 --json runs.json

The lessons set each calibrated threshold from the values this prints for seeds 0-9 (with a stated margin)
and check it on seeds 10-14, which the threshold was not set on. Every cell runs even when an assert fails
(the failures are listed per seed, with their messages), so one command shows both the values and which
claims a seed breaks. Overrides go in after the parameters cell, as papermill injects them; `SEED` is set
per run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
MARK = "@@seeds@@"


def seed_range(text: str) -> list[int]:
    """`0-14`, `3`, or `0,2,5-7` as a list of seeds."""
    seeds = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        try:
            seeds.extend(range(int(low), int(high or low) + 1))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"Invalid value for --seeds. Received: {text!r}. Expected e.g. 0-14 or 0,3,5-9."
            ) from None
    return seeds


def setting(text: str) -> tuple[str, object]:
    """`NAME=VALUE`; VALUE is read as JSON (`3`, `[5, 20]`, `"x"`), else kept as text."""
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"Invalid value for --set. Received: {text!r}. Expected NAME=VALUE.")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def find_notebook(name: str) -> Path:
    """A path, or a name prefix: `02` is lesson 02, `assignments/02` assignment 02."""
    path = Path(name)
    if path.is_file():
        return path.resolve()
    folder, _, prefix = name.rpartition("/")
    found = sorted((REPO / (folder or "notebooks")).glob(f"{prefix}*.ipynb"))
    if len(found) != 1:
        sys.exit(f"No single notebook matches {name!r}.")
    return found[0]


def prepared(notebook: Path, values: dict, show: list[str]):
    """The notebook with `values` injected after its parameters cell and a last cell that reports `show`."""
    nb = nbformat.read(notebook, as_version=4)
    at = next((i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])), None)
    if at is None:
        sys.exit(f"{notebook.name} has no cell tagged `parameters`.")
    lines = [f"{name} = {value!r}" for name, value in values.items()]
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell("\n".join(lines)))
    report = (
        "import json as _json\n"
        "def _plain(v):\n"
        "    if isinstance(v, dict):\n"
        "        return {str(k): _plain(x) for k, x in v.items()}\n"
        "    if isinstance(v, (list, tuple)):\n"
        "        return [_plain(x) for x in v]\n"
        "    try:\n"
        "        return v.tolist()\n"
        "    except AttributeError:\n"
        "        return v if isinstance(v, (int, float, str, bool, type(None))) else repr(v)\n"
        f"print({MARK!r} + _json.dumps({{n: _plain(globals().get(n)) for n in {show!r}}}, default=repr))"
    )
    nb.cells.append(nbformat.v4.new_code_cell(report))
    return nb


def run_one(notebook: Path, seed: int, extra: dict, show: list[str], timeout: int) -> dict:
    nb = prepared(notebook, {**extra, "SEED": seed}, show)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", allow_errors=True,
        resources={"metadata": {"path": str(notebook.parent)}},
    )  # fmt: skip
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    failures, values = [], {}
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                failures.append(f"cell {index}: {output['ename']}: {output['evalue']}"[:300])
            text = output.get("text", "")
            if output.get("output_type") == "stream" and MARK in text:
                values = json.loads(text.split(MARK, 1)[1])
    return {"seed": seed, "seconds": round(seconds, 1), "values": values, "failures": failures}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", help="a notebook path or name prefix: 02 (lesson 02), assignments/02")
    parser.add_argument("--seeds", type=seed_range, default=seed_range("0-14"), help="e.g. 0-14 (default)")
    parser.add_argument("--show", nargs="*", default=[], help="variables to print per seed")
    parser.add_argument("--set", type=setting, action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--jobs", type=int, default=1, help="seeds run at once (each in its own kernel)")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds allowed per cell")
    parser.add_argument("--json", type=Path, help="also write every run's values and failures here")
    args = parser.parse_args(argv)
    os.environ.setdefault("TLKIT_PROFILE", "offline")
    if "TLKIT_ASSETS" not in os.environ and (REPO.parent / "shared" / "data").is_dir():
        os.environ["TLKIT_ASSETS"] = str(REPO.parent / "shared" / "data")
    notebook = find_notebook(args.notebook)
    extra = dict(args.set)
    print(f"{notebook.name}, profile {os.environ['TLKIT_PROFILE']}, overrides {extra or 'none'}", flush=True)
    runs = []
    with ThreadPoolExecutor(args.jobs) as pool:
        jobs = [pool.submit(run_one, notebook, seed, extra, args.show, args.timeout) for seed in args.seeds]
        for job in jobs:
            run = job.result()
            runs.append(run)
            shown = "  ".join(f"{k}={json.dumps(v)}" for k, v in run["values"].items())
            print(f"seed {run['seed']:3d} ({run['seconds']:.0f} s)  {shown}", flush=True)
            for failure in run["failures"]:
                print(f"         FAILED {failure}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"notebook": notebook.name, "overrides": extra, "runs": runs}, indent=1))
    broken = [run["seed"] for run in runs if run["failures"]]
    print(f"{len(runs) - len(broken)} of {len(runs)} seeds ran every cell without an error" +
          (f"; errors on seeds {broken}" if broken else ""))  # fmt: skip
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
