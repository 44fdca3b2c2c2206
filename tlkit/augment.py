"""Data augmentation that a CPU can afford: one random crop-and-flip per image, one resampling.

Keras's `RandomFlip`, `RandomRotation` and `RandomZoom` each resample the whole batch. On a
CPU, TensorFlow's image-transform kernel behind rotation and zoom costs about as much as a
fine-tuning step of a small backbone, so a pipeline augmenting with them cannot keep the
model busy (`benchmarks/benchmark_b_pipeline.py`). `RandomCropFlip` draws, per image, a
crop (a zoom and a shift) and a left-right flip, and applies all three in a single bilinear
resampling back to the input size: five or more times cheaper (lesson 03 times both).
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tlkit")
class RandomCropFlip(keras.layers.Layer):
    """Crops each image at random (up to `zoom` of its side), resizes it back, flips it half the time.

    Per image: a crop of `1 - zoom` to 1 times the image's height and width (the aspect kept),
    at a random position, mirrored left-right with probability 1/2, resampled bilinearly to
    the input size. At inference (`training=False`) images pass unchanged. Input: a batch
    `(n, height, width, channels)`, any numeric dtype; output: the layer's compute dtype.

    On TensorFlow one `tf.image.crop_and_resize` does the work. XLA cannot compile it, so there
    a model holding this layer runs without `jit_compile` (as with Keras's `RandomRotation`);
    on a GPU, augment in the `tf.data` pipeline instead (`tlkit.to_tf(..., augment=...)`). On
    other backends it is one `keras.ops.image.affine_transform`, compiled with the step.
    """

    def __init__(self, zoom: float = 0.1, flip: bool = True, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= zoom < 1:
            raise ValueError(f"zoom is the largest fraction of the side cropped away, in [0, 1); got {zoom!r}.")
        self.zoom, self.flip, self.seed = float(zoom), bool(flip), seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_jit = keras.backend.backend() != "tensorflow"

    def boxes(self, batch_size):
        """Random crop boxes `(y1, x1, y2, x2)`, as fractions of the image; x1 > x2 mirrors the crop."""
        draws = keras.random.uniform((batch_size, 4), seed=self.seed_generator)
        side = 1.0 - self.zoom * draws[:, 0]
        y1 = draws[:, 1] * (1.0 - side)
        x1 = draws[:, 2] * (1.0 - side)
        y2, x2 = y1 + side, x1 + side
        if self.flip:
            mirror = draws[:, 3] < 0.5
            x1, x2 = ops.where(mirror, x2, x1), ops.where(mirror, x1, x2)
        return ops.stack([y1, x1, y2, x2], axis=1)

    def call(self, images, training=True):
        if not training:
            return ops.cast(images, self.compute_dtype)
        images = ops.cast(images, "float32")
        boxes = self.boxes(ops.shape(images)[0])
        if keras.backend.backend() == "tensorflow":
            out = self.crop_and_resize(images, boxes)
        else:
            out = self.affine_resample(images, boxes)
        return ops.cast(out, self.compute_dtype)

    @staticmethod
    def crop_and_resize(images, boxes):
        """TensorFlow's fused kernel: crop each box, resize bilinearly to the input size."""
        import tensorflow as tf

        size = tf.shape(images)[1:3]
        return tf.image.crop_and_resize(images, boxes, tf.range(tf.shape(images)[0]), size)

    @staticmethod
    def affine_resample(images, boxes):
        """The same sampling as `crop_and_resize`, as an affine map of pixel coordinates.

        Output pixel (x, y) reads input pixel (x1 (w-1) + (x2 - x1) x, y1 (h-1) + (y2 - y1) y).
        """
        height, width = ops.shape(images)[1], ops.shape(images)[2]
        y1, x1, y2, x2 = (boxes[:, i] for i in range(4))
        zero = ops.zeros_like(x1)
        transform = ops.stack([x2 - x1, zero, x1 * (width - 1), zero, y2 - y1, y1 * (height - 1), zero, zero], axis=1)
        return ops.image.affine_transform(
            images, transform, interpolation="bilinear", fill_mode="nearest", data_format="channels_last"
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "zoom": self.zoom, "flip": self.flip, "seed": self.seed}


def augmentation(strength: float = 0.1, seed: int | None = None) -> keras.layers.Layer:
    """Light augmentation for photos, applied to a batch: a random crop (zoom and shift) and flip.

    `strength` is the largest fraction of an image's side that a crop cuts away. Rotation is
    left out: TensorFlow's kernel for it costs a CPU about as much as the fine-tuning step of
    a small backbone (with `RandomRotation(0.1)` and `RandomZoom(0.1)`, benchmark B trains at
    about half the speed).

    Where to put it: in the model (`build_classifier(..., augment=...)`) on a CPU, where a
    `tf.data` map would compete with the training step for the same cores; in the pipeline
    (`to_tf(..., augment=...)`) when a GPU trains, so that the CPU prepares the next batch
    meanwhile.
    """
    return RandomCropFlip(zoom=strength, seed=seed, name="augmentation")


def augmented(ds, augment, seed: int):
    """Maps `augment` over the batches in parallel, its random seeds drawn per batch.

    Keras's random layers keep their seed in a variable. A `tf.data` map that updates a
    variable is a stateful function, and under TensorFlow op determinism (`tlkit.set_seed`
    on a CPU) it runs serially with prefetching turned off: the model then waits for every
    batch. Fed the seeds from a seeded `Dataset.random` instead (inside a
    `keras.StatelessScope`), the map is stateless: parallel, prefetched and reproducible.
    """
    import tensorflow as tf

    def augment_batch(x, y):
        return augment(x, training=True), y

    states = []
    if isinstance(augment, keras.layers.Layer) and keras.backend.backend() == "tensorflow":
        if not augment.built:
            augment.build(ds.element_spec[0].shape)
        states = [v for v in augment.variables if v.path.endswith("seed_generator_state")]
    if not states:  # no seed variables to feed: map `augment` as it is
        return ds.map(augment_batch, num_parallel_calls=tf.data.AUTOTUNE)

    def augment_seeded(batch, seeds):
        seeds = tf.reshape(tf.cast(seeds, states[0].dtype), (len(states), 2))
        with keras.StatelessScope(state_mapping=list(zip(states, tf.unstack(seeds)))):
            return augment_batch(*batch)

    seeds = tf.data.Dataset.random(seed, rerandomize_each_iteration=True).batch(2 * len(states))
    return tf.data.Dataset.zip(ds, seeds).map(augment_seeded, num_parallel_calls=tf.data.AUTOTUNE)
