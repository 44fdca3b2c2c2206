"""fastai's `fine_tune` in Keras: the head first, then the whole network at learning rates that grow by block.

fastai trains a new head on the frozen base for an epoch, then unfreezes everything and trains
with discriminative learning rates, `slice(lr / 100, lr)`: the first block of the base learns at
a hundredth of the rate of its last block and the head, the blocks between at rates spaced
geometrically (Howard & Ruder, 2018). The general early layers move least, the specific late
ones most. `DiscriminativeAdam` is an Adam that scales the learning rate of each variable,
`block_learning_rates` gives the rate of each variable of a base, and `fine_tune` runs the recipe.

BatchNorm stays frozen throughout (in inference mode, on its ImageNet statistics), as everywhere
in the course (`tlkit.unfreeze_all`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping

import keras

from tlkit.backbones import block_ends
from tlkit.checks import check_output_dtype
from tlkit.errors import check_choice, check_int, check_number, invalid
from tlkit.layers import nested_layers
from tlkit.model import check_base, layer_index, unfreeze_all, unfreeze_top
from tlkit.train import History, fit

SCHEDULES = ("one_cycle", "cosine")


@keras.saving.register_keras_serializable(package="tlkit")
class DiscriminativeAdam(keras.optimizers.Adam):
    """Adam with a learning rate per variable: the optimizer's rate times the variable's factor.

    A variable's factor is looked up by its `path` (in Keras 3 the layer name and the variable
    name, e.g. `"conv1/kernel"`; a nested base's variables carry no prefix of the model). The
    table of factors is fixed when the optimizer is built (on the first training step, or by
    `optimizer.build(model.trainable_variables)`): each step multiplies the learning rate,
    constant or scheduled, by the factor of the variable it updates. Variables not in the table
    get `default_factor` (the new head, for a table from `block_learning_rates`). Weight decay,
    if any, uses the optimizer's own rate.

    Args:
        factors: `{variable path: factor}`, or a function of a variable path returning its factor
            (called for each variable when the optimizer is built). Factors are numbers >= 0.
        learning_rate: the rate a factor of 1 gets: a float or a
            `keras.optimizers.schedules.LearningRateSchedule`.
        default_factor: the factor of variables the table does not name.
        **kwargs: the other arguments of `keras.optimizers.Adam` (`beta_1`, `weight_decay`, ...).

    Example:

    ```python
    rates = tlkit.fine_tuning.block_learning_rates(base, 1e-3)  # 1e-5 (first block) .. 1e-3 (last)
    optimizer = tlkit.fine_tuning.DiscriminativeAdam({path: rate / 1e-3 for path, rate in rates.items()}, 1e-3)
    tlkit.unfreeze_all(base)
    model.compile(optimizer, "sparse_categorical_crossentropy", ["accuracy"])
    ```
    """

    def __init__(
        self,
        factors: Mapping[str, float] | Callable[[str], float] | None = None,
        learning_rate=1e-3,
        default_factor: float = 1.0,
        **kwargs,
    ):
        table = None
        if factors is None:
            table = {}
        elif isinstance(factors, Mapping):
            table = {}
            for path, factor in factors.items():
                if not isinstance(path, str):
                    raise invalid("factors", f"a key {path!r}", "variable paths (strings) such as 'conv1/kernel'")
                table[path] = check_number(f"factors[{path!r}]", factor, 0)
        elif not callable(factors):
            raise invalid(
                "factors",
                factors,
                "a dict {variable path: factor}, a function of a variable path, or None",
                "E.g. tlkit.fine_tuning.block_learning_rates(base, lr) divided by lr.",
            )
        default_factor = check_number("default_factor", default_factor, 0)
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.factor_function = None if table is not None else factors
        self.factors = table
        self.default_factor = default_factor
        self.variable_factors = []

    def factor_of(self, path: str) -> float:
        """The factor of the variable at `path`: from the table, the function, or `default_factor`.

        Args:
            path: a variable's `path`, e.g. `"conv1/kernel"`.

        Returns:
            The factor its learning rate is multiplied by.

        Example:

        ```python
        optimizer.factor_of("head/kernel")  # 1.0: the head learns at the full rate
        ```
        """
        if self.factor_function is None:
            return self.factors.get(path, self.default_factor)
        factor = self.factor_function(path)
        return self.default_factor if factor is None else check_number(f"factors({path!r})", factor, 0)

    def build(self, var_list):
        """Creates Adam's moments and fixes the factor of each variable, by its path.

        Args:
            var_list: the variables the optimizer trains (`model.trainable_variables`).
        """
        if self.built:
            return
        paths = [variable.path for variable in var_list]
        if self.factor_function is None:
            named = [path for path in paths if path in self.factors]
            repeated = sorted({path for path in named if named.count(path) > 1})
            if repeated:
                raise ValueError(
                    f"Several variables share the path {repeated[0]!r}, so the factor table cannot tell them apart. "
                    "Give their layers distinct names, or pass a function of the path instead of a dict."
                )
        super().build(var_list)
        self.variable_factors = [self.factor_of(path) for path in paths]
        if self.factor_function is not None:
            self.factors = dict(zip(paths, self.variable_factors))

    def update_step(self, gradient, variable, learning_rate):
        """Adam's update with `learning_rate` times the variable's factor.

        Args:
            gradient: the variable's gradient.
            variable: the variable (on TensorFlow, its `tf.Variable`: it is found by its index,
                as Keras's own optimizers find their moments).
            learning_rate: the optimizer's current rate.
        """
        # The variable's index in the optimizer's list, found the way Keras's own optimizers (and the custom
        # optimizer example of keras.optimizers.Optimizer's docstring) find their moments: on TensorFlow the
        # variable arrives as its tf.Variable, without the Keras variable's `path`.
        factor = self.variable_factors[self._get_variable_index(variable)]
        if factor != 1.0:
            learning_rate = keras.ops.multiply(keras.ops.cast(learning_rate, variable.dtype), factor)
        super().update_step(gradient, variable, learning_rate)

    def get_config(self) -> dict:
        """Adam's configuration, the factor table and the default factor.

        Returns:
            The configuration `from_config` takes. A function of paths is saved as the table it
            gave when the optimizer was built.

        Example:

        ```python
        same = tlkit.fine_tuning.DiscriminativeAdam.from_config(optimizer.get_config())
        ```
        """
        if self.factor_function is not None and not self.built:
            raise ValueError(
                "This DiscriminativeAdam takes its factors from a function, which cannot be saved until it has "
                "been applied to the variables. Build it first (optimizer.build(model.trainable_variables)), or "
                "pass the factors as a dict {variable path: factor}."
            )
        config = super().get_config()
        config.update({"factors": dict(self.factors), "default_factor": self.default_factor})
        return config


def block_learning_rates(
    base: keras.Model,
    lr_max: float,
    lr_min: float | None = None,
    backbone: str | None = None,
) -> dict[str, float]:
    """The learning rate of every variable of `base`, by block: `lr_min` for the first, `lr_max` for the last.

    fastai's `slice(lr_min, lr_max)`: the rates of the blocks (`tlkit.block_ends`) are spaced
    geometrically, so each block learns a constant multiple faster than the one before. The
    head, outside the base, should learn at `lr_max` (`DiscriminativeAdam`'s default factor 1
    when the rates are divided by `lr_max`).

    Args:
        base: the pretrained base (`tlkit.load_backbone`).
        lr_max: the rate of the last block (and of the head).
        lr_min: the rate of the first block; default `lr_max / 100` (fastai's `lr_mult=100`).
        backbone: its registry name, for the block boundaries (default: read from the base).

    Returns:
        `{variable path: learning rate}` for every variable of the base, frozen ones and
        BatchNorm statistics included (an optimizer only uses the ones it trains).

    Example:

    ```python
    rates = tlkit.fine_tuning.block_learning_rates(base, 1e-3)
    rates["conv1/kernel"], rates["conv_pw_13/kernel"]  # 1e-05, 0.001 for MobileNet
    ```
    """
    check_base(base)
    lr_max = check_number("lr_max", lr_max, 0, 1, exclusive_minimum=True)
    if lr_min is None:
        lr_min = lr_max / 100
    lr_min = check_number("lr_min", lr_min, 0, lr_max, exclusive_minimum=True, fix="The first block learns slowest: "
                          "lr_min is at most lr_max (fastai: lr_max / 100).")  # fmt: skip
    stops = [layer_index(base, name) for name in block_ends(base, backbone)]
    n = len(stops)
    rates = [lr_min * (lr_max / lr_min) ** (i / (n - 1)) if n > 1 else lr_max for i in range(n)]
    table, block = {}, 0
    for i, layer in enumerate(base.layers):
        while block < n - 1 and i > stops[block]:
            block += 1
        for variable in layer.weights:
            if variable.path in table:
                raise ValueError(f"{base.name} has two variables at {variable.path!r}: give its layers distinct names.")
            table[variable.path] = rates[block]
    return table


def learning_rate_schedule(
    kind: str,
    peak: float,
    steps: int,
    pct_start: float = 0.3,
    div: float = 5.0,
) -> keras.optimizers.schedules.LearningRateSchedule:
    """A one-cycle or cosine learning rate schedule over `steps` training steps, from `keras.optimizers.schedules`.

    `"one_cycle"` (fastai's `fit_one_cycle`): a linear warmup from `peak / div` to `peak` over
    the first `pct_start` of the steps, then a cosine decay to `peak / 1e5`. `"cosine"`: a
    cosine decay from `peak` to 0. Both are `keras.optimizers.schedules.CosineDecay`.

    Args:
        kind: `"one_cycle"` or `"cosine"`.
        peak: the highest rate.
        steps: the number of training steps the schedule spans.
        pct_start: the share of the steps spent warming up (one cycle only).
        div: the warmup starts at `peak / div` (one cycle only).

    Returns:
        The schedule, to pass as an optimizer's `learning_rate`.

    Example:

    ```python
    schedule = tlkit.fine_tuning.learning_rate_schedule("one_cycle", 1e-3, steps=5 * len(train))
    ```
    """
    check_choice("schedule", kind, SCHEDULES)
    peak = check_number("peak", peak, 0, 1, exclusive_minimum=True)
    steps = check_int("steps", steps, 1)
    pct_start = check_number("pct_start", pct_start, 0, 1, exclusive_maximum=True)
    div = check_number("div", div, 1)
    if kind == "cosine":
        return keras.optimizers.schedules.CosineDecay(peak, steps)
    warmup = int(round(pct_start * steps))
    return keras.optimizers.schedules.CosineDecay(
        peak / div, max(steps - warmup, 1), alpha=1e-5, warmup_target=peak, warmup_steps=warmup
    )


def _steps_per_epoch(train_data, batch_size: int, steps_per_epoch: int | None) -> int:
    if steps_per_epoch is not None:
        return check_int("steps_per_epoch", steps_per_epoch, 1)
    if isinstance(train_data, tuple):
        return math.ceil(len(train_data[0]) / batch_size)
    try:
        return check_int("steps_per_epoch", len(train_data), 1, fix="The training data is empty.")
    except TypeError:  # a tf.data pipeline of unknown or infinite length
        raise ValueError(
            "Cannot tell how many batches an epoch of the training data holds (a pipeline of unknown or infinite "
            "length). Received: steps_per_epoch=None. Expected steps_per_epoch=, the number of batches an epoch."
        ) from None


def _compile(model: keras.Model, optimizer, jit_compile) -> None:
    check_output_dtype(model)
    model.compile(
        optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"], jit_compile=jit_compile
    )


def fine_tune(
    model: keras.Model,
    base: keras.Model,
    train_data,
    epochs: int,
    base_lr: float = 2e-3,
    freeze_epochs: int = 1,
    lr_mult: float = 100,
    schedule: str = "one_cycle",
    gradual: bool = False,
    validation_data=None,
    batch_size: int = 32,
    steps_per_epoch: int | None = None,
    pct_start: float = 0.3,
    div: float = 5.0,
    jit_compile: bool | str = "auto",
    verbose: int | str = "auto",
) -> History:
    """fastai's `fine_tune`: the head on the frozen base, then every block at its own learning rate.

    Phase one trains the head for `freeze_epochs` with the base frozen, at `base_lr` (a one
    cycle that warms up over nearly all of it, as fastai's). Phase two unfreezes the base
    (`tlkit.unfreeze_all`: BatchNorm stays frozen), recompiles with `DiscriminativeAdam`, and
    trains for `epochs` at `base_lr / 2` for the last block and the head down to
    `base_lr / 2 / lr_mult` for the first block (`block_learning_rates`), on a one-cycle or
    cosine schedule. With `gradual` (ULMFiT's gradual unfreezing), phase two unfreezes the top
    block for its first epoch and one more block each epoch after, each epoch a schedule of
    its own with a fresh optimizer; blocks it does not reach stay frozen.

    Args:
        model: the classifier built on `base` (`tlkit.build_classifier`).
        base: the pretrained base inside it, from `tlkit.load_backbone` (its blocks are known).
        train_data: a `tf.data` pipeline of `(images, labels)` batches (`tlkit.to_tf`), or a
            tuple `(images, labels)` of arrays.
        epochs: the epochs of phase two.
        base_lr: the head's rate in phase one; phase two's highest is half of it.
        freeze_epochs: the epochs of phase one (0 skips it).
        lr_mult: how many times faster the last block learns than the first, at least 1.
        schedule: `"one_cycle"` or `"cosine"` (`learning_rate_schedule`).
        gradual: unfreeze one more block each epoch, from the top.
        validation_data: validation data in the same form as `train_data`, or None.
        batch_size: the batch size for arrays.
        steps_per_epoch: the batches an epoch, for a pipeline whose length is unknown.
        pct_start: the share of phase two spent warming up (one cycle).
        div: phase two's one cycle starts at its peak rate divided by `div`.
        jit_compile: passed to `model.compile`.
        verbose: passed to `model.fit`.

    Returns:
        The `History` of both phases (`fine_tune_at`: the first epoch of phase two), with `.model`.

    Raises:
        ValueError: before any training, for an argument out of range, a base that is not in
            the model or whose blocks are unknown, or data the model cannot take.

    Example:

    ```python
    base = tlkit.load_backbone("mobilenet_0.25", 96)
    model = tlkit.build_classifier(base, splits.num_classes)
    train, val, test = splits.to_tf(32)
    history = tlkit.fine_tuning.fine_tune(model, base, train, epochs=3, validation_data=val)
    ```
    """
    if not isinstance(model, keras.Model):
        raise invalid("model", type(model).__name__, "a Keras model, e.g. tlkit.build_classifier(base, num_classes)")
    check_base(base)
    if base not in list(nested_layers(model)):
        raise ValueError(
            f"Invalid value for argument `base`. Received: {base.name!r}, which is not a layer of {model.name!r}. "
            "Expected the base the model was built on (tlkit.build_classifier(base, ...)): freezing another model "
            "changes nothing in this one."
        )
    epochs = check_int("epochs", epochs, 1, fix="The epochs of phase two, after the head's.")
    freeze_epochs = check_int("freeze_epochs", freeze_epochs, 0, fix="0 skips training the head alone.")
    base_lr = check_number("base_lr", base_lr, 0, 1, exclusive_minimum=True, fix="fastai's default: 2e-3.")
    lr_mult = check_number("lr_mult", lr_mult, 1, fix="The last block learns lr_mult times faster than the first.")
    check_choice("schedule", schedule, SCHEDULES)
    if not isinstance(gradual, bool):
        raise invalid("gradual", gradual, "True or False")
    pct_start = check_number("pct_start", pct_start, 0, 1, exclusive_maximum=True)
    div = check_number("div", div, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    if jit_compile not in (True, False, "auto"):
        raise invalid("jit_compile", jit_compile, "True, False or 'auto'")
    if isinstance(train_data, tuple) and len(train_data) != 2:
        raise invalid("train_data", f"a tuple of {len(train_data)}", "(images, labels) or a tf.data pipeline")
    steps = _steps_per_epoch(train_data, batch_size, steps_per_epoch)
    peak = base_lr / 2
    rates = block_learning_rates(base, peak, peak / lr_mult)  # raises for a base whose blocks are unknown
    factors = {path: rate / peak for path, rate in rates.items()}
    blocks = len(block_ends(base))

    x, y = train_data if isinstance(train_data, tuple) else (train_data, None)
    arrays = {"y": y, "batch_size": batch_size} if y is not None else {}
    if steps_per_epoch is not None:
        arrays["steps_per_epoch"] = steps

    def train(optimizer, first: int, last: int) -> History:
        _compile(model, optimizer, jit_compile)
        return fit(model, x, validation_data, epochs=last, initial_epoch=first, verbose=verbose, **arrays)

    history = History({}, model=model)
    if freeze_epochs:
        base.trainable = False
        head_schedule = learning_rate_schedule(schedule, base_lr, freeze_epochs * steps, pct_start=0.99, div=div)
        history = train(keras.optimizers.Adam(head_schedule), 0, freeze_epochs)
    if not gradual:
        unfreeze_all(base)
        tuned = learning_rate_schedule(schedule, peak, epochs * steps, pct_start, div)
        history = history + train(DiscriminativeAdam(factors, tuned), freeze_epochs, freeze_epochs + epochs)
    else:
        for epoch in range(1, epochs + 1):
            unfreeze_top(base, min(epoch, blocks))
            tuned = learning_rate_schedule(schedule, peak, steps, pct_start, div)
            stage = train(DiscriminativeAdam(factors, tuned), freeze_epochs + epoch - 1, freeze_epochs + epoch)
            history = history + stage
    return dataclasses.replace(history, fine_tune_at=freeze_epochs, model=model)
