"""Runs the longest test files first, and prints the wall time of each notebook after an nbval run.

pytest-xdist (`-n 2 --dist loadfile`) hands out whole files in collection order. The assignments'
grading (one session fixture of several minutes) and the lessons are the longest; started last, one of
them would keep one worker busy while the other has nothing left to do. So they go first, and the
short unit tests fill the end.

The time of a notebook is the sum of its cells' setup, run and teardown, so it includes
starting and stopping its kernel.
"""

from collections import defaultdict

_seconds: dict[str, float] = defaultdict(float)
LONGEST = ("tests/test_assignments.py", "notebooks/")  # in this order, before everything else


def _rank(item) -> int:
    path = item.nodeid.split("::")[0]
    return next((i for i, start in enumerate(LONGEST) if path.startswith(start)), len(LONGEST))


def pytest_collection_modifyitems(items):
    items.sort(key=_rank)  # stable: each file's tests keep their order


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _seconds[path] += report.duration


def pytest_terminal_summary(terminalreporter):
    if _seconds:
        terminalreporter.write_sep("-", "notebook wall time")
        for path, seconds in sorted(_seconds.items(), key=lambda item: -item[1]):
            terminalreporter.write_line(f"{seconds:8.1f} s  {path}")
        terminalreporter.write_line(f"{sum(_seconds.values()):8.1f} s  all {len(_seconds)} notebooks")
