"""Prints the wall time of each notebook after an nbval run (`pytest --nbval-lax notebooks`).

The time of a notebook is the sum of its cells' setup, run and teardown, so it includes
starting and stopping its kernel.
"""

from collections import defaultdict

_seconds: dict[str, float] = defaultdict(float)


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
