"""Scores the adviser against the ground truth that `measure_advice.py` measured.

    python benchmarks/score_advice.py                                   # benchmarks/results/advice.json
    python benchmarks/score_advice.py other.json --json summary.json

For each task and size (the mean over seeds): the best strategy, the strategies within noise of it, the gains
that decide the table's questions (fine-tuning minus frozen; the best cut minus the last block), and then:

- Kendall's tau of each score (the adviser's domain distance, LogME, N-LEEP, NCE, H-score, k-NN accuracy) with
  each gain, over every task and size;
- for each adviser (`advise` as it is, and the rules in `RULES`), the share of task sizes where the strategy it
  recommends is within noise of the best measured one, on every task, on the tasks `advise` was not calibrated
  on, and, for the rules fitted here, on each task held out of the fit (leave one task out).

Within noise: the recommended strategy's mean accuracy is below the best one's by at most `--tolerance` (one
test image in a hundred by default), or by less than twice the standard error of their paired per-seed
difference.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

STRATEGIES = ["frozen", "best_cut", "fine_tune_top", "fine_tune_all", "scratch"]
# Tasks from the data `advise` was calibrated on (Caltech-101 photos, Fashion-MNIST): reported apart.
CALIBRATED = ("caltech_big5", "caltech_mixed5", "caltech_boats3", "caltech_mammals4", "caltech_crustaceans3",
              "fashion_mnist5")  # fmt: skip
# advise's own scores first: the probes' cut gain, which decides its advice, and the domain distance it reports.
SCORES = ["probe_gain", "distance", "logme", "nleep", "nce", "h_score", "knn"]
PUBLISHED = ["logme", "nleep", "nce", "h_score", "knn"]


def task_sizes(data: dict) -> list[dict]:
    """One row per task and size: per-seed accuracies of every strategy and per-seed scores."""
    rows: dict[tuple[str, str], dict] = {}
    for run in data["runs"]:
        for size, v in run["per_size"].items():
            row = rows.setdefault((run["task"], size), {"task": run["task"], "size": int(size), "seeds": [],
                                                        "accuracy": {s: [] for s in STRATEGIES}, "last_block": [],
                                                        "scores": {s: [] for s in SCORES}, "quadrant": [],
                                                        "advised": [], "cut_test": [], "cut_depth": []})  # fmt: skip
            row["seeds"].append(run["seed"])
            for s in STRATEGIES:
                row["accuracy"][s].append(v["accuracy"][s])
            row["last_block"].append(v["cut"]["last_block"])
            row["cut_test"].append(v["cut"]["test"])  # every block end's probe, on the test images
            advice = v["advice"]
            row["scores"]["probe_gain"].append(advice.get("cut_gain", float("nan")))
            row["scores"]["distance"].append(advice["distance"])
            for s in PUBLISHED:
                row["scores"][s].append(v["scores"][s])
            row["quadrant"].append(advice["quadrant"])
            row["cut_depth"].append(advice.get("cut_depth", -1))
            row["advised"].append(advised_accuracy(v))
    return list(rows.values())


# The advice's quadrant, as the strategy the benchmark measures for it.
ADVISED = {"small + similar": "frozen", "small + different": "best_cut", "large + similar": "fine_tune_top",
           "large + different": "best_cut"}  # fmt: skip


def advised_accuracy(result: dict) -> float:
    """The test accuracy of what `advise` said on one seed: a cut's is the probe at the block end it named."""
    advice = result["advice"]
    strategy = ADVISED[advice["quadrant"]]
    if strategy == "best_cut" and "cut_depth" in advice:
        return float(result["cut"]["test"][advice["cut_depth"]])
    return float(result["accuracy"][strategy])


def within_noise(row: dict, strategy: str | list[float], tolerance: float) -> bool:
    """Is `strategy` (a name, or per-seed accuracies) within noise of the row's best strategy?"""
    means = {s: float(np.mean(a)) for s, a in row["accuracy"].items()}
    best = max(means, key=means.get)
    mine = row["accuracy"][strategy] if isinstance(strategy, str) else strategy
    diff = np.asarray(row["accuracy"][best]) - np.asarray(mine)
    se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else 0.0
    return bool(diff.mean() <= max(tolerance, 2 * se))


def gains(row: dict) -> dict[str, float]:
    acc = {s: float(np.mean(a)) for s, a in row["accuracy"].items()}
    return {
        "fine_tune_gain": max(acc["fine_tune_top"], acc["fine_tune_all"]) - acc["frozen"],
        "cut_gain": acc["best_cut"] - float(np.mean(row["last_block"])),
        "frozen": acc["frozen"],
    }


def kendall(rows: list[dict]) -> dict[str, dict[str, float]]:
    from scipy.stats import kendalltau

    out = {}
    for score in SCORES:
        values = [float(np.mean(r["scores"][score])) for r in rows]
        out[score] = {}
        for gain in ("fine_tune_gain", "cut_gain", "frozen"):
            tau = kendalltau(values, [gains(r)[gain] for r in rows]).statistic
            out[score][gain] = float(tau)
    return out


def advise_as_is(row: dict, fitted=None) -> list[float]:
    """The per-seed test accuracies of what `tlkit.advise` said on each seed."""
    return row["advised"]


def said(row: dict) -> str:
    """What `advise` said, as strategies, over the seeds (e.g. "best_cut x2, frozen")."""
    names = [ADVISED[q] for q in row["quadrant"]]
    return ", ".join(f"{n} x{names.count(n)}" if names.count(n) > 1 else n for n in dict.fromkeys(names))


# A rule: (fit on training rows -> parameters, recommend for a row given the parameters).
RULES: dict[str, tuple[Callable, Callable]] = {}


def rule(name: str):
    def register(pair):
        RULES[name] = pair
        return pair

    return register


def _best_threshold(rows, value: Callable, pick_low: str, pick_high: str, tolerance: float) -> float:
    """The threshold on `value` that gets the most training rows within noise, `pick_low` below it."""
    candidates = sorted({value(r) for r in rows})
    cuts = [candidates[0] - 1] + [(a + b) / 2 for a, b in zip(candidates, candidates[1:])] + [candidates[-1] + 1]
    hits = [sum(within_noise(r, pick_low if value(r) < c else pick_high, tolerance) for r in rows) for c in cuts]
    return cuts[int(np.argmax(hits))]


rule("always frozen")((lambda rows, tol: None, lambda row, p: "frozen"))
rule("always fine-tune all")((lambda rows, tol: None, lambda row, p: "fine_tune_all"))
rule("always the best cut on validation")((lambda rows, tol: None, lambda row, p: "best_cut"))


def _knn(row):
    return float(np.mean(row["scores"]["knn"]))


rule("k-NN accuracy threshold: frozen above, fine-tune all below")(
    (
        lambda rows, tol: _best_threshold(rows, _knn, "fine_tune_all", "frozen", tol),
        lambda row, p: "fine_tune_all" if _knn(row) < p else "frozen",
    )
)


def _distance(row) -> float:
    return float(np.mean(row["scores"]["distance"]))


def _table(row, params) -> str:
    """The table's strategy for the row, with a distance threshold and a "large from" size."""
    threshold, large_from = params
    size = "large" if row["size"] >= large_from else "small"
    return ADVISED[f"{size} + {'similar' if _distance(row) < threshold else 'different'}"]


def _fit_table(rows, tolerance) -> tuple[float, int]:
    """The distance threshold and "large from" size that get the most training rows within noise."""
    distances = sorted({_distance(r) for r in rows})
    thresholds = [distances[0] - 1] + [(a + b) / 2 for a, b in zip(distances, distances[1:])] + [distances[-1] + 1]
    sizes = sorted({r["size"] for r in rows}) + [10**6]
    grid = [(t, n) for t in thresholds for n in sizes]
    hits = [sum(within_noise(r, _table(r, p), tolerance) for r in rows) for p in grid]
    return grid[int(np.argmax(hits))]


rule("the table, both thresholds refitted")((_fit_table, _table))


def _probes(row, margin) -> list[float]:
    """What advise's probes say on each seed with `margin`: the cut it names, else the table's size rule."""
    out = []
    for i, gain in enumerate(row["scores"]["probe_gain"]):
        large = row["quadrant"][i].startswith("large")  # advise's own size rule (tlkit.LARGE_FROM)
        if gain > margin:
            out.append(row["cut_test"][i][row["cut_depth"][i]])
        else:
            out.append(row["accuracy"]["fine_tune_top" if large else "frozen"][i])
    return out


def _fit_margin(rows, tolerance) -> float:
    """The cut margin (of a grid 0-0.10) that gets the most training rows within noise; the middle of ties."""
    grid = [round(0.005 * i, 3) for i in range(21)]
    hits = [sum(within_noise(r, _probes(r, m), tolerance) for r in rows) for m in grid]
    best = [m for m, h in zip(grid, hits) if h == max(hits)]
    return best[(len(best) - 1) // 2]


rule("advise's probes, the cut margin refitted")((_fit_margin, _probes))


def evaluate(rows: list[dict], tolerance: float) -> dict:
    out = {"advise": {}}
    held = [r for r in rows if r["task"] not in CALIBRATED]
    hits = [within_noise(r, advise_as_is(r), tolerance) for r in rows]
    out["advise"] = {"all": float(np.mean(hits)),
                     "not calibrated on": float(np.mean([within_noise(r, advise_as_is(r), tolerance) for r in held]))
                     if held else None, "misses": [f"{r['task']} {r['size']}: said {said(r)}, best "
                     f"{max(r['accuracy'], key=lambda s: np.mean(r['accuracy'][s]))}" for r, h in zip(rows, hits)
                     if not h]}  # fmt: skip
    tasks = sorted({r["task"] for r in rows})
    for name, (fit, recommend) in RULES.items():
        held_out = []
        for task in tasks:
            train = [r for r in rows if r["task"] != task]
            params = fit(train, tolerance)
            held_out += [within_noise(r, recommend(r, params), tolerance) for r in rows if r["task"] == task]
        params = fit(rows, tolerance)
        out[name] = {
            "all (fitted on all)": float(
                np.mean([within_noise(r, recommend(r, params), tolerance) for r in rows])
            ),  # fmt: skip
            "held out (leave one task out)": float(np.mean(held_out)),
            "parameters": params,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="?", default=Path("benchmarks/results/advice.json"))
    parser.add_argument("--tolerance", type=float, default=0.01)
    parser.add_argument("--json", type=Path, help="also write the summary here")
    args = parser.parse_args(argv)
    data = json.loads(args.results.read_text())
    rows = task_sizes(data)
    print(f"{len(rows)} task sizes from {len({r['task'] for r in rows})} tasks, seeds per row: "
          f"{sorted({len(r['seeds']) for r in rows})}\n")  # fmt: skip
    header = f"{'task':32s} {'size':>4s} " + " ".join(f"{s[:9]:>9s}" for s in STRATEGIES) + "  best          advice"
    print(header)
    for r in rows:
        means = {s: float(np.mean(a)) for s, a in r["accuracy"].items()}
        best = max(means, key=means.get)
        miss = "" if within_noise(r, advise_as_is(r), args.tolerance) else " (miss)"
        accuracies = " ".join(f"{means[s]:9.3f}" for s in STRATEGIES)
        print(f"{r['task']:32s} {r['size']:4d} {accuracies}  {best:13s} {said(r)}{miss}")
    taus = kendall(rows)
    print("\nKendall's tau of each score with each measured quantity (over task sizes):")
    for score, by_gain in taus.items():
        print(f"  {score:9s} " + "  ".join(f"{g} {t:+.2f}" for g, t in by_gain.items()))
    evaluation = evaluate(rows, args.tolerance)
    print("\nShare of task sizes where the recommended strategy is within noise of the best:")
    for name, result in evaluation.items():
        print(f"  {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in result.items() if isinstance(v, float)))
    if args.json:
        args.json.write_text(json.dumps({"kendall_tau": taus, "advice": evaluation}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
