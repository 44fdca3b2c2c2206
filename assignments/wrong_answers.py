"""Realistic wrong answers, and the test each one must fail.

Each `WrongAnswer` is the code a student might write for one question, with one typical
mistake. `probe(env, tests_dir)` runs it in a copy of a solved notebook's globals `env` and
then runs every test of that question (hidden ones included) against the result. A checker
works when the wrong answer fails exactly the tests in `fails` and passes the others of its
question: the test names the mistake, and only that one. tests/test_assignments.py runs the
probe inside the grader's kernel, after the solution has been graded.
"""

from __future__ import annotations

import dataclasses
import json
import textwrap
import time
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class WrongAnswer:
    """One mistake: the question, what is wrong, the code, and the tests it must fail."""

    question: str
    mistake: str
    code: str
    fails: frozenset[str]


def wrong(question: str, mistake: str, code: str, *fails: str) -> WrongAnswer:
    return WrongAnswer(question, mistake, textwrap.dedent(code), frozenset(fails))


EXTRACTOR = """\
def build_extractor(base):
    {freeze}
    inputs = keras.Input(shape={shape})
    x = {preprocess}
    x = base(x, training=False)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
"""

HEAD = """\
def make_head(num_features, num_classes, learning_rate):
    inputs = keras.Input(shape=(num_features,))
    x = keras.layers.Dropout(0.2)(inputs){hidden}
    outputs = keras.layers.Dense(num_classes, activation={activation}, dtype="float32")(x)
    head = keras.Model(inputs, outputs)
    head.compile(optimizer=keras.optimizers.Adam({rate}), loss={loss}, metrics=["accuracy"])
    return head
"""


def extractor(freeze="base.trainable = False", shape="base.input_shape[1:]", preprocess=None):
    preprocess = preprocess or "keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)"
    return EXTRACTOR.format(freeze=freeze, shape=shape, preprocess=preprocess)


def head(hidden="", activation='"softmax"', rate="learning_rate", loss='"sparse_categorical_crossentropy"'):
    return HEAD.format(hidden=hidden, activation=activation, rate=rate, loss=loss)


CUT_CLASSIFIER = """\
def build_cut_classifier(trunk, num_classes):
    inputs = keras.Input(shape=trunk.input_shape[1:])
    x = {preprocess}
    x = trunk(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax", dtype="float32")(x))
"""

COMPILE = 'model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy")'

CLASSIFIER = """\
def make_classifier(weights, num_classes):
    base = tlkit.load_backbone(BACKBONE, IMAGE_SIZE, weights={weights})
    inputs = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
    x = {preprocess}
    x = keras.layers.GlobalAveragePooling2D()(base(x))
    x = keras.layers.Dropout(0.2)(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax", dtype="float32")(x)), base
"""

RESCALE = "keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)"

WRONG_ANSWERS: dict[str, list[WrongAnswer]] = {
    "01_small_similar": [
        wrong("q1", "base not frozen", extractor(freeze="pass"), "test_base_frozen"),
        wrong(
            "q1",
            "wrong preprocessing: pixels scaled to [0, 1]",
            extractor(preprocess="keras.layers.Rescaling(1 / 255)(inputs)"),
            "test_preprocessing",
            "test_any_input_size",
        ),
        wrong(
            "q1", "no preprocessing at all", extractor(preprocess="inputs"), "test_preprocessing", "test_any_input_size"
        ),
        wrong("q1", "input size hard-coded", extractor(shape="(96, 96, 3)"), "test_any_input_size"),
        wrong(
            "q2",
            "one-hot loss where integer labels are given",
            head(loss='"categorical_crossentropy"'),
            "test_integer_labels",
        ),
        wrong("q2", "no softmax (logits out)", head(activation="None"), "test_probabilities"),
        wrong("q2", "the learning rate argument ignored", head(rate=""), "test_learning_rate"),
        wrong(
            "q2",
            "an extra hidden layer",
            head(hidden='\n    x = keras.layers.Dense(64, activation="relu")(x)'),
            "test_one_dense_layer",
        ),
        wrong(
            "q3",
            "features recomputed every epoch",
            """\
            def fit_on_cached_features(extractor, head, images, labels, epochs):
                for _ in range(epochs):
                    features = extractor.predict(images, verbose=0)
                    head.fit(features, labels, epochs=1, batch_size=32, verbose=0)
                return features
            """,
            "test_features_computed_once",
        ),
        wrong(
            "q3",
            "the whole network fitted end to end",
            """\
            def fit_on_cached_features(extractor, head, images, labels, epochs):
                model = keras.Sequential([extractor, head])
                model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
                model.fit(images, labels, epochs=epochs, batch_size=32, verbose=0)
                return extractor.predict(images, verbose=0)
            """,
            "test_features_computed_once",
        ),
        wrong(
            "q3",
            "the head never trained",
            """\
            def fit_on_cached_features(extractor, head, images, labels, epochs):
                return extractor.predict(images, verbose=0)
            """,
            "test_head_trained",
        ),
        wrong("q4", "a number typed in", "frozen_accuracy = 0.93\n", "test_frozen_accuracy_is_measured"),
        wrong(
            "q4",
            "the 'random' run on ImageNet weights",
            """\
            random_extractor = build_extractor(tlkit.load_backbone(BACKBONE, IMAGE_SIZE))
            random_head = make_head(num_features, data.num_classes, HEAD_LEARNING_RATE)
            fit_on_cached_features(random_extractor, random_head, data.train.images, data.train.labels, HEAD_EPOCHS)
            random_features = random_extractor.predict(data.test.images, verbose=0)
            random_accuracy = tlkit.accuracy(random_head, random_features, test_labels)
            """,
            "test_imagenet_beats_random",
        ),
    ],
    "02_small_different": [
        wrong(
            "q1",
            "trunk not frozen",
            """\
            def cut_base(base, layer_name):
                return keras.Model(base.input, base.get_layer(layer_name).output)
            """,
            "test_trunk_frozen",
        ),
        wrong(
            "q1",
            "a new network with random weights, cut",
            """\
            def cut_base(base, layer_name):
                fresh = tlkit.load_backbone(BACKBONE, IMAGE_SIZE, weights=None)
                trunk = keras.Model(fresh.input, fresh.get_layer(layer_name).output)
                trunk.trainable = False
                return trunk
            """,
            "test_pretrained_weights_kept",
        ),
        wrong(
            "q2",
            "the earliest candidate, 'cut earlier' taken literally",
            "CUT = CANDIDATES[0]\n",
            "test_cut_is_the_best_on_validation",
        ),
        wrong("q3", "no preprocessing", CUT_CLASSIFIER.format(preprocess="inputs"), "test_preprocessing"),
        wrong(
            "q3",
            "trunk unfrozen in the classifier",
            CUT_CLASSIFIER.format(preprocess="inputs").replace(
                "    x = inputs\n", f"    trunk.trainable = True\n    x = {RESCALE}\n"
            ),
            "test_only_the_head_learns",
        ),
        wrong(
            "q4",
            "BatchNorm left trainable on small data",
            f"""\
            def prepare_fine_tuning(model, trunk, learning_rate):
                trunk.trainable = True
                {COMPILE}
            """,
            "test_batchnorm_frozen",
            "test_one_step",
        ),
        wrong(
            "q4",
            "no recompile after unfreezing",
            """\
            def prepare_fine_tuning(model, trunk, learning_rate):
                trunk.trainable = True
                for layer in trunk.layers:
                    if isinstance(layer, keras.layers.BatchNormalization):
                        layer.trainable = False
                model.optimizer.learning_rate = learning_rate
            """,
            "test_recompiled",
            "test_one_step",
        ),
        wrong("q4", "learning rate 100x too high", "FINE_TUNE_LEARNING_RATE = 1e-2\n", "test_fine_tune_rate_is_lower"),
        wrong(
            "q4",
            "one-hot loss where integer labels are given",
            """\
            def prepare_fine_tuning(model, trunk, learning_rate):
                trunk.trainable = True
                for layer in trunk.layers:
                    if isinstance(layer, keras.layers.BatchNormalization):
                        layer.trainable = False
                model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="categorical_crossentropy")
            """,
            "test_recompiled",
            "test_one_step",  # fit cannot train a one-hot loss on integer labels
        ),
        wrong("q5", "a number typed in", "tuned_accuracy = 0.95\n", "test_tuned_accuracy_is_measured"),
    ],
    "03_large_similar": [
        wrong(
            "q1",
            "the whole base unfrozen (BatchNorm kept frozen)",
            """\
            def unfreeze_top_blocks(base, ends, blocks):
                base.trainable = True
                for layer in base.layers:
                    if isinstance(layer, keras.layers.BatchNormalization):
                        layer.trainable = False
            """,
            "test_top_blocks_learn",
            "test_other_block_counts",
        ),
        wrong(
            "q1",
            "BatchNorm unfrozen with the top blocks",
            """\
            def unfreeze_top_blocks(base, ends, blocks):
                base.trainable = True
                names = [layer.name for layer in base.layers]
                first = names.index(ends[-blocks - 1]) + 1
                for i, layer in enumerate(base.layers):
                    layer.trainable = i >= first
            """,
            "test_batchnorm_frozen",
        ),
        wrong(
            "q1",
            "the number of blocks hard-coded",
            """\
            def unfreeze_top_blocks(base, ends, blocks):
                base.trainable = True
                first = [layer.name for layer in base.layers].index(ends[-3]) + 1
                for i, layer in enumerate(base.layers):
                    layer.trainable = i >= first and not isinstance(layer, keras.layers.BatchNormalization)
            """,
            "test_other_block_counts",
        ),
        wrong(
            "q2",
            "no recompile: only the old optimizer's learning rate changed",
            """\
            def recompile_for_fine_tuning(model, learning_rate):
                model.optimizer.learning_rate = learning_rate
            """,
            "test_recompiled",
            "test_one_step",
        ),
        wrong(
            "q2",
            "one-hot loss where integer labels are given",
            """\
            def recompile_for_fine_tuning(model, learning_rate):
                model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="categorical_crossentropy")
            """,
            "test_recompiled",
            "test_one_step",  # fit cannot train a one-hot loss on integer labels
        ),
        wrong("q3", "learning rate 100x too high", "FINE_TUNE_LEARNING_RATE = 1e-2\n", "test_rate_is_lower"),
        wrong(
            "q3",
            "the head's learning rate kept",
            "FINE_TUNE_LEARNING_RATE = HEAD_LEARNING_RATE\n",
            "test_rate_is_lower",
        ),
        wrong(
            "q4",
            "a number typed in",
            "tuned_accuracy = 0.99\n",
            "test_tuned_accuracy_is_measured",
        ),
    ],
    "04_large_different": [
        wrong(
            "q1",
            "wrong preprocessing: pixels scaled to [0, 1]",
            CLASSIFIER.format(weights="weights", preprocess="keras.layers.Rescaling(1 / 255)(inputs)"),
            "test_preprocessing",
        ),
        wrong(
            "q1",
            "ImageNet weights whatever `weights` says",
            CLASSIFIER.format(weights='"imagenet"', preprocess=RESCALE),
            "test_weights_as_asked",
        ),
        wrong(
            "q2",
            "BatchNorm kept frozen on a large new domain (tlkit.unfreeze_all's default)",
            f"""\
            def unfreeze_everything(model, base, learning_rate):
                tlkit.unfreeze_all(base)
                {COMPILE}
            """,
            "test_batchnorm_adapts",
            "test_one_step",
        ),
        wrong(
            "q2",
            "no recompile after unfreezing",
            """\
            def unfreeze_everything(model, base, learning_rate):
                base.trainable = True
                model.optimizer.learning_rate = learning_rate
            """,
            "test_recompiled",
            "test_one_step",
        ),
        wrong(
            "q2",
            "only the top of the base unfrozen",
            f"""\
            def unfreeze_everything(model, base, learning_rate):
                tlkit.unfreeze_top(base, 2, BACKBONE, train_batchnorm=True)
                {COMPILE}
            """,
            "test_every_layer_learns",
            "test_batchnorm_adapts",
        ),
        wrong(
            "q3",
            "a smaller budget for the scratch run",
            "scratch_history = tlkit.fit(scratch, train, epochs=1, verbose=0)\n",
            "test_same_budget",
        ),
        wrong(
            "q3",
            "scratch trained at the fine-tuning rate",
            """\
            scratch, scratch_base = make_classifier(None, data.num_classes)
            tlkit.compile_model(scratch, FINE_TUNE_LEARNING_RATE)
            scratch_history = tlkit.fit(scratch, train.take(1), epochs=EPOCHS, verbose=0)  # 1 batch an epoch: cheap
            """,
            "test_scratch_learning_rate",
        ),
        wrong(
            "q4",
            "the two accuracies swapped",
            "pretrained_accuracy, scratch_accuracy = scratch_accuracy, pretrained_accuracy\n",
            "test_accuracies_are_measured",
            "test_pretraining_ahead",
        ),
    ],
}


def test_names(test_file) -> list[str]:
    """The names of the test functions of an otter test file, in order."""
    return [tc.body.test_func.__name__ for tc in test_file.test_cases]


def run_question(env: dict, tests_dir: str | Path, question: str) -> dict[str, bool]:
    """Runs every test of `question` (hidden ones too) against `env`: name -> passed."""
    from otter.test_files import ExceptionTestFile

    test_file = ExceptionTestFile.from_file(str(Path(tests_dir) / f"{question}.py"))
    test_file.run(env)
    return {r.test_case.body.test_func.__name__: r.passed for r in test_file.test_case_results}


def probe(env: dict, assignment: str, tests_dir: str | Path) -> list[dict]:
    """Runs each wrong answer of `assignment` in a copy of `env`; returns what failed."""
    report = []
    for answer in WRONG_ANSWERS[assignment]:
        start = time.perf_counter()
        wrong_env = dict(env)
        exec(answer.code, wrong_env)  # noqa: S102 (the wrong answer, our own code, as a student's cell)
        results = run_question(wrong_env, tests_dir, answer.question)
        report.append(
            {
                "question": answer.question,
                "mistake": answer.mistake,
                "expected_to_fail": sorted(answer.fails),
                "failed": sorted(name for name, passed in results.items() if not passed),
                "tests": sorted(results),
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
    return report


MEASURED = (
    "frozen_accuracy",
    "random_accuracy",
    "val_accuracy",
    "CUT",
    "cut_accuracy",
    "tuned_accuracy",
    "pretrained_accuracy",
    "scratch_accuracy",
)


def write_report(env: dict, assignment: str, tests_dir: str | Path, path: str | Path) -> None:
    """`probe`, and the numbers the solution measured, as JSON in `path` (run in a grading kernel)."""
    measured = {name: env[name] for name in MEASURED if name in env}
    report = {
        "measured": json.loads(json.dumps(measured, default=float)),
        "wrong_answers": probe(env, assignment, tests_dir),
    }
    Path(path).write_text(json.dumps(report, indent=1))
