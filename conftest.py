"""Orders the lessons longest first, and prints the wall time of each notebook after an nbval run.

pytest-xdist (`-n 2 --dist loadfile`) hands out whole files in collection order: the unit tests, then the
lessons. The lessons come last, each taking minutes; in number order the longest (06) came near the end,
and one worker ran it alone while the other had nothing left. Longest first, the short ones fill the end.

The time of a notebook is the sum of its cells' setup, run and teardown, so it includes
starting and stopping its kernel.
"""

from collections import defaultdict

_seconds: dict[str, float] = defaultdict(float)
# The lessons by their nbval wall time in `make test` (2 cores), longest first.
LESSON_ORDER = ("06", "04", "05", "02", "01", "03", "08", "07", "00")


def _rank(item) -> tuple[int, int]:
    path = item.nodeid.split("::")[0]
    if not path.startswith("notebooks/"):
        return (0, 0)
    number = path.removeprefix("notebooks/")[:2]
    return (1, LESSON_ORDER.index(number) if number in LESSON_ORDER else len(LESSON_ORDER))


def pytest_collection_modifyitems(items):
    items.sort(key=_rank)  # stable: the tests keep their order, and each file its own


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
