"""Realistic wrong answers, and the test each one must fail, with the hint it must give.

Each `WrongAnswer` is the code a student might write for one question, with one typical
mistake. `probe(env, assignment, tests_dir)` runs it in a copy of a solved notebook's globals
`env` and then runs every test of that question (hidden ones included) against the result. A
checker works when the wrong answer fails exactly the tests in `fails`, passes the others of
its question, and each failing test's message matches `hint` (a regular expression): the
test names the mistake it sees, and only that one. tests/test_assignments.py runs the probe
inside the grader's kernel, after the solution has been graded.

The copy of the globals is shallow: a wrong answer that changes an object the solution made
(trains its model again, say) comes last in its assignment's list, so that it cannot change
what the others are tested against.
"""

from __future__ import annotations

import dataclasses
import json
import re
import textwrap
import time
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class WrongAnswer:
    """One mistake: the question, what is wrong, the code, the tests it must fail and their hint."""

    question: str
    mistake: str
    code: str
    fails: frozenset[str]
    hint: str


def wrong(question: str, mistake: str, code: str, *fails: str, hint: str) -> WrongAnswer:
    return WrongAnswer(question, mistake, textwrap.dedent(code), frozenset(fails), hint)


EXTRACTOR = """\
def build_extractor(base):
    {freeze}
    inputs = keras.Input(shape={shape})
    x = {preprocess}
    x = base(x, training=False)
    return keras.Model(inputs, {pool}(x))
"""

HEAD = """\
def make_head(num_features, num_classes, learning_rate):
    inputs = keras.Input(shape=({features},))
    x = {dropout}{hidden}
    outputs = keras.layers.Dense({classes}, activation={activation}{dtype})(x)
    head = keras.Model(inputs, outputs)
    head.compile(optimizer=keras.optimizers.Adam({rate}), loss={loss}, metrics=["accuracy"])
    return head
"""

RESCALE = "keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)"
SPARSE = '"sparse_categorical_crossentropy"'
AVERAGE = "keras.layers.GlobalAveragePooling2D()"


def extractor(freeze="base.trainable = False", shape="base.input_shape[1:]", preprocess=RESCALE, pool=AVERAGE):
    return EXTRACTOR.format(freeze=freeze, shape=shape, preprocess=preprocess, pool=pool)


def head(
    hidden="",
    activation='"softmax"',
    rate="learning_rate",
    loss='"sparse_categorical_crossentropy"',
    dtype=', dtype="float32"',
    features="num_features",
    classes="num_classes",
    dropout="keras.layers.Dropout(0.2)(inputs)",
):
    return HEAD.format(
        hidden=hidden,
        activation=activation,
        rate=rate,
        loss=loss,
        dtype=dtype,
        features=features,
        classes=classes,
        dropout=dropout,
    )


RANDOM_RUN = """\
random_extractor = build_extractor(tlkit.load_backbone(BACKBONE, IMAGE_SIZE, weights={weights}))
random_head = make_head(num_features, data.num_classes, {rate})
{fit}
random_features = {features}.predict(data.test.images, verbose=0)
random_accuracy = tlkit.accuracy(random_head, random_features, test_labels)
"""


def random_run(
    weights="None",
    rate="HEAD_LEARNING_RATE",
    epochs="HEAD_EPOCHS",
    features="random_extractor",
    fit="fit_on_cached_features(random_extractor, random_head, data.train.images, data.train.labels, {epochs})",
):
    return RANDOM_RUN.format(weights=weights, rate=rate, fit=fit.format(epochs=epochs), features=features)


CUT_CLASSIFIER = """\
def build_cut_classifier(trunk, num_classes):
    inputs = keras.Input(shape=trunk.input_shape[1:])
    x = {preprocess}
    x = trunk(x, training=False){unfreeze}
    x = {pool}(x){hidden}
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation={activation}, dtype="float32")(x))
"""


def cut_classifier(preprocess=RESCALE, pool=AVERAGE, hidden="", activation='"softmax"', unfreeze=""):
    return CUT_CLASSIFIER.format(
        preprocess=preprocess, pool=pool, hidden=hidden, activation=activation, unfreeze=unfreeze
    )


PREPARE = """\
def prepare_fine_tuning(model, trunk, learning_rate):
    {unfreeze}
    {compile}
"""
FREEZE_BATCHNORM = """trunk.trainable = True
    for layer in trunk.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False"""


def prepare(unfreeze=FREEZE_BATCHNORM, optimizer="keras.optimizers.Adam(learning_rate)", loss=SPARSE, compile=None):
    compile = compile or f'model.compile(optimizer={optimizer}, loss={loss}, metrics=["accuracy"])'
    return PREPARE.format(unfreeze=unfreeze, compile=compile)


COMPILE = 'model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy")'

CLASSIFIER = """\
def make_classifier(weights, num_classes):
    base = tlkit.load_backbone(BACKBONE, IMAGE_SIZE, weights={weights})
    inputs = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
    x = {preprocess}
    x = {pool}(base(x))
    x = {dropout}
    return keras.Model(inputs, keras.layers.Dense({classes}, activation="softmax", dtype="float32")(x)), base
"""


def classifier(
    weights="weights", preprocess=RESCALE, pool=AVERAGE, dropout="keras.layers.Dropout(0.2)(x)", classes="num_classes"
):
    return CLASSIFIER.format(weights=weights, preprocess=preprocess, pool=pool, dropout=dropout, classes=classes)


WRONG_ANSWERS: dict[str, list[WrongAnswer]] = {
    "01_small_similar": [
        wrong("q1", "base not frozen", extractor(freeze="pass"), "test_base_frozen", hint=r"trainable = False"),
        wrong(
            "q1",
            "wrong preprocessing: pixels scaled to [0, 1]",
            extractor(preprocess="keras.layers.Rescaling(1 / 255)(inputs)"),
            "test_preprocessing",
            hint=r"scaled to \[0, 1\]",
        ),
        wrong("q1", "no preprocessing at all", extractor(preprocess="inputs"), "test_preprocessing", hint="no preproc"),
        wrong(
            "q1",
            "preprocessing applied twice",
            extractor(preprocess=f"keras.layers.Rescaling(1 / 127.5, offset=-1)({RESCALE})"),
            "test_preprocessing",
            hint="applied twice",
        ),
        wrong("q1", "input size hard-coded", extractor(shape="(96, 96, 3)"), "test_any_input_size", hint="hard-coded"),
        wrong(
            "q1",
            "global max pooling",
            extractor(pool="keras.layers.GlobalMaxPooling2D()"),
            "test_average_pooling",
            hint="global max pooling",
        ),
        wrong(
            "q1",
            "the map flattened, not pooled",
            extractor(pool="keras.layers.Flatten()"),
            "test_one_vector_per_image",
            "test_average_pooling",
            hint="(?i)flatten",
        ),
        wrong(
            "q2",
            "one-hot loss where integer labels are given",
            head(loss='"categorical_crossentropy"'),
            "test_integer_labels",
            hint="sparse_categorical_crossentropy",
        ),
        wrong(
            "q2",
            "from_logits=True on a softmax output",
            head(loss="keras.losses.SparseCategoricalCrossentropy(from_logits=True)"),
            "test_integer_labels",
            hint="from_logits",
        ),
        wrong("q2", "no softmax (logits out)", head(activation="None"), "test_probabilities", hint="softmax"),
        wrong("q2", "sigmoid instead of softmax", head(activation='"sigmoid"'), "test_probabilities", hint="sigmoid"),
        wrong(
            "q2",
            "no float32 output (float16 under mixed precision)",
            head(dtype=""),
            "test_probabilities",
            hint="dtype='float32'",
        ),
        wrong("q2", "the learning rate argument ignored", head(rate=""), "test_learning_rate", hint="the argument"),
        wrong(
            "q2",
            "an extra hidden layer",
            head(hidden='\n    x = keras.layers.Dense(64, activation="relu")(x)'),
            "test_one_dense_layer",
            hint="2 Dense layers",
        ),
        wrong("q2", "no dropout", head(dropout="inputs"), "test_dropout", hint="no Dropout"),
        wrong(
            "q2",
            "ten classes hard-coded",
            head(classes="10"),
            "test_probabilities",
            "test_one_dense_layer",
            hint="num_classes",
        ),
        wrong("q2", "256 features hard-coded", head(features="256"), "test_one_dense_layer", hint="num_features"),
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
            hint="recomputed",
        ),
        wrong(
            "q3",
            "the whole network fitted end to end",
            """\
            def fit_on_cached_features(extractor, head, images, labels, epochs):
                model = keras.Sequential([extractor, head])
                model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
                model.run_eagerly = True  # no graph traced for the whole network (cheap); the mistake is the same
                model.fit(images, labels, epochs=epochs, batch_size=32, verbose=0)
                return extractor.predict(images, verbose=0)
            """,
            "test_features_computed_once",
            hint="recomputed",
        ),
        wrong(
            "q3",
            "the head never trained",
            """\
            def fit_on_cached_features(extractor, head, images, labels, epochs):
                return extractor.predict(images, verbose=0)
            """,
            "test_head_trained",
            hint="did not train",
        ),
        wrong(
            "q3",
            "the epochs argument ignored",
            """\
            def fit_on_cached_features(extractor, head, images, labels, epochs):
                features = extractor.predict(images, verbose=0)
                head.fit(features, labels, epochs=10, batch_size=32, verbose=0)
                return features
            """,
            "test_head_trained",
            hint="`epochs` argument",
        ),
        wrong(
            "q3",
            "the training history returned instead of the features",
            """\
            def fit_on_cached_features(extractor, head, images, labels, epochs):
                features = extractor.predict(images, verbose=0)
                return head.fit(features, labels, epochs=epochs, batch_size=32, verbose=0)
            """,
            "test_returns_the_features",
            hint="Return the extractor's features",
        ),
        wrong(
            "q4",
            "a number typed in",
            "frozen_accuracy = 0.93\n",
            "test_frozen_accuracy_is_measured",
            hint="Report the number your model measured",
        ),
        wrong(
            "q4",
            "frozen_accuracy on the training features",
            "frozen_accuracy = tlkit.accuracy(head, train_features, data.train.labels)\n",
            "test_frozen_accuracy_is_measured",
            hint="training features",
        ),
        wrong(
            "q4",
            "frozen_accuracy from evaluate ([loss, accuracy])",
            "frozen_accuracy = head.evaluate(test_features, test_labels, verbose=0)\n",
            "test_frozen_accuracy_is_measured",
            "test_well_above_chance",
            "test_frozen_accuracy_threshold",
            "test_imagenet_beats_random",
            hint="evaluate returns",
        ),
        wrong(
            "q4",
            "frozen_accuracy as a percentage",
            "frozen_accuracy = 100 * tlkit.accuracy(head, test_features, test_labels)\n",
            "test_frozen_accuracy_is_measured",
            "test_well_above_chance",
            "test_frozen_accuracy_threshold",
            "test_imagenet_beats_random",
            hint="percentage",
        ),
        wrong(
            "q4",
            "the 'random' run on ImageNet weights",
            random_run(weights='"imagenet"'),
            "test_random_run_is_measured",
            "test_imagenet_beats_random",
            hint="weights=None",
        ),
        wrong(
            "q4",
            "the random base's accuracy measured with the head trained on ImageNet features",
            """\
            del random_head  # this answer trains no head of its own
            random_extractor = build_extractor(tlkit.load_backbone(BACKBONE, IMAGE_SIZE, weights=None))
            random_features = random_extractor.predict(data.test.images, verbose=0)
            random_accuracy = tlkit.accuracy(head, random_features, test_labels)
            """,
            "test_random_run_is_measured",
            hint="head of its own",
        ),
        wrong(
            "q4",
            "the random run's head never trained",
            random_run(fit=""),
            "test_random_run_is_measured",
            hint="never trained",
        ),
        wrong(
            "q4",
            "the random run trained for fewer epochs",
            random_run(epochs="10"),
            "test_random_run_is_measured",
            hint="training steps",
        ),
        wrong(
            "q4",
            "the random run at another learning rate",
            random_run(rate="1e-3"),
            "test_random_run_is_measured",
            hint="learning rate",
        ),
        wrong(
            "q4",
            "the random head tested on the ImageNet extractor's features",
            random_run(features="extractor"),
            "test_random_run_is_measured",
            hint="ImageNet extractor's features",
        ),
        wrong(  # last: it trains the solution's `head` again
            "q4",
            "the ImageNet head trained again on the random features",
            """\
            del random_head  # this answer trains no head of its own
            random_extractor = build_extractor(tlkit.load_backbone(BACKBONE, IMAGE_SIZE, weights=None))
            fit_on_cached_features(random_extractor, head, data.train.images, data.train.labels, HEAD_EPOCHS)
            random_features = random_extractor.predict(data.test.images, verbose=0)
            random_accuracy = tlkit.accuracy(head, random_features, test_labels)
            """,
            "test_frozen_accuracy_is_measured",
            "test_random_run_is_measured",
            hint="trained again|head of its own",
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
            hint=r"trainable = False",
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
            hint="not a new network",
        ),
        wrong(
            "q1",
            "cut at the layer's input (one layer early)",
            """\
            def cut_base(base, layer_name):
                trunk = keras.Model(base.input, base.get_layer(layer_name).input)
                trunk.trainable = False
                return trunk
            """,
            "test_output_of_that_layer",
            "test_pretrained_weights_kept",
            hint=r"the layer before",
        ),
        wrong(
            "q1",
            "the cut layer hard-coded",
            """\
            def cut_base(base, layer_name):
                trunk = keras.Model(base.input, base.get_layer("conv_pw_5_relu").output)
                trunk.trainable = False
                return trunk
            """,
            "test_output_of_that_layer",
            "test_pretrained_weights_kept",
            hint="`layer_name`|the layer you are given",
        ),
        wrong(
            "q2",
            "the earliest candidate, 'cut earlier' taken literally",
            "CUT = CANDIDATES[0]\n",
            "test_cut_is_the_best_on_validation",
            hint="best validation accuracy",
        ),
        wrong(
            "q2",
            "the cut chosen on the test images",
            """\
            test_by_depth = tlkit.extract(taps, data.test.images)
            val_accuracy = [tlkit.accuracy(h, f, data.test.labels) for h, f in zip(heads, test_by_depth)]
            CUT = CANDIDATES[int(np.argmax(val_accuracy))]
            """,
            "test_chosen_on_validation",
            hint="test set must not choose",
        ),
        wrong(
            "q2",
            "the cut chosen on training accuracy",
            """\
            val_accuracy = [tlkit.accuracy(h, f, data.train.labels) for h, f in zip(heads, train_by_depth)]
            CUT = CANDIDATES[int(np.argmax(val_accuracy))]
            """,
            "test_chosen_on_validation",
            hint="own training images",
        ),
        wrong(
            "q2",
            "CUT set to an index, not a layer name",
            "CUT = int(np.argmax(val_accuracy))\n",
            "test_cut_is_the_best_on_validation",
            hint="an index",
        ),
        wrong(
            "q2",
            "the heads not kept",
            "del heads  # this answer keeps no list of heads\n",
            "test_chosen_on_validation",
            hint="`heads` is not defined",
        ),
        wrong("q3", "no preprocessing", cut_classifier(preprocess="inputs"), "test_preprocessing", hint="no preproc"),
        wrong(
            "q3",
            "pixels scaled to [0, 1]",
            cut_classifier(preprocess="keras.layers.Rescaling(1 / 255)(inputs)"),
            "test_preprocessing",
            hint=r"\[0, 1\]",
        ),
        wrong(
            "q3",
            "trunk unfrozen in the classifier",
            cut_classifier(unfreeze="\n    trunk.trainable = True"),
            "test_only_the_head_learns",
            hint="other than the head learn",
        ),
        wrong(
            "q3",
            "global max pooling",
            cut_classifier(pool="keras.layers.GlobalMaxPooling2D()"),
            "test_average_pooling",
            hint="global max pooling",
        ),
        wrong(
            "q3",
            "the map flattened, not pooled",
            cut_classifier(pool="keras.layers.Flatten()"),
            "test_only_the_head_learns",
            "test_average_pooling",
            hint="(?i)flatten",
        ),
        wrong(
            "q3",
            "an extra hidden layer",
            cut_classifier(hidden='\n    x = keras.layers.Dense(64, activation="relu")(x)'),
            "test_only_the_head_learns",
            hint="2 Dense layers",
        ),
        wrong("q3", "no softmax", cut_classifier(activation="None"), "test_probabilities", hint="softmax"),
        wrong(
            "q4",
            "BatchNorm left trainable on small data",
            prepare(unfreeze="trunk.trainable = True"),
            "test_batchnorm_frozen",
            "test_one_step",
            hint="training mode",
        ),
        wrong(
            "q4",
            "BatchNorm frozen, then unfrozen again by trunk.trainable = True",
            prepare(
                unfreeze="""for layer in trunk.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    trunk.trainable = True"""
            ),
            "test_batchnorm_frozen",
            "test_one_step",
            hint="training mode",
        ),
        wrong(
            "q4",
            "no recompile after unfreezing",
            prepare(compile="model.optimizer.learning_rate = learning_rate"),
            "test_recompiled",
            "test_one_step",
            hint="compiled again",
        ),
        wrong(
            "q4",
            "recompiled with optimizer='adam' (the rate argument ignored)",
            prepare(optimizer='"adam"'),
            "test_recompiled",
            hint="Adam's default",
        ),
        wrong(
            "q4",
            "recompiled with SGD",
            prepare(optimizer="keras.optimizers.SGD(learning_rate)"),
            "test_recompiled",
            hint="SGD",
        ),
        wrong(
            "q4",
            "one-hot loss where integer labels are given",
            prepare(loss='"categorical_crossentropy"'),
            "test_recompiled",
            "test_one_step",  # fit cannot train a one-hot loss on integer labels
            hint="sparse_categorical_crossentropy",
        ),
        wrong(
            "q4",
            "learning rate 100x too high",
            "FINE_TUNE_LEARNING_RATE = 1e-2\n",
            "test_fine_tune_rate_is_lower",
            hint="too high",
        ),
        wrong(
            "q4",
            "learning rate 1000x too low",
            "FINE_TUNE_LEARNING_RATE = 3e-6\n",
            "test_fine_tune_rate_is_lower",
            hint="too low",
        ),
        wrong(
            "q5",
            "a number typed in",
            "tuned_accuracy = 0.95\n",
            "test_tuned_accuracy_is_measured",
            hint="Report the number your model measured",
        ),
        wrong(
            "q5",
            "the accuracy before fine-tuning reported",
            "tuned_accuracy = cut_accuracy\n",
            "test_tuned_accuracy_is_measured",
            hint="before fine-tuning",
        ),
        wrong(
            "q5",
            "measured on the validation images",
            "tuned_accuracy = tlkit.accuracy(model, data.val.images, data.val.labels)\n",
            "test_tuned_accuracy_is_measured",
            hint="validation images",
        ),
        wrong(
            "q5",
            "from evaluate ([loss, accuracy])",
            "tuned_accuracy = model.evaluate(data.test.images, data.test.labels, verbose=0)\n",
            "test_tuned_accuracy_is_measured",
            "test_tuned_accuracy_threshold",
            hint="evaluate returns",
        ),
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
            hint="every layer of the base learns",
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
            hint="BatchNormalization layers are trainable",
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
            hint=r"the top 2 block\(s\) learn",
        ),
        wrong(
            "q1",
            "one block fewer (after ends[-blocks])",
            """\
            def unfreeze_top_blocks(base, ends, blocks):
                base.trainable = True
                first = [layer.name for layer in base.layers].index(ends[-blocks]) + 1
                for i, layer in enumerate(base.layers):
                    layer.trainable = i >= first and not isinstance(layer, keras.layers.BatchNormalization)
            """,
            "test_top_blocks_learn",
            "test_other_block_counts",
            hint=r"block\(s\) learn, where",
        ),
        wrong(
            "q1",
            "blocks counted as layers",
            """\
            def unfreeze_top_blocks(base, ends, blocks):
                base.trainable = True
                for i, layer in enumerate(base.layers):
                    is_batchnorm = isinstance(layer, keras.layers.BatchNormalization)
                    layer.trainable = i >= len(base.layers) - blocks and not is_batchnorm
            """,
            "test_top_blocks_learn",
            "test_other_block_counts",
            hint="not layers of base.layers",
        ),
        wrong(
            "q1",
            "base.trainable = True forgotten (the base stays frozen from phase 1)",
            """\
            def unfreeze_top_blocks(base, ends, blocks):
                first = [layer.name for layer in base.layers].index(ends[-blocks - 1]) + 1
                for i, layer in enumerate(base.layers):
                    layer.trainable = i >= first and not isinstance(layer, keras.layers.BatchNormalization)
            """,
            "test_top_blocks_learn",
            "test_other_block_counts",
            hint="base.trainable = True first",
        ),
        wrong(
            "q1",
            "base.trainable = True set after the per-layer loop",
            """\
            def unfreeze_top_blocks(base, ends, blocks):
                first = [layer.name for layer in base.layers].index(ends[-blocks - 1]) + 1
                for i, layer in enumerate(base.layers):
                    layer.trainable = i >= first and not isinstance(layer, keras.layers.BatchNormalization)
                base.trainable = True
            """,
            "test_top_blocks_learn",
            "test_batchnorm_frozen",
            "test_other_block_counts",
            hint="unfreezes (every layer|them) again",
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
            hint="compiled again",
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
            hint="sparse_categorical_crossentropy",
        ),
        wrong(
            "q2",
            "recompiled with optimizer='adam' (the rate argument ignored)",
            """\
            def recompile_for_fine_tuning(model, learning_rate):
                model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            """,
            "test_recompiled",
            hint="Adam's default",
        ),
        wrong(
            "q2",
            "recompiled with SGD",
            """\
            def recompile_for_fine_tuning(model, learning_rate):
                optimizer = keras.optimizers.SGD(learning_rate)
                model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            """,
            "test_recompiled",
            hint="SGD",
        ),
        wrong(
            "q2",
            "from_logits=True on a softmax output",
            """\
            def recompile_for_fine_tuning(model, learning_rate):
                loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
                model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=["accuracy"])
            """,
            "test_recompiled",
            hint="from_logits",
        ),
        wrong(
            "q3",
            "learning rate 100x too high",
            "FINE_TUNE_LEARNING_RATE = 1e-2\n",
            "test_rate_is_lower",
            hint="too high",
        ),
        wrong(
            "q3",
            "the head's learning rate kept",
            "FINE_TUNE_LEARNING_RATE = HEAD_LEARNING_RATE\n",
            "test_rate_is_lower",
            hint="too high",
        ),
        wrong(
            "q3",
            "learning rate 1000x too low",
            "FINE_TUNE_LEARNING_RATE = 3e-6\n",
            "test_rate_is_lower",
            hint="too low",
        ),
        wrong(
            "q4",
            "a number typed in",
            "tuned_accuracy = 0.99\n",
            "test_tuned_accuracy_is_measured",
            hint="Report the number your model measured",
        ),
        wrong(
            "q4",
            "the accuracy before fine-tuning reported",
            "tuned_accuracy = frozen_accuracy\n",
            "test_tuned_accuracy_is_measured",
            hint="before fine-tuning",
        ),
        wrong(
            "q4",
            "the last epoch's training accuracy (history) reported",
            'tuned_accuracy = history.history["accuracy"][-1]\n',
            "test_tuned_accuracy_is_measured",
            hint="training accuracy",
        ),
        wrong(
            "q4",
            "from evaluate ([loss, accuracy])",
            "tuned_accuracy = model.evaluate(data.test.images, data.test.labels, verbose=0)\n",
            "test_tuned_accuracy_is_measured",
            "test_fine_tuning_keeps_accuracy",
            hint="evaluate returns",
        ),
    ],
    "04_large_different": [
        wrong(
            "q1",
            "wrong preprocessing: pixels scaled to [0, 1]",
            classifier(preprocess="keras.layers.Rescaling(1 / 255)(inputs)"),
            "test_preprocessing",
            hint=r"\[0, 1\]",
        ),
        wrong("q1", "no preprocessing", classifier(preprocess="inputs"), "test_preprocessing", hint="no preproc"),
        wrong(
            "q1",
            "ImageNet weights whatever `weights` says",
            classifier(weights='"imagenet"'),
            "test_weights_as_asked",
            hint="weights=None was ignored",
        ),
        wrong(
            "q1",
            "random weights whatever `weights` says",
            classifier(weights="None"),
            "test_weights_as_asked",
            hint="does not hold the ImageNet weights",
        ),
        wrong(
            "q1",
            "global max pooling",
            classifier(pool="keras.layers.GlobalMaxPooling2D()"),
            "test_average_pooling",
            hint="global max pooling",
        ),
        wrong("q1", "no dropout", classifier(dropout="x"), "test_same_architecture", hint="no Dropout"),
        wrong(
            "q1",
            "dropout in the pretrained model only",
            classifier(dropout="keras.layers.Dropout(0.2)(x) if weights else x"),
            "test_same_architecture",
            hint="depend on `weights`",
        ),
        wrong("q1", "ten classes hard-coded", classifier(classes="10"), "test_probabilities", hint="num_classes"),
        wrong(
            "q2",
            "BatchNorm 'kept frozen' by training=False alone (train_batchnorm ignored)",
            f"""\
            def make_classifier(weights, num_classes):  # q1's answer, with training=False
                base = tlkit.load_backbone(BACKBONE, IMAGE_SIZE, weights=weights)
                inputs = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
                x = base({RESCALE}, training=False)  # "BatchNorm stays in inference mode"
                x = keras.layers.Dropout(0.2)(keras.layers.GlobalAveragePooling2D()(x))
                outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32")(x)
                return keras.Model(inputs, outputs), base


            def unfreeze_everything(model, base, learning_rate, train_batchnorm):
                base.trainable = True
                {COMPILE}
            """,
            "test_batchnorm_as_asked",
            "test_one_step",
            hint="training mode",
        ),
        wrong(
            "q2",
            "BatchNorm always frozen, train_batchnorm ignored (tlkit.unfreeze_all's default)",
            f"""\
            def unfreeze_everything(model, base, learning_rate, train_batchnorm):
                tlkit.unfreeze_all(base)
                {COMPILE}
            """,
            "test_batchnorm_as_asked",
            "test_one_step",
            hint="adapt",
        ),
        wrong(
            "q2",
            "BatchNorm frozen, then unfrozen again by base.trainable = True",
            f"""\
            def unfreeze_everything(model, base, learning_rate, train_batchnorm):
                for layer in base.layers:
                    if isinstance(layer, keras.layers.BatchNormalization):
                        layer.trainable = train_batchnorm
                base.trainable = True
                {COMPILE}
            """,
            "test_batchnorm_as_asked",
            "test_one_step",
            hint="training mode",
        ),
        wrong(
            "q2",
            "no recompile after unfreezing",
            """\
            def unfreeze_everything(model, base, learning_rate, train_batchnorm):
                tlkit.unfreeze_all(base, train_batchnorm=train_batchnorm)
                model.optimizer.learning_rate = learning_rate
            """,
            "test_recompiled",
            "test_one_step",
            hint="compiled again",
        ),
        wrong(
            "q2",
            "only the top of the base unfrozen",
            f"""\
            def unfreeze_everything(model, base, learning_rate, train_batchnorm):
                tlkit.unfreeze_top(base, 2, BACKBONE, train_batchnorm=train_batchnorm)
                {COMPILE}
            """,
            "test_every_layer_learns",
            "test_batchnorm_as_asked",
            hint="that should learn are frozen|BatchNormalization layers are frozen",
        ),
        wrong(
            "q2",
            "recompiled with optimizer='adam' (the rate argument ignored)",
            """\
            def unfreeze_everything(model, base, learning_rate, train_batchnorm):
                tlkit.unfreeze_all(base, train_batchnorm=train_batchnorm)
                model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            """,
            "test_recompiled",
            hint="Adam's default",
        ),
        wrong(
            "q2",
            "the choice left as words, not True or False",
            'TRAIN_BATCHNORM = "frozen"\n',
            "test_choice",
            hint="True .* or False",
        ),
        wrong(
            "q3",
            "a smaller budget for the scratch run",
            """\
            scratch, scratch_base = make_classifier(None, data.num_classes)
            with_short_run_momentum(scratch_base)
            tlkit.compile_model(scratch, LEARNING_RATE)
            scratch.run_eagerly = True  # with take(1) below: no graph traced, one batch an epoch (cheap)
            scratch_history = tlkit.fit(scratch, train.take(1), epochs=1, verbose=0)
            """,
            "test_same_budget",
            hint="same budget",
        ),
        wrong(
            "q3",
            "scratch given the head phase's epoch too",
            """\
            scratch, scratch_base = make_classifier(None, data.num_classes)
            with_short_run_momentum(scratch_base)
            tlkit.compile_model(scratch, LEARNING_RATE)
            scratch.run_eagerly = True  # with take(1) below: no graph traced, one batch an epoch (cheap)
            scratch_history = tlkit.fit(scratch, train.take(1), epochs=EPOCHS + HEAD_EPOCHS, verbose=0)
            """,
            "test_same_budget",
            hint="same budget",
        ),
        wrong(
            "q3",
            "scratch trained at the fine-tuning rate",
            """\
            scratch, scratch_base = make_classifier(None, data.num_classes)
            with_short_run_momentum(scratch_base)
            tlkit.compile_model(scratch, FINE_TUNE_LEARNING_RATE)
            scratch.run_eagerly = True  # with take(1) below: no graph traced, one batch an epoch (cheap)
            scratch_history = tlkit.fit(scratch, train.take(1), epochs=EPOCHS, verbose=0)
            """,
            "test_scratch_learning_rate",
            hint="use LEARNING_RATE",
        ),
        wrong(
            "q3",
            "scratch without the short-run BatchNorm momentum",
            """\
            scratch, scratch_base = make_classifier(None, data.num_classes)
            tlkit.compile_model(scratch, LEARNING_RATE)
            scratch.run_eagerly = True  # with take(1) below: no graph traced, one batch an epoch (cheap)
            scratch_history = tlkit.fit(scratch, train.take(1), epochs=EPOCHS, verbose=0)
            """,
            "test_scratch_like_pretrained",
            hint="momentum",
        ),
        wrong(
            "q3",
            "scratch's base left frozen (only its head trains)",
            """\
            scratch, scratch_base = make_classifier(None, data.num_classes)
            with_short_run_momentum(scratch_base)
            scratch_base.trainable = False
            tlkit.compile_model(scratch, LEARNING_RATE)
            scratch.run_eagerly = True  # with take(1) below: no graph traced, one batch an epoch (cheap)
            scratch_history = tlkit.fit(scratch, train.take(1), epochs=EPOCHS, verbose=0)
            """,
            "test_scratch_all_trainable",
            hint="nothing to protect|no statistics worth keeping",
        ),
        wrong(
            "q3",
            "scratch started from the ImageNet weights",
            """\
            scratch, scratch_base = make_classifier("imagenet", data.num_classes)
            with_short_run_momentum(scratch_base)
            tlkit.compile_model(scratch, LEARNING_RATE)
            scratch.run_eagerly = True  # with take(1) below: no graph traced, one batch an epoch (cheap)
            scratch_history = tlkit.fit(scratch, train.take(1), epochs=EPOCHS, verbose=0)
            """,
            "test_scratch_like_pretrained",
            hint="ImageNet weights",
        ),
        wrong(
            "q4",
            "the two accuracies swapped",
            "pretrained_accuracy, scratch_accuracy = scratch_accuracy, pretrained_accuracy\n",
            "test_accuracies_are_measured",
            "test_pretraining_ahead",
            hint="swapped",
        ),
        wrong(
            "q4",
            "the last epoch's training accuracies (histories) reported",
            """\
            pretrained_accuracy = pretrained_history.history["accuracy"][-1]
            scratch_accuracy = scratch_history.history["accuracy"][-1]
            """,
            "test_accuracies_are_measured",
            hint="training accuracy",
        ),
        wrong(
            "q4",
            "measured on the training images",
            """\
            pretrained_accuracy = tlkit.accuracy(pretrained, data.train.images, data.train.labels)
            scratch_accuracy = tlkit.accuracy(scratch, data.train.images, data.train.labels)
            """,
            "test_accuracies_are_measured",
            hint="training images",
        ),
    ],
}


def test_names(test_file) -> list[str]:
    """The names of the test functions of an otter test file, in order."""
    return [tc.body.test_func.__name__ for tc in test_file.test_cases]


def error_text(message: str) -> str:
    """The exception line(s) of an otter failure message, without the test's source line it quotes."""
    lines = message.splitlines()
    for i, line in enumerate(lines):
        if i and re.match(r"\w+: ", line):
            return "\n".join(lines[i:])
    return message


def run_question(env: dict, tests_dir: str | Path, question: str) -> dict[str, tuple[bool, str]]:
    """Runs every test of `question` (hidden ones too) against `env`: name -> (passed, the error text)."""
    from otter.test_files import ExceptionTestFile

    test_file = ExceptionTestFile.from_file(str(Path(tests_dir) / f"{question}.py"))
    test_file.run(env)
    return {
        r.test_case.body.test_func.__name__: (r.passed, "" if r.passed else error_text(r.message))
        for r in test_file.test_case_results
    }


def probe(env: dict, assignment: str, tests_dir: str | Path, only: str | None = None) -> list[dict]:
    """Runs each wrong answer of `assignment` (of question `only`, if given) in a copy of `env`.

    Returns, for each, the tests that failed, their messages, and whether each message matches
    the answer's `hint`.
    """
    report = []
    for answer in WRONG_ANSWERS[assignment]:
        if only is not None and answer.question != only:
            continue
        start, cpu = time.perf_counter(), time.process_time()
        wrong_env = dict(env)
        exec(answer.code, wrong_env)  # noqa: S102 (the wrong answer, our own code, as a student's cell)
        results = run_question(wrong_env, tests_dir, answer.question)
        messages = {name: text for name, (passed, text) in results.items() if not passed}
        report.append(
            {
                "question": answer.question,
                "mistake": answer.mistake,
                "expected_to_fail": sorted(answer.fails),
                "failed": sorted(messages),
                "tests": sorted(results),
                "messages": messages,
                "hint": answer.hint,
                "hint_ok": bool(messages) and all(re.search(answer.hint, text) for text in messages.values()),
                "seconds": round(time.perf_counter() - start, 1),
                "cpu_seconds": round(time.process_time() - cpu, 1),
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


def markdown_table() -> str:
    """Every wrong answer as a row of the table in assignments/README.md."""
    rows = ["| | question | wrong answer | fails |", "|---|---|---|---|"]
    for name, answers in WRONG_ANSWERS.items():
        for answer in answers:
            tests = ", ".join(f"`{test}`" for test in sorted(answer.fails))
            rows.append(f"| {name[:2]} | {answer.question} | {answer.mistake.replace('|', '/')} | {tests} |")
    return "\n".join(rows)


if __name__ == "__main__":  # python assignments/wrong_answers.py: the README's table
    print(markdown_table())
