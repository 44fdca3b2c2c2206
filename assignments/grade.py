"""Grades submitted notebooks locally (no Docker) with an assignment's autograder.

    python assignments/grade.py build/assignments/01_small_similar/01_small_similar-autograder.zip \\
        submissions/*.ipynb [--csv scores.csv]

Each notebook is run from the top in a fresh kernel, with every test, hidden ones included
(otter-grader's `otter run`, through its Python API). Run it with the profile the tests were
calibrated in: `TLKIT_PROFILE=offline TLKIT_ASSETS=<the offline assets>`.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
import zipfile
from pathlib import Path


def grade(submission: str | Path, autograder: str | Path):
    """Grades one notebook; returns otter's `GradingResults` (`.total`, `.possible`, `.results`)."""
    from otter.api import grade_submission

    return grade_submission(str(submission), str(autograder), quiet=True)


def test_names(autograder: str | Path) -> dict[str, list[str]]:
    """Question -> the names of its test functions, in order, read from the autograder zip."""
    from otter.test_files import ExceptionTestFile

    names = {}
    with zipfile.ZipFile(autograder) as z:
        for path in z.namelist():
            if path.startswith("tests/") and path.endswith(".py"):
                test_file = ExceptionTestFile.from_string(z.read(path).decode(), path=path)
                names[test_file.name] = [tc.body.test_func.__name__ for tc in test_file.test_cases]
    return names


def test_results(results, names: dict[str, list[str]]) -> dict[str, dict[str, bool]]:
    """Question -> test name -> passed (results come back from the kernel without the functions)."""
    return {
        question: {name: tc.passed for name, tc in zip(names[question], r.test_case_results)}
        for question, r in sorted(results.results.items())
    }


def scores(results) -> dict[str, float]:
    """Points per question, from a `GradingResults`."""
    return {name: float(r.score) for name, r in sorted(results.results.items())}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("autograder", type=Path, help="the NN_name-autograder.zip that build.py wrote")
    parser.add_argument("submissions", nargs="+", type=Path, help="the notebooks to grade")
    parser.add_argument("--csv", type=Path, help="also write the scores to this CSV file")
    parser.add_argument("--json", type=Path, help="also write every test's result to this JSON file")
    parser.add_argument("--executed", type=Path, help="also write each executed notebook (with outputs) here")
    args = parser.parse_args(argv)
    if not args.autograder.is_file():
        raise SystemExit(f"No autograder at {args.autograder}: run `make assignments` first.")
    rows, names = [], test_names(args.autograder)
    for submission in args.submissions:
        start = time.perf_counter()
        results = grade(submission, args.autograder)
        seconds = time.perf_counter() - start
        row = {
            "submission": str(submission),
            **scores(results),
            "total": results.total,
            "possible": results.possible,
            "seconds": round(seconds, 1),
        }
        row["tests"] = test_results(results, names)
        if args.executed:
            import nbformat

            args.executed.mkdir(parents=True, exist_ok=True)
            nbformat.write(results.notebook, args.executed / Path(submission).name)
        rows.append(row)
        print(f"{submission}: {results.total:g} / {results.possible:g} autograded points ({seconds:.0f} s)")
        for name, r in sorted(results.results.items()):
            failed = [test for test, passed in row["tests"][name].items() if not passed]
            print(f"  {name}: {r.score:g} / {r.possible:g}" + (f"  failed: {', '.join(failed)}" if failed else ""))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    if args.csv:
        rows = [{k: v for k, v in row.items() if k != "tests"} for row in rows]
        with args.csv.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for row in rows for k in row)))
            writer.writeheader()
            writer.writerows(rows)
        print(f"scores written to {args.csv}")


if __name__ == "__main__":
    main()
