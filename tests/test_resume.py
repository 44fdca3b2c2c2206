"""A training run killed with SIGKILL continues from its last finished epoch when started again.

Each run is a subprocess (the kill must not take pytest with it) training a tiny model on
tiny data; a callback slows every batch down so that a timed kill lands mid-epoch. The kill
chain kills one run after another at chosen points of the backup (a file half written, just
before or after the state's rename), with the run itself patching tlkit's file writes to
SIGKILL itself there: every following run must start at the last epoch whose state was
committed, and the finished run must hold every epoch once.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
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

    mode, workdir, record, kill = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
    tlkit.set_seed(0)

    if kill:  # "fsync:<file>:<n>": die with the n-th write of <file> half done; "before"/"after": its rename
        import os, signal
        import tlkit.runs as runs

        how, target, nth = kill.split(":")
        seen = [0]

        def hit(name):
            if target in name:
                seen[0] += 1
                return seen[0] == int(nth)
            return False

        def die():
            os.kill(os.getpid(), signal.SIGKILL)

        real_fsync, real_replace = runs._fsync, os.replace

        def fsync(path):
            if how == "fsync" and hit(path.name):
                data = path.read_bytes()
                path.write_bytes(data[: len(data) // 2])
                die()
            real_fsync(path)

        def replace(src, dst):
            now = how in ("before", "after") and hit(Path(dst).name)
            if now and how == "before":
                die()
            real_replace(src, dst)
            if now:
                die()

        runs._fsync, os.replace = fsync, replace


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
        history = tlkit.train.fit_two_phase(
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


def _start(script, mode, workdir, record, kill=""):
    return subprocess.Popen(
        [sys.executable, str(script), mode, str(workdir), str(record), kill],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )


def _backed_up_epoch(backup: Path) -> int:
    """The number of epochs committed in `backup` (its state is renamed into place whole, so always readable)."""
    state = backup / "state.json"
    return json.loads(state.read_text())["epoch"] if state.exists() else 0


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
    """The epochs logged when the run was killed: the committed ones (the log is rewritten
    after the state, so a kill between the two leaves it one epoch behind)."""
    logged = _epochs_in(log) if log.exists() else []
    assert logged in (list(range(start, done)), list(range(start, done - 1))), logged
    return logged


# The kill chain: where each run dies, and how many epochs are committed after it.
KILLS = [
    ("fsync:best.keras:1", 0),  # epoch 0: the best model half written (the epoch is not committed yet)
    ("fsync:epoch_:2", 1),  # epoch 0 committed; epoch 1's weights half written
    ("fsync:state.json:2", 2),  # epoch 1 committed; epoch 2's state half written
    ("after:state.json:1", 3),  # epoch 2 committed; killed before its log row and the old weights' removal
    ("fsync:log.csv:2", 4),  # (1: the log rewritten on resume) epoch 3 committed; its log half written
]


def test_run_killed_at_every_step_of_the_backup_loses_no_finished_epoch(script, tmp_path):
    workdir, record = tmp_path / "run", tmp_path / "epochs.txt"
    backup, committed = workdir / "backup", 0
    for kill, expected in KILLS:
        process = _start(script, "fit", workdir, record, kill)
        _, err = process.communicate(timeout=RUN_TIMEOUT_S)
        assert process.returncode == -signal.SIGKILL, f"{kill}: not killed\n{err[-3000:]}"
        ran = [int(e) for e in record.read_text().split()]
        assert ran[0] == committed, (kill, ran)  # started at the first epoch not committed
        committed = _backed_up_epoch(backup)
        assert committed == expected, (kill, committed)
        _logged_at_kill(workdir / "log.csv", committed)
        record.unlink()
    result = _finish(_start(script, "fit", workdir, record))
    assert [int(e) for e in record.read_text().split()] == list(range(committed, 6))
    assert _epochs_in(workdir / "log.csv") == list(range(6))  # every epoch once
    assert len(result["history"]["val_accuracy"]) == 6
    assert read_log(workdir / "log.csv")["val_accuracy"] == result["history"]["val_accuracy"]
    assert zipfile.is_zipfile(workdir / "best.keras")
    assert sorted(p.name for p in backup.iterdir()) == ["epoch_0006.weights.h5", "state.json"]  # no leftovers


def test_killed_two_phase_run_keeps_phase_one_and_resumes(script, tmp_path):
    workdir, record = tmp_path / "run", tmp_path / "epochs.txt"
    # Killed during phase one (head, epochs 0-2)...
    done = _kill_after(_start(script, "two_phase", workdir, record), workdir / "head" / "backup", epochs=1)
    assert 1 <= done < 3
    _logged_at_kill(workdir / "head" / "log.csv", done)
    record.unlink()
    # ...started again: phase one resumes, phase two starts at epoch 3 and is killed in turn...
    done2 = _kill_after(_start(script, "two_phase", workdir, record), workdir / "fine_tune" / "backup", epochs=4)
    second = [int(e) for e in record.read_text().split()]
    assert second[: 3 - done + 1] == [*range(done, 3), 3]  # phase two starts at head_epochs
    _logged_at_kill(workdir / "fine_tune" / "log.csv", done2, start=3)
    assert (workdir / "head_done.weights.h5").is_file()
    head_log = (workdir / "head" / "log.csv").read_text()
    assert _epochs_in(workdir / "head" / "log.csv") == list(range(3))
    record.unlink()
    # ...and finishes without training the head again.
    result = _finish(_start(script, "two_phase", workdir, record))
    third = [int(e) for e in record.read_text().split()]
    assert third == list(range(done2, 6))
    assert (workdir / "head" / "log.csv").read_text() == head_log  # phase-one results kept
    assert _epochs_in(workdir / "fine_tune" / "log.csv") == list(range(3, 6))
    assert result["fine_tune_at"] == 3
    assert len(result["history"]["val_accuracy"]) == 6


def test_read_log_keeps_the_last_row_of_a_repeated_epoch_and_skips_a_cut_row(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("epoch,accuracy,loss\n0,0.5,1.0\n1,0.6,0.9\n1,0.7,0.8\n2,0.8,0.7\n3,0.9")
    assert read_log(log) == {"accuracy": [0.5, 0.7, 0.8], "loss": [1.0, 0.8, 0.7]}
