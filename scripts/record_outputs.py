"""Records every text output of the lessons and assignments, and compares two records with timings masked.

    python scripts/record_outputs.py record before.json                # this checkout, offline profile
    python scripts/record_outputs.py record after.json 03 assignments/02
    python scripts/record_outputs.py compare before.json after.json

A change that should not move any number (a refactoring) is checked this way: record on the old checkout
(`git worktree add ../old <rev>`, then `--repo ../old`), record on the new one, compare. The notebooks run as
`make test` runs them (offline profile, default seed), one kernel at a time; timings (seconds, images/s) are
masked before the comparison, since they differ from run to run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# A number followed by a unit of time or speed, a clock time, a memory address, a timing column of a table.
TIMING = re.compile(
    r"\d+(\.\d+)?\s*(CPU )?(s|ms|min|seconds|sec)\b|\d+(\.\d+)?\s*images/s|\d+:\d\d|at 0x[0-9a-f]+"
    r"|\(\s*\d+(\.\d+)?\s*(s|ms)?\)|\s+\d+\.\d\s*$|\d+(\.\d+)?x the seconds"
)


def notebooks(repo: Path, names: list[str]) -> list[Path]:
    every = sorted((repo / "notebooks").glob("*.ipynb")) + sorted((repo / "assignments").glob("*.ipynb"))
    if not names:
        return every
    chosen = [p for p in every if any(p.name.startswith(n) or str(p.relative_to(repo)).startswith(n) for n in names)]
    if len(chosen) < len(names):
        raise SystemExit(f"Unknown notebook in {names}. Expected name prefixes such as 03 or assignments/02.")
    return chosen


def record(repo: Path, out: Path, names: list[str]) -> None:
    import nbformat
    from nbclient import NotebookClient

    os.environ.update(TLKIT_PROFILE="offline", PYTHONPATH=str(repo))  # the kernels import this checkout's tlkit
    results = json.loads(out.read_text()) if out.exists() else {}
    for path in notebooks(repo, names):
        nb = nbformat.read(path, 4)
        start = time.perf_counter()
        NotebookClient(
            nb, timeout=1800, allow_errors=True, resources={"metadata": {"path": str(path.parent)}}
        ).execute()
        texts = []
        for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
            for output in cell.get("outputs", []):
                if output.output_type == "stream" and output.name == "stdout":
                    texts.append([i, output.text])
                elif output.output_type in ("execute_result", "display_data"):
                    texts.append([i, output.get("data", {}).get("text/plain", "")])
                elif output.output_type == "error":
                    texts.append([i, f"{output.ename}: {output.evalue}"])
        results[str(path.relative_to(repo))] = texts
        out.write_text(json.dumps(results, indent=1) + "\n")
        errors = sum(text.startswith(("AssertionError", "ValueError", "TypeError")) for _, text in texts)
        print(f"{path.name}: {time.perf_counter() - start:.0f} s, {len(texts)} outputs, {errors} errors", flush=True)


def lines(outputs: list) -> list[tuple[int, str]]:
    return [(cell, TIMING.sub("<t>", line)) for cell, text in outputs for line in text.splitlines()]


def compare(before: Path, after: Path) -> int:
    a, b = json.loads(before.read_text()), json.loads(after.read_text())
    differing = 0
    for name in sorted(set(a) | set(b)):
        old, new = lines(a.get(name, [])), lines(b.get(name, []))
        changed = (
            [(x, y) for x, y in zip(old, new) if x != y]
            + [(x, None) for x in old[len(new) :]]
            + [(None, y) for y in new[len(old) :]]
        )
        differing += len(changed)
        print(f"{name}: {max(len(old), len(new)) - len(changed)} of {max(len(old), len(new))} output lines identical")
        for x, y in changed[:10]:
            print(f"   before: {x[1][:140] if x else '(none)'}\n   after:  {y[1][:140] if y else '(none)'}")
    print(f"{differing} output lines differ (timings masked)")
    return 1 if differing else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    rec = commands.add_parser("record", help="run notebooks and write their text outputs to a JSON file")
    rec.add_argument("out", type=Path)
    rec.add_argument("names", nargs="*", help="notebook name prefixes (default: every lesson and assignment)")
    rec.add_argument("--repo", type=Path, default=REPO, help="the checkout to run (default: this one)")
    cmp = commands.add_parser("compare", help="compare two records, timings masked; exit 1 if a line differs")
    cmp.add_argument("before", type=Path)
    cmp.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    if args.command == "record":
        record(args.repo.resolve(), args.out, args.names)
        return 0
    return compare(args.before, args.after)


if __name__ == "__main__":
    sys.exit(main())
