"""The graded assignments: their autograders accept the solutions and reject wrong answers.

For every assignment in assignments/ (grading through otter-grader, offline, no Docker):
(a) the solution notebook gets full autograded marks; (b) the untouched student notebook gets
zero and does not crash the grader; (c) each realistic wrong answer in
assignments/wrong_answers.py fails exactly the tests written for its mistake and passes the
other tests of its question.

To keep this fast, each notebook is graded once, in a session fixture: the
solution is graded with one cell appended at its end that runs the wrong answers against the
graded kernel's own globals (the solution's score is recorded by then: otter checks each
question in the cell after it). The unit tests at the end check the checkers on tiny models.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
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

    # One kernel at a time: `make test`'s other worker has the second core. With two kernels beside it
    # (three processes on two cores) the command took as long (13:54 against 13:49) and its lessons longer.
    graded = dict(map(grade, jobs))
    for (name, kind), row in sorted(graded.items()):
        print(f"graded {name} {kind}: {row['total']:g} / {row['possible']:g} in {row['wall']:.0f} s")
    reports = {name: json.loads((out / f"{name}-wrong-answers.json").read_text()) for name in NAMES}
    for name, report in reports.items():
        print(f"measured by the {name} solution (seed 0, graded): {report['measured']}")
        answers = report["wrong_answers"]
        wall, cpu = (sum(a[key] for a in answers) for key in ("seconds", "cpu_seconds"))
        print(f"{len(answers)} wrong answers of {name} probed in {wall:.0f} s ({cpu:.0f} s of the kernel's CPU time)")
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


def autograded_questions(name: str) -> list[str]:
    """The questions of a master notebook that have tests (not the manually graded ones)."""
    questions = []
    for cell in nbformat.read(ASSIGNMENTS / f"{name}.ipynb", as_version=4).cells:
        lines = cell.source.splitlines()
        if cell.cell_type == "raw" and lines and lines[0] == "# BEGIN QUESTION" and "manual: true" not in lines:
            questions.append(next(line.split(":", 1)[1].strip() for line in lines if line.startswith("name:")))
    return questions


def test_four_quadrants_and_their_wrong_answers():
    assert len(ALL_NAMES) >= 4, ALL_NAMES
    assert sorted(wrong_answers.WRONG_ANSWERS) == ALL_NAMES, "every assignment has its wrong answers"
    for name, answers in wrong_answers.WRONG_ANSWERS.items():
        questions = autograded_questions(name)
        assert len(questions) >= 4, (name, questions)
        missing = [q for q in questions if not any(a.question == q for a in answers)]
        assert not missing, f"{name}: no wrong answer for the autograded question(s) {missing}"
        assert all(a.hint and a.fails for a in answers), f"{name}: every wrong answer names its tests and hint"
        mistakes = [a.mistake for a in answers]
        assert len(set(mistakes)) == len(mistakes), f"{name}: one wrong answer per mistake"


def test_readme_lists_every_wrong_answer():
    readme = (ASSIGNMENTS / "README.md").read_text()
    assert wrong_answers.markdown_table() in readme, "run python assignments/wrong_answers.py into the README"
    total = sum(map(len, wrong_answers.WRONG_ANSWERS.values()))
    assert f"{total} wrong answers" in readme


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
    unnamed = {test: text for test, text in report["messages"].items() if not re.search(answer.hint, text)}
    assert not unnamed, f"{name} {answer.question}, {answer.mistake!r}: hint {answer.hint!r} not in {unnamed}"


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


def test_preprocessing_and_pooling_checks_name_the_mistake():
    base = tiny_base()
    preprocess = keras.applications.mobilenet.preprocess_input
    images = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3)).astype("uint8")

    def features(scale, pooling):
        return lambda x: checks.POOLINGS[pooling](base(scale(x.astype("float32")), training=False))

    def feature_map(x):
        return base(x, training=False)

    good, maxed = features(preprocess, "global average pooling"), features(preprocess, "global max pooling")
    for answer in (good, maxed):  # the right scaling, whatever the pooling
        checks.check_preprocessing(answer, images, feature_map, preprocess)
    checks.check_average_pooling(good, images, feature_map, preprocess)
    with pytest.raises(AssertionError, match="global max pooling"):
        checks.check_average_pooling(maxed, images, feature_map, preprocess)
    scaled = features(lambda x: x / 255, "the flattened map (no pooling)")
    with pytest.raises(AssertionError, match=r"\[0, 1\]"):
        checks.check_preprocessing(scaled, images, feature_map, preprocess)
    with pytest.raises(AssertionError, match="flattened"):
        checks.check_average_pooling(scaled, images, feature_map, preprocess)
    with pytest.raises(AssertionError, match="any input scaling"):
        checks.check_preprocessing(lambda x: good(x) + 1, images, feature_map, preprocess)


def blocks_base() -> tuple[keras.Model, list[str]]:
    """Three blocks (convolution, BatchNorm, ReLU) and the layers that end them."""
    inputs = x = keras.Input((8, 8, 3))
    for i in range(3):
        x = keras.layers.Conv2D(4, 3, padding="same", name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
        x = keras.layers.ReLU(name=f"relu{i}")(x)
    return keras.Model(inputs, x), ["relu0", "relu1", "relu2"]


def test_top_blocks_check_names_the_mistake():
    def unfreeze(base, first, base_first=True):
        start = [layer.name for layer in base.layers].index(first)
        if base_first:
            base.trainable = True
        for i, layer in enumerate(base.layers):
            layer.trainable = i >= start and not isinstance(layer, keras.layers.BatchNormalization)
        if not base_first:
            base.trainable = True

    cases = {"conv1": None, "conv2": r"top 1 block\(s\) learn", "conv0": "every layer"}
    for first, message in cases.items():
        base, ends = blocks_base()
        base.trainable = False
        unfreeze(base, first)
        if message is None:
            checks.check_top_blocks(base, ends, 2)
        else:
            with pytest.raises(AssertionError, match=message):
                checks.check_top_blocks(base, ends, 2)
    base, ends = blocks_base()
    base.trainable = False
    for layer in base.layers:  # base.trainable = True forgotten: the base stays frozen
        layer.trainable = layer.name in ("conv1", "conv2")
    assert checks.learning_layers(base) == []
    with pytest.raises(AssertionError, match="base.trainable = True first"):
        checks.check_top_blocks(base, ends, 2)
    unfreeze(base, "conv1", base_first=False)
    with pytest.raises(AssertionError, match="every layer"):
        checks.check_top_blocks(base, ends, 2)


def test_measured_numbers_name_what_they_are():
    checks.check_measured(0.80, 0.805, "acc")
    with pytest.raises(AssertionError, match="which is the training accuracy"):
        checks.check_measured(1.0, 0.8, "acc", mistakes={"the training accuracy": 1.0})
    with pytest.raises(AssertionError, match="which is frozen_accuracy"):  # 2 of 250 test images apart
        checks.check_measured(0.948, 0.940, "acc", mistakes={"frozen_accuracy": 0.948})
    checks.check_measured(0.94, 0.94, "acc", mistakes={"frozen_accuracy": 0.94})  # no change: nothing to name
    with pytest.raises(AssertionError, match="evaluate returns"):
        checks.check_measured([0.5, 0.8], 0.8, "acc")
    with pytest.raises(AssertionError, match="percentage"):
        checks.check_measured(80.0, 0.8, "acc")
    with pytest.raises(AssertionError, match="Report the number your model measured"):
        checks.check_measured(0.9, 0.8, "acc", mistakes={"the training accuracy": 1.0})
    with pytest.raises(AssertionError, match="percentage"):
        checks.check_accuracy(80.0, 0.5, "acc", "offline")


def test_heads_and_losses_checks_name_the_mistake():
    features = np.random.default_rng(0).normal(size=(4, 6)).astype("float32")

    def head(activation="softmax", dtype="float32", hidden=False):
        inputs = keras.Input((6,))
        x = keras.layers.Dense(5, activation="relu")(inputs) if hidden else inputs
        return keras.Model(inputs, keras.layers.Dense(3, activation=activation, dtype=dtype)(x))

    checks.check_probabilities(head(), features, 3)
    with pytest.raises(AssertionError, match="sigmoid"):
        checks.check_probabilities(head("sigmoid"), features, 3)
    with pytest.raises(AssertionError, match="dtype='float32'"):
        checks.check_probabilities(checks.mixed_precision_model(lambda: head(dtype=None)), features, 3)
    assert keras.mixed_precision.dtype_policy().name == "float32", "the policy is restored"
    with pytest.raises(AssertionError, match="2 Dense layers"):
        checks.check_trainable_count(head(hidden=True), checks.dense_params(6, 3), "the head")
    model = head()
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(AssertionError, match="from_logits"):
        checks.check_sparse_loss(model)
    old = model.optimizer
    model.compile(optimizer=keras.optimizers.SGD(1e-4), loss="sparse_categorical_crossentropy")
    with pytest.raises(AssertionError, match="SGD"):
        checks.check_recompiled(model, old, 1e-4)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(AssertionError, match="Adam's default"):
        checks.check_recompiled(model, old, 1e-4)


def test_same_layers_and_dropout():
    def model(dropout):
        inputs = keras.Input((6,))
        x = keras.layers.Dropout(dropout)(inputs) if dropout else inputs
        return keras.Model(inputs, keras.layers.Dense(3)(x))

    checks.check_same_layers(model(0.2), model(0.2), "two models")
    checks.check_dropout(model(0.2), 0.2, "the model")
    with pytest.raises(AssertionError, match="depend on `weights`"):
        checks.check_same_layers(model(0.2), model(None), "two models")
    with pytest.raises(AssertionError, match="no Dropout"):
        checks.check_dropout(model(None), 0.2, "the model")


def test_lower_learning_rate():
    checks.check_lower_learning_rate(1e-4, 3e-3)
    checks.check_lower_learning_rate(1e-3, 5e-3)  # 5x: inside what lesson 03's range test chose (3-12x)
    with pytest.raises(AssertionError, match="too high"):
        checks.check_lower_learning_rate(1e-2, 3e-3)
    with pytest.raises(AssertionError, match="too low"):
        checks.check_lower_learning_rate(3e-6, 3e-3)
