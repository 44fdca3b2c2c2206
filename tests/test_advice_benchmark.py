"""The adviser's benchmark: its tasks, corruptions and scoring, checked on small cases (the science is in its run)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import measure_advice  # noqa: E402
import score_advice  # noqa: E402


def row(task: str, size: int, accuracy: dict[str, list[float]], distance: float = 0.2, quadrant="small + similar",
        gain: float = 0.0):  # fmt: skip
    """A task size as `score_advice.task_sizes` builds it; advise's cut (block 10) scores `best_cut`'s accuracy."""
    seeds = len(next(iter(accuracy.values())))
    cut_test = [[0.0] * 10 + [a] + [0.0] * 3 for a in accuracy["best_cut"]]
    advised = [cut_test[i][10] if score_advice.ADVISED[quadrant] == "best_cut"
               else accuracy[score_advice.ADVISED[quadrant]][i] for i in range(seeds)]  # fmt: skip
    return {"task": task, "size": size, "seeds": list(range(seeds)), "accuracy": accuracy,
            "last_block": accuracy["frozen"], "quadrant": [quadrant] * seeds, "advised": advised,
            "cut_test": cut_test, "cut_depth": [10] * seeds,
            "scores": {s: [distance] * seeds for s in score_advice.SCORES if s != "probe_gain"}
            | {"probe_gain": [gain] * seeds}}  # fmt: skip


def accuracies(**means: float) -> dict[str, list[float]]:
    spread = np.array([-0.002, 0.0, 0.002])
    return {s: list(means.get(s, 0.5) + spread) for s in score_advice.STRATEGIES}


def test_within_noise_is_the_tolerance_or_twice_the_paired_standard_error():
    clear = row("t", 10, accuracies(frozen=0.90, fine_tune_all=0.80))
    assert score_advice.within_noise(clear, "frozen", 0.01)
    assert not score_advice.within_noise(clear, "fine_tune_all", 0.01)
    close = row("t", 10, accuracies(frozen=0.90, best_cut=0.895))
    assert score_advice.within_noise(close, "best_cut", 0.01)
    noisy = row("t", 10, {**accuracies(frozen=0.90), "fine_tune_all": [0.95, 0.70, 0.95]})
    assert score_advice.within_noise(noisy, "fine_tune_all", 0.01)  # 0.033 behind, but the seeds disagree


def test_the_refitted_table_finds_the_threshold_that_separates_the_tasks():
    rows = [row(f"near{i}", 10, accuracies(frozen=0.9), distance=0.1 + 0.01 * i) for i in range(4)]
    rows += [row(f"far{i}", 10, accuracies(best_cut=0.9), distance=0.5 + 0.01 * i) for i in range(4)]
    threshold, large_from = score_advice._fit_table(rows, 0.01)
    assert 0.13 < threshold < 0.5 and large_from > 10
    evaluation = score_advice.evaluate(rows, 0.01)
    assert evaluation["the table, both thresholds refitted"]["held out (leave one task out)"] == 1.0
    assert evaluation["advise"]["all"] == 0.5  # it says "frozen" (small + similar) for every row


def test_the_probes_margin_is_refitted_on_the_other_tasks():
    rows = [row(f"same{i}", 10, accuracies(frozen=0.9), gain=0.01 * i) for i in range(3)]  # a cut did not help
    rows += [row(f"cut{i}", 10, accuracies(best_cut=0.9), gain=0.06 + 0.01 * i) for i in range(3)]
    margin = score_advice._fit_margin(rows, 0.01)
    assert 0.02 <= margin < 0.06
    assert score_advice._probes(rows[0], margin) == rows[0]["accuracy"]["frozen"]
    assert score_advice._probes(rows[-1], margin) == [seed[10] for seed in rows[-1]["cut_test"]]
    evaluation = score_advice.evaluate(rows, 0.01)
    assert evaluation["advise's probes, the cut margin refitted"]["held out (leave one task out)"] == 1.0


def test_a_named_cut_is_scored_at_the_block_advise_named():
    result = {"advice": {"quadrant": "small + different", "cut_depth": 2},
              "cut": {"test": [0.5, 0.6, 0.7, 0.9]}, "accuracy": {"best_cut": 0.9, "frozen": 0.8}}  # fmt: skip
    assert score_advice.advised_accuracy(result) == 0.7  # not the cut validation chose (0.9)
    result["advice"]["quadrant"] = "small + similar"
    assert score_advice.advised_accuracy(result) == 0.8


def test_corruptions_keep_the_images_and_do_what_they_say():
    images = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    for name, change in measure_advice.CORRUPTIONS.items():
        out = change(images)
        assert out.shape == images.shape and out.dtype == np.uint8, name
        assert not np.array_equal(out, images), name
    np.testing.assert_array_equal(measure_advice.CORRUPTIONS["invert"](255 - images), images)
    np.testing.assert_array_equal(measure_advice.CORRUPTIONS["rotate180"](images)[:, ::-1, ::-1], images)
    grey = measure_advice.CORRUPTIONS["greyscale"](images)
    assert (grey[..., 0] == grey[..., 2]).all()
    pixels = measure_advice.pixelate(images, 4)
    assert (pixels[:, :4, :4] == pixels[:, :1, :1]).all()


@pytest.mark.parametrize("seed", [0, 1])
def test_the_digits_task_is_split_per_class_and_seeded(seed):
    splits = measure_advice.TASKS["digits"][0](32, seed, 10, 20)
    assert splits.train.images.shape[1:] == (32, 32, 3) and splits.num_classes == 10
    assert splits.train.class_counts().tolist() == [100] * 10 and splits.test.class_counts().tolist() == [20] * 10
    again = measure_advice.TASKS["digits"][0](32, seed, 10, 20)
    np.testing.assert_array_equal(splits.test.images, again.test.images)
