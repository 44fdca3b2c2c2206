"""The image lessons' core on a machine with JAX and no TensorFlow (`make test-jax` runs it).

A fresh Python process makes `import tensorflow` fail (`sys.modules["tensorflow"] = None`, as if it
were not installed), then loads photos, builds and freezes a classifier, trains it, extracts features,
trains a head on them and fine-tunes, all through tlkit on `KERAS_BACKEND=jax`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import pytest

pytestmark = [
    pytest.mark.skipif(keras.backend.backend() != "jax", reason="the JAX run (make test-jax) runs it"),
    pytest.mark.skipif(not os.environ.get("TLKIT_ASSETS"), reason="needs the offline assets: set TLKIT_ASSETS"),
]

CORE = """
import json
import sys

sys.modules["tensorflow"] = None  # as if TensorFlow were not installed: importing it fails

import keras

import tlkit

tlkit.setup("offline", seed=0)
splits = tlkit.load_dataset(
    "caltech101", 64, classes=2, images_per_class=8, val_per_class=0, test_per_class=4, seed=0
)
base = tlkit.load_backbone("mobilenet_0.25", 64)
base.trainable = False
model = tlkit.build_classifier(base, splits.num_classes)
tlkit.compile_model(model, 1e-3)
history = tlkit.fit(model, splits.train.images, y=splits.train.labels, epochs=2, verbose=0)
features = tlkit.extract(tlkit.feature_extractor(base), splits.train.images)
head = tlkit.train_head(features, splits.train.labels, splits.num_classes, epochs=3, verbose=0)
tlkit.copy_head(head.model, model)
tuned = tlkit.fine_tuning.fine_tune(
    model, base, (splits.train.images, splits.train.labels), epochs=2, batch_size=8, verbose=0
)
print(json.dumps({
    "backend": keras.backend.backend(),
    "tensorflow": sorted(m for m in sys.modules if m.split(".")[0] == "tensorflow" and sys.modules[m]),
    "fit_epochs": len(history.history["loss"]),
    "features": list(features.shape),
    "fine_tune_epochs": len(tuned.history["loss"]),
    "predictions": model.predict(splits.test.images, verbose=0).shape,
}))
"""


def test_the_image_core_runs_on_jax_without_tensorflow():
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    done = subprocess.run([sys.executable, "-c", CORE], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["backend"] == "jax"
    assert result["tensorflow"] == []  # nothing of TensorFlow was imported
    assert result["fit_epochs"] == 2
    assert result["fine_tune_epochs"] == 1 + 2  # the head on the frozen base, then 2 unfrozen
    assert result["features"][0] == 16 and result["features"][1] > 0
    assert result["predictions"] == [8, 2]  # 4 test photos a class, one probability per class
