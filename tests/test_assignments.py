"""The graded assignments: their autograders accept the solutions and reject wrong answers.

For every assignment in assignments/ (grading through otter-grader, offline, no Docker):
(a) the solution notebook gets full autograded marks; (b) the untouched student notebook gets
zero and does not crash the grader; (c) each realistic wrong answer in
assignments/wrong_answers.py fails exactly the tests written for its mistake and passes the
other tests of its question.

To keep this fast, each notebook is graded once, two at a time, in a session fixture: the
solution is graded with one cell appended at its end that runs the wrong answers against the
graded kernel's own globals (the solution's score is recorded by then: otter checks each
question in the cell after it). The unit tests at the end check the checkers on tiny models.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import keras
import nbformat
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENTS = REPO / "assignments"
sys.path.insert(0, str(ASSIGNMENTS))

import checks
import wrong_answers

ALL_NAMES = sorted(p.stem for p in ASSIGNMENTS.glob("[0-9][0-9]_*.ipynb"))
# TLKIT_ASSIGNMENTS=02,04 grades only those (while writing one); unset: every assignment.
NAMES = [n for n in ALL_NAMES if any(n.startswith(k) for k in os.environ.get("TLKIT_ASSIGNMENTS", "").split(",") if k)]
NAMES = NAMES or ALL_NAMES
PROBE_CELL = """\
import sys
sys.path.insert(0, {assignments!r})
import wrong_answers
wrong_answers.write_report(globals(), {name!r}, {tests!r}, {report!r})
"""

needs_grading = pytest.mark.skipif(
    not (os.environ.get("TLKIT_ASSETS") and Path(os.environ["TLKIT_ASSETS"], "weights").is_dir()),
    reason="grading runs the assignments on the offline assets: set TLKIT_ASSETS to the folder with weights/",
)


def _grade_all(out: Path) -> dict:
    """Builds every assignment, grades its solution (+ probe) and its student notebook."""
    pytest.importorskip("otter", reason="grading needs otter-grader: pip install -e '.[assignments]'")
    import build

    jobs = []
    for name in NAMES:
        target = build.build(ASSIGNMENTS / f"{name}.ipynb", out)
        solution = nbformat.read(target / "autograder" / f"{name}.ipynb", as_version=4)
        probe = PROBE_CELL.format(
            assignments=str(ASSIGNMENTS),
            name=name,
            tests=str(target / "autograder" / "tests"),
            report=str(out / f"{name}-wrong-answers.json"),
        )
        solution.cells.append(nbformat.v4.new_code_cell(probe))
        probed = out / f"{name}-solution" / f"{name}.ipynb"
        probed.parent.mkdir()
        nbformat.write(solution, probed)
        autograder = target / f"{name}-autograder.zip"
        jobs.append((name, "solution", autograder, probed))
        jobs.append((name, "student", autograder, target / "student" / f"{name}.ipynb"))

    def grade(job):
        name, kind, autograder, notebook = job
        report = out / f"{name}-{kind}.json"
        start = time.perf_counter()
        command = [sys.executable, str(ASSIGNMENTS / "grade.py"), str(autograder), str(notebook), "--json", str(report)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        assert result.returncode == 0, f"grading {notebook} crashed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        return (name, kind), {**json.loads(report.read_text())[0], "wall": seconds}

    with ThreadPoolExecutor(max_workers=2) as pool:  # two kernels at a time
        graded = dict(pool.map(grade, jobs))
    for (name, kind), row in sorted(graded.items()):
        print(f"graded {name} {kind}: {row['total']:g} / {row['possible']:g} in {row['wall']:.0f} s")
    reports = {name: json.loads((out / f"{name}-wrong-answers.json").read_text()) for name in NAMES}
    for name, report in reports.items():
        print(f"measured by the {name} solution (seed 0, graded): {report['measured']}")
    probes = {name: report["wrong_answers"] for name, report in reports.items()}
    return graded, probes


@pytest.fixture(scope="session")
def grading(tmp_path_factory):
    return _grade_all(tmp_path_factory.mktemp("assignments"))


@pytest.fixture
def graded(grading):
    return grading[0]


@pytest.fixture
def probes(grading):
    return grading[1]


def test_four_quadrants_and_their_wrong_answers():
    assert len(ALL_NAMES) >= 4, ALL_NAMES
    assert sorted(wrong_answers.WRONG_ANSWERS) == ALL_NAMES, "every assignment has its wrong answers"
    for name, answers in wrong_answers.WRONG_ANSWERS.items():
        assert len({a.question for a in answers}) >= 3, f"{name}: wrong answers for at least 3 questions"


@needs_grading
@pytest.mark.parametrize("name", NAMES)
def test_solution_gets_full_marks(name, graded):
    row = graded[(name, "solution")]
    failed = {q: [t for t, ok in tests.items() if not ok] for q, tests in row["tests"].items()}
    assert row["possible"] >= 8 and row["total"] == row["possible"], failed


@needs_grading
@pytest.mark.parametrize("name", NAMES)
def test_student_notebook_gets_zero(name, graded):
    row, solution = graded[(name, "student")], graded[(name, "solution")]
    assert row["possible"] == solution["possible"], "every question was graded"
    assert sorted(row["tests"]) == sorted(solution["tests"])
    assert row["total"] == 0, {q: [t for t, ok in tests.items() if ok] for q, tests in row["tests"].items()}


CASES = [(name, i) for name in NAMES for i in range(len(wrong_answers.WRONG_ANSWERS.get(name, [])))]


@needs_grading
@pytest.mark.parametrize(
    "name, index", CASES, ids=[f"{n}-{wrong_answers.WRONG_ANSWERS[n][i].question}-{i}" for n, i in CASES]
)
def test_wrong_answer_fails_its_test(name, index, probes):
    answer = wrong_answers.WRONG_ANSWERS[name][index]
    report = probes[name][index]
    assert report["mistake"] == answer.mistake
    assert set(answer.fails) <= set(report["tests"]), f"unknown test names in {sorted(answer.fails)}"
    assert report["failed"] == sorted(answer.fails), (
        f"{name} {answer.question}, {answer.mistake!r}: failed {report['failed']}, expected {sorted(answer.fails)}"
    )


# ---------------------------------------------------------------------------- the checkers, on tiny models


def tiny_base() -> keras.Model:
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    return keras.Model(inputs, keras.layers.ReLU(name="relu")(x), name="tiny")


def tiny_classifier(base: keras.Model) -> keras.Model:
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D()(base(inputs, training=False))
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", dtype="float32")(x))


def test_check_frozen_names_the_fix():
    base = tiny_base()
    with pytest.raises(AssertionError, match="trainable = False"):
        checks.check_frozen(base)
    base.trainable = False
    checks.check_frozen(base)


def test_batchnorm_checks():
    base = tiny_base()
    checks.check_batchnorm_trainable(base)
    with pytest.raises(AssertionError, match="BatchNormalization layers are trainable"):
        checks.check_batchnorm_frozen(base)
    base.get_layer("bn").trainable = False
    checks.check_batchnorm_frozen(base)
    with pytest.raises(AssertionError, match="frozen"):
        checks.check_batchnorm_trainable(base)


def test_recompile_and_one_step_catch_a_stale_optimizer():
    images = np.random.default_rng(0).uniform(0, 255, (8, 8, 8, 3)).astype("float32")
    labels = np.arange(8) % 3
    base = tiny_base()
    base.trainable = False
    model = tiny_classifier(base)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    checks.one_step(model, images, labels)
    old = model.optimizer
    base.trainable = True
    base.get_layer("bn").trainable = False
    with pytest.raises(AssertionError, match="not compiled again"):
        checks.check_recompiled(model, old, 1e-3)
    with pytest.raises(AssertionError, match="compiled again"):  # fit kept the old trainable set
        checks.check_one_step(model, base, images, labels, statistics_move=False)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="sparse_categorical_crossentropy")
    checks.check_recompiled(model, old, 1e-4)
    checks.check_one_step(model, base, images, labels, statistics_move=False)
    with pytest.raises(AssertionError, match="should adapt"):
        checks.check_one_step(model, base, images, labels, statistics_move=True)


def test_sparse_loss_and_probabilities():
    model = tiny_classifier(tiny_base())
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    with pytest.raises(AssertionError, match="sparse_categorical_crossentropy"):
        checks.check_sparse_loss(model)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy())
    checks.check_sparse_loss(model)
    checks.check_probabilities(model, np.zeros((2, 8, 8, 3), "float32"), 3)
    with pytest.raises(AssertionError, match="expected \\(2, 4\\)"):
        checks.check_probabilities(model, np.zeros((2, 8, 8, 3), "float32"), 4)


def test_features_cached_counts_every_pass():
    extractor = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    spy, counter = checks.counting(extractor)
    features = np.zeros((10, 4), "float32")
    spy.predict(features, verbose=0)
    checks.check_features_cached(counter, 10, 3)
    for _ in range(2):
        spy.predict(features, verbose=0)
    with pytest.raises(AssertionError, match="recomputed"):
        checks.check_features_cached(counter, 10, 3)


def test_preprocessing_check_names_the_mistake():
    base = tiny_base()
    preprocess = keras.applications.mobilenet.preprocess_input
    images = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3)).astype("uint8")
    reference = base.predict  # the expected features of preprocessed images
    checks.check_preprocessing(lambda x: base.predict(preprocess(x.astype("float32"))), images, reference, preprocess)
    with pytest.raises(AssertionError, match=r"\[0, 1\]"):
        checks.check_preprocessing(lambda x: base.predict(x / 255), images, reference, preprocess)


def test_lower_learning_rate():
    checks.check_lower_learning_rate(1e-4, 3e-3)
    with pytest.raises(AssertionError, match="10 to 100x lower"):
        checks.check_lower_learning_rate(1e-2, 3e-3)
