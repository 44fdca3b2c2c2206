"""The GPU path's settings on this CPU: float32 outputs under mixed precision, XLA, `TLKIT_GPU_SETTINGS`.

`tlkit.setup` sets `mixed_float16` on a GPU (and, with `TLKIT_GPU_SETTINGS=1`, on a CPU: how `make rehearse`
runs the full profile here). Every model the course trains must then still return float32: tlkit checks it
before compiling and before fitting, and a scan of the lessons, assignments and tlkit itself finds a softmax
or sigmoid layer that would compute in float16.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import tlkit
from tlkit.checks import check_output_dtype

REPO = Path(__file__).resolve().parents[1]
SOURCES = [
    *sorted((REPO / "notebooks").glob("*.ipynb")),
    *sorted((REPO / "assignments").glob("*.ipynb")),
    *sorted((REPO / "tlkit").glob("*.py")),
]
# A layer that ends in a probability: a Dense/Activation/Softmax call with softmax or sigmoid in it.
PROBABILITY_LAYER = re.compile(r"(Dense|Activation|Softmax)\(")


@pytest.fixture
def mixed():
    keras.mixed_precision.set_global_policy("mixed_float16")
    yield
    keras.mixed_precision.set_global_policy("float32")


def small_model(output_dtype=None) -> keras.Model:
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    outputs = keras.layers.Dense(3, activation="softmax", dtype=output_dtype)(hidden)
    return keras.Model(inputs, outputs, name="small")


def test_a_float16_output_is_refused_before_compiling_and_before_fitting(mixed):
    model = small_model()
    with pytest.raises(ValueError, match=r"small returns float16.*dtype='float32'"):
        tlkit.compile_model(model, 1e-3)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")  # compiled behind tlkit's back
    with pytest.raises(ValueError, match="Expected float32 outputs"):
        tlkit.fit(model, np.zeros((4, 4), "float32"), y=np.zeros(4, "int32"), epochs=1, verbose=0)


def test_a_float32_output_passes_and_the_layers_before_it_stay_float16(mixed):
    model = small_model("float32")
    check_output_dtype(model)
    tlkit.compile_model(model, 1e-3)
    assert model.layers[1].compute_dtype == "float16"
    assert model.outputs[0].dtype == "float32"


def test_under_float32_nothing_is_refused():
    check_output_dtype(small_model())


def test_build_classifier_returns_float32_under_mixed_precision(mixed, tiny_base):
    model = tlkit.build_classifier(tiny_base, 3, "mobilenet_0.25")
    check_output_dtype(model)
    assert model.outputs[0].dtype == "float32"


def _calls(text: str, start: int) -> str:
    """The text of the call whose opening parenthesis ends at `start`, up to its closing one."""
    depth = 0
    for end in range(start - 1, len(text)):
        depth += {"(": 1, ")": -1}.get(text[end], 0)
        if depth == 0:
            return text[start:end]
    return text[start:]


def _code(path: Path) -> str:
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    return path.read_text()


def probability_layers_without_float32(text: str) -> list[str]:
    found = []
    for match in PROBABILITY_LAYER.finditer(text):
        call = _calls(text, match.end())
        is_probability = match.group(1) == "Softmax" or re.search(r"[\"'](softmax|sigmoid)[\"']", call)
        if is_probability and not re.search(r"dtype\s*=\s*[\"']float32[\"']", call):
            found.append(f"{match.group(1)}({' '.join(call.split())[:80]})")
    return found


def test_the_scan_finds_a_float16_softmax_and_accepts_a_float32_one():
    assert probability_layers_without_float32('keras.layers.Dense(3, activation="softmax")(x)')
    assert probability_layers_without_float32("layers.Activation('sigmoid')(x)")
    assert not probability_layers_without_float32('Dense(3, activation="softmax", dtype="float32")(x)')
    assert not probability_layers_without_float32('Dense(64, activation="relu")(x)')


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_every_probability_layer_in_the_course_computes_in_float32(path):
    assert probability_layers_without_float32(_code(path)) == [], (
        f"{path.name}: these layers compute in float16 under mixed precision; add dtype='float32'"
    )


def test_gpu_settings_apply_mixed_precision_on_a_cpu(monkeypatch):
    monkeypatch.setenv("TLKIT_GPU_SETTINGS", "1")
    tlkit.setup("full", seed=0)
    assert keras.mixed_precision.global_policy().name == "mixed_float16"
    monkeypatch.delenv("TLKIT_GPU_SETTINGS")
    tlkit.setup("full", seed=0)
    assert keras.mixed_precision.global_policy().name == ("mixed_float16" if tlkit.profiles.gpus() else "float32")
    tlkit.setup("offline", seed=0)
    assert keras.mixed_precision.global_policy().name == "float32"


XLA_RUN = """
import keras, numpy as np, tlkit
keras.mixed_precision.set_global_policy("mixed_float16")
inputs = keras.Input((4,))
hidden = keras.layers.Dense(8, activation="relu")(inputs)
model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", dtype="float32")(hidden))
tlkit.compile_model(model, 1e-2, jit_compile=True)
x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
loss = model.fit(x, (x[:, 0] > 0) + (x[:, 1] > 0), epochs=5, batch_size=16, verbose=0).history["loss"]
print(model.jit_compile, loss[-1] < loss[0])
"""


def test_a_model_trains_under_xla_and_mixed_precision():
    """What Keras does on a GPU (`jit_compile="auto"` turns XLA on there), forced on this CPU.

    In a process of its own: `tlkit.set_seed` makes TensorFlow's ops deterministic on a CPU, and Keras
    then turns XLA off (not every XLA kernel has a deterministic version), as it does in the lessons here.
    """
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", XLA_RUN], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-2:] == ["True", "True"], done.stdout


def test_op_determinism_turns_xla_off_as_keras_documents(mixed):
    tlkit.set_seed(0)  # on a CPU: deterministic ops, as every lesson here runs
    model = small_model("float32")
    with pytest.warns(UserWarning, match="jit_compile"):
        tlkit.compile_model(model, 1e-3, jit_compile=True)
    assert model.jit_compile is (bool(tlkit.profiles.gpus()))


def test_without_a_gpu_the_full_profile_says_so_in_one_line_with_the_lessons_time(monkeypatch, capsys):
    if tlkit.profiles.gpus():
        pytest.skip("this machine has a GPU")
    monkeypatch.delenv("TLKIT_GPU_SETTINGS", raising=False)
    tlkit.setup("full", seed=0, lesson="04")
    printed = capsys.readouterr().out.strip().splitlines()
    t4, cpu = tlkit.profiles.FULL_PROFILE_MINUTES["04"]
    assert len(printed) == 1
    assert printed[0].startswith("No GPU found")
    assert f"lesson 04 takes about {cpu:.0f} minutes (about {t4:.0f} on a Colab T4)" in printed[0]
    assert "TLKIT_PROFILE=offline" in printed[0]
    tlkit.setup("offline", seed=0, lesson="04")  # the offline profile is meant for a CPU: nothing to say
    monkeypatch.setenv("TLKIT_GPU_SETTINGS", "1")  # the rehearsal: GPU settings on purpose, nothing to say
    tlkit.setup("full", seed=0, lesson="04")
    assert capsys.readouterr().out == ""


def test_the_readme_times_are_the_ones_setup_prints():
    """README's table of the full profile's time per lesson and tlkit.profiles.FULL_PROFILE_MINUTES agree."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### Time and memory on a Colab GPU") :]
    rows = re.findall(r"^\| (\d\d) [^|]*\|([^|]*)\|([^|]*)\|", section, flags=re.MULTILINE)
    table = {lesson: (float(t4.split()[0]), float(cpu.split()[0])) for lesson, t4, cpu in rows}
    assert table == tlkit.profiles.FULL_PROFILE_MINUTES
    assert sorted(table) == sorted(p.name[:2] for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert max(t4 for t4, _ in table.values()) <= 10, "every lesson at most 10 minutes on a T4"


def test_cached_features_are_float32_under_mixed_precision(mixed, tiny_base):
    extractor = tlkit.feature_extractor(tiny_base, "mobilenet_0.25")
    images = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3)).astype("uint8")
    features = tlkit.extract(extractor, images, batch_size=4)
    assert features.dtype == np.float32
    assert features.shape[0] == 5
