"""A training run killed with SIGKILL continues from its last finished epoch when started again.

Each run is a subprocess (the kill must not take pytest with it) training a tiny model on
tiny data; a callback slows every batch down so that the kill lands mid-epoch.
Keras 3 restores the epoch through `model._initial_epoch` and never clears it; tlkit.fit
clears it, which the two-phase test checks (phase two must start at `head_epochs`).
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tlkit.train import read_log

RUN = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path

    import keras
    import numpy as np

    import tlkit
    import tlkit.train

    mode, workdir, record = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    tlkit.set_seed(0)


    class Recorder(keras.callbacks.Callback):
        # Runs after tlkit's callbacks: logs which epochs ran, and slows batches down.
        def on_epoch_begin(self, epoch, logs=None):
            with record.open("a") as f:
                f.write(f"{epoch}\\n")

        def on_train_batch_end(self, batch, logs=None):
            time.sleep(0.04)


    standard = tlkit.train.training_callbacks
    tlkit.train.training_callbacks = lambda *a, **k: standard(*a, **k) + [Recorder()]

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (64, 8, 8, 3)).astype(np.uint8)
    y = (x[..., 0].mean(axis=(1, 2)) > 127).astype(np.int32)
    train = tlkit.to_tf(tlkit.from_arrays(x[:48], y[:48], ["dark", "light"]), 8, shuffle=True)
    val = tlkit.to_tf(tlkit.from_arrays(x[48:], y[48:], ["dark", "light"]), 8)

    base = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Rescaling(1 / 255), keras.layers.Conv2D(4, 3, activation="relu")],
        name="base",
    )
    inputs = keras.Input((8, 8, 3))
    features = keras.layers.GlobalAveragePooling2D()(base(inputs, training=False))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="head")(features))

    if mode == "fit":
        tlkit.compile_model(model, 1e-2)
        history = tlkit.fit(model, train, val, epochs=6, workdir=workdir, verbose=0)
    else:
        history = tlkit.fit_two_phase(
            model, base, train, val, head_epochs=3, fine_tune_epochs=3,
            unfreeze=lambda b: setattr(b, "trainable", True), workdir=workdir, verbose=0,
        )
    print("HISTORY" + json.dumps({"history": history.history, "fine_tune_at": history.fine_tune_at}))
    """
)

# A run takes ~6 CPU-seconds (most of it importing TensorFlow), ~50 s wall on a 2-core machine
# shared by a dozen processes; the limit only runs out if training hangs.
RUN_TIMEOUT_S = 240


def _env():
    return dict(os.environ, TLKIT_PROFILE="offline", TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")


def _start(script, mode, workdir, record):
    return subprocess.Popen(
        [sys.executable, str(script), mode, str(workdir), str(record)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )


def _backed_up_epoch(backup: Path) -> int:
    try:
        return json.loads((backup / "training_metadata.json").read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return 0


def _kill_after(process, backup: Path, epochs: int) -> int:
    """SIGKILLs `process` once `epochs` epochs are backed up in `backup`; returns the backed-up epoch."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while _backed_up_epoch(backup) < epochs:
        if process.poll() is not None:
            pytest.fail(f"the run ended before it could be killed:\n{process.stderr.read()[-3000:]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("no epoch was backed up in time")
        time.sleep(0.02)
    time.sleep(0.1)  # into the next epoch, mid-way
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    return _backed_up_epoch(backup)


def _finish(process) -> dict:
    out, err = process.communicate(timeout=RUN_TIMEOUT_S)
    assert process.returncode == 0, err[-3000:]
    line = next(line for line in out.splitlines() if line.startswith("HISTORY"))
    return json.loads(line.removeprefix("HISTORY"))


def _epochs_in(log: Path) -> list[int]:
    return [int(row.split(",")[0]) for row in log.read_text().splitlines()[1:]]


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "run.py"
    path.write_text(RUN)
    return path


def _logged_at_kill(log: Path, done: int, start: int = 0) -> list[int]:
    """The epochs logged when the run was killed: the backed-up ones, plus at most the one
    whose row was written just before its backup (which the next run repeats)."""
    logged = _epochs_in(log)
    assert logged in (list(range(start, done)), list(range(start, done + 1))), logged
    return logged


def test_killed_fit_resumes_without_repeating_epochs(script, tmp_path):
    workdir, record = tmp_path / "run", tmp_path / "epochs.txt"
    done = _kill_after(_start(script, "fit", workdir, record), workdir / "backup", epochs=2)
    assert done >= 2
    first = [int(e) for e in record.read_text().split()]
    assert first[:done] == list(range(done))
    logged = _logged_at_kill(workdir / "log.csv", done)

    record.unlink()
    result = _finish(_start(script, "fit", workdir, record))
    second = [int(e) for e in record.read_text().split()]
    assert second == list(range(done, 6))  # resumed at the first unfinished epoch
    # Every epoch logged once (in the rare kill between an epoch's log row and its backup, that
    # epoch runs and is logged again, and `read_log` keeps the later row).
    assert _epochs_in(workdir / "log.csv") == logged + list(range(done, 6))
    assert len(result["history"]["val_accuracy"]) == 6
    assert (workdir / "best.keras").is_file()
    assert not (workdir / "backup").exists()  # a finished run leaves no backup


def test_killed_two_phase_run_keeps_phase_one_and_resumes(script, tmp_path):
    workdir, record = tmp_path / "run", tmp_path / "epochs.txt"
    # Killed during phase one (head, epochs 0-2)...
    done = _kill_after(_start(script, "two_phase", workdir, record), workdir / "head" / "backup", epochs=1)
    assert 1 <= done < 3
    head_logged = _logged_at_kill(workdir / "head" / "log.csv", done)
    record.unlink()
    # ...started again: phase one resumes, phase two starts at epoch 3 and is killed in turn...
    done2 = _kill_after(_start(script, "two_phase", workdir, record), workdir / "fine_tune" / "backup", epochs=4)
    second = [int(e) for e in record.read_text().split()]
    assert second[: 3 - done + 1] == [*range(done, 3), 3]  # phase two starts at head_epochs
    tune_logged = _logged_at_kill(workdir / "fine_tune" / "log.csv", done2, start=3)
    assert (workdir / "head_done.weights.h5").is_file()
    head_log = (workdir / "head" / "log.csv").read_text()
    assert _epochs_in(workdir / "head" / "log.csv") == head_logged + list(range(done, 3))
    record.unlink()
    # ...and finishes without training the head again.
    result = _finish(_start(script, "two_phase", workdir, record))
    third = [int(e) for e in record.read_text().split()]
    assert third == list(range(done2, 6))
    assert (workdir / "head" / "log.csv").read_text() == head_log  # phase-one results kept
    assert _epochs_in(workdir / "fine_tune" / "log.csv") == tune_logged + list(range(done2, 6))
    assert result["fine_tune_at"] == 3
    assert len(result["history"]["val_accuracy"]) == 6


def test_read_log_keeps_the_last_row_of_a_repeated_epoch(tmp_path):
    # A run killed between logging an epoch and backing it up repeats that epoch.
    log = tmp_path / "log.csv"
    log.write_text("epoch,accuracy,loss\n0,0.5,1.0\n1,0.6,0.9\n1,0.7,0.8\n2,0.8,0.7\n")
    assert read_log(log) == {"accuracy": [0.5, 0.7, 0.8], "loss": [1.0, 0.8, 0.7]}
