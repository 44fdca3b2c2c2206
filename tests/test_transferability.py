"""The transferability scores against answers known by hand or in closed form, and their input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tlkit import transferability
from tlkit.transferability import h_score, knn_accuracy, leep, logme, nce


def _clusters(n: int, classes: int, d: int, separation: float, seed: int = 0):
    """Labels and features: a random class mean per class plus unit Gaussian noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    means = rng.normal(size=(classes, d)) * separation
    return means[labels] + rng.normal(size=(n, d)), labels


def _log_marginal(features: np.ndarray, y: np.ndarray, alpha: float, beta: float) -> float:
    """log N(y; 0, beta^-1 I + alpha^-1 F F^T) / n, by a Cholesky factor of the n x n covariance."""
    n = len(y)
    factor = np.linalg.cholesky(np.eye(n) / beta + features @ features.T / alpha)
    z = np.linalg.solve(factor, y)
    return (-0.5 * z @ z - np.log(np.diag(factor)).sum() - n / 2 * math.log(2 * math.pi)) / n


# NCE


def test_nce_is_zero_when_the_source_class_determines_the_label():
    source = np.array([0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5])
    assert nce(source, source // 2) == pytest.approx(0.0, abs=1e-12)  # three source classes per target class


def test_nce_is_minus_log_classes_when_source_and_label_are_independent():
    classes, source_classes = 4, 3
    labels, source = np.meshgrid(np.arange(classes), np.arange(source_classes), indexing="ij")  # every pair once
    assert nce(source.ravel(), labels.ravel()) == pytest.approx(-math.log(classes), abs=1e-12)


def test_nce_by_hand():
    # z = 0: labels 0, 0, 1 -> H = H(2/3, 1/3); z = 1: label 1 -> H = 0. P(z = 0) = 3/4.
    entropy = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3))
    assert nce([0, 0, 0, 1], [0, 0, 1, 1]) == pytest.approx(-3 / 4 * entropy, abs=1e-12)


# LEEP


def test_leep_is_zero_for_one_hot_predictions_that_determine_the_label():
    source = np.array([0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5])
    assert leep(np.eye(6)[source], source // 2) == pytest.approx(0.0, abs=1e-12)


def test_leep_is_minus_log_classes_for_uninformative_predictions():
    classes = 5
    labels = np.arange(40) % classes
    uniform = np.full((40, 7), 1 / 7)
    assert leep(uniform, labels) == pytest.approx(-math.log(classes), abs=1e-12)


def test_leep_is_the_label_log_frequency_when_every_prediction_is_the_same():
    # P(y | z) = P(y) for every z, so LEEP = sum_y P(y) log P(y) = 3/4 log 3/4 + 1/4 log 1/4.
    same = np.tile([0.2, 0.5, 0.3], (4, 1))
    assert leep(same, [0, 0, 0, 1]) == pytest.approx(0.75 * math.log(0.75) + 0.25 * math.log(0.25), abs=1e-12)


def test_leep_by_hand():
    # P(y, z) = [[0.4, 0.1], [0.2, 0.3]], P(y | z = 0) = [2/3, 1/3], P(y | z = 1) = [1/4, 3/4]:
    # example 0: 0.8 * 2/3 + 0.2 * 1/4 = 7/12; example 1: 0.4 * 1/3 + 0.6 * 3/4 = 7/12.
    assert leep([[0.8, 0.2], [0.4, 0.6]], [0, 1]) == pytest.approx(math.log(7 / 12), abs=1e-12)


# H-score


def test_h_score_in_one_dimension_is_between_over_total_variance():
    # Class means 0.5 and 2.5: between-class variance 1, total variance 1.25.
    features, labels = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1])
    assert h_score(features, labels) == pytest.approx(0.8, abs=1e-12)
    # One dimension: Ledoit-Wolf does not shrink (the target is the variance itself).
    assert h_score(features, labels, shrinkage=True) == pytest.approx(0.8, abs=1e-12)


def test_h_score_of_one_hot_features_is_classes_minus_one_and_beats_noise():
    classes, n = 4, 200
    labels = np.arange(n) % classes
    one_hot = np.eye(classes)[labels]  # a singular covariance: the pseudo-inverse
    noise = np.random.default_rng(0).normal(size=one_hot.shape)
    assert h_score(one_hot, labels) == pytest.approx(classes - 1, abs=1e-9)
    assert h_score(noise, labels) < 0.2
    assert h_score(one_hot, labels, shrinkage=True) > h_score(noise, labels, shrinkage=True)


def test_h_score_matches_the_formula_on_random_features():
    features, labels = _clusters(120, 3, 6, separation=1.0)
    class_means = np.stack([features[labels == c].mean(axis=0) for c in labels])
    expected = np.trace(np.linalg.inv(np.cov(features, rowvar=False)) @ np.cov(class_means, rowvar=False))
    assert h_score(features, labels) == pytest.approx(expected, rel=1e-10)


def test_h_score_with_shrinkage_matches_the_formula():
    from sklearn.covariance import ledoit_wolf_shrinkage

    features, labels = _clusters(40, 3, 30, separation=0.5, seed=8)  # few examples per dimension
    centered = features - features.mean(axis=0)
    shrinkage = ledoit_wolf_shrinkage(centered)
    covariance = centered.T @ centered / len(centered)
    shrunk = (1 - shrinkage) * covariance + shrinkage * np.trace(covariance) / covariance.shape[0] * np.eye(30)
    class_means = np.stack([centered[labels == c].mean(axis=0) for c in labels])
    between = class_means.T @ class_means / len(centered)
    expected = np.trace(np.linalg.solve(shrunk, (1 - shrinkage) * between))
    assert 0 < shrinkage < 1
    assert h_score(features, labels, shrinkage=True) == pytest.approx(expected, rel=1e-9)


# LogME


@pytest.mark.parametrize("shape", [(30, 80), (120, 16)], ids=["n<d", "n>=d"])
def test_logme_forms_agree(shape):
    n, d = shape
    features, labels = _clusters(n, 3, d, separation=0.5, seed=1)
    gram, alphas_gram, betas_gram = transferability._logme_fit(features, labels, form="gram")
    kernel, alphas_kernel, betas_kernel = transferability._logme_fit(features, labels, form="kernel")
    np.testing.assert_allclose(gram, kernel, rtol=0, atol=1e-8)
    np.testing.assert_allclose(alphas_gram, alphas_kernel, rtol=1e-6)
    np.testing.assert_allclose(betas_gram, betas_kernel, rtol=1e-6)
    assert logme(features, labels) == pytest.approx(gram.mean(), abs=1e-8)


@pytest.mark.parametrize("shape", [(30, 80), (150, 12), (60, 60)], ids=["n<d", "n>d", "n=d"])
def test_logme_is_the_log_marginal_likelihood_at_its_alpha_and_beta(shape):
    n, d = shape
    features, labels = _clusters(n, 3, d, separation=0.5, seed=2)
    evidences, alphas, betas = transferability._logme_fit(features, labels)
    for c in range(3):
        direct = _log_marginal(features, (labels == c).astype(float), alphas[c], betas[c])
        assert evidences[c] == pytest.approx(direct, abs=1e-6)


def test_logme_maximises_the_evidence():
    from scipy.optimize import minimize

    features, labels = _clusters(150, 3, 12, separation=0.5, seed=3)
    evidences, alphas, betas = transferability._logme_fit(features, labels)
    for c in range(3):
        y = (labels == c).astype(float)
        best = minimize(
            lambda p, y=y: -_log_marginal(features, y, math.exp(p[0]), math.exp(p[1])),
            [0.0, 0.0],  # alpha = beta = 1, as LogME starts
            method="Nelder-Mead",
            options={"xatol": 1e-9, "fatol": 1e-13, "maxiter": 2000},
        )
        assert evidences[c] == pytest.approx(-best.fun, abs=1e-6)


def test_logme_prefers_features_that_predict_the_labels():
    rng = np.random.default_rng(4)
    labels = np.arange(200) % 4
    predictive = np.eye(4)[labels] @ rng.normal(size=(4, 32)) + 0.3 * rng.normal(size=(200, 32))
    random = rng.normal(size=predictive.shape)
    assert logme(predictive, labels) > logme(random, labels) + 0.5


def test_logme_does_not_depend_on_the_class_numbering():
    features, labels = _clusters(90, 3, 10, separation=0.5, seed=5)
    assert logme(features, (labels + 1) % 3) == pytest.approx(logme(features, labels), abs=1e-12)
    assert logme(features, labels * 10) == pytest.approx(logme(features, labels), abs=1e-12)


# k-NN accuracy


def test_knn_accuracy_is_one_on_separated_clusters():
    features, labels = _clusters(100, 4, 8, separation=20.0)
    assert knn_accuracy(features, labels) == 1.0


def test_knn_accuracy_is_near_chance_on_noise():
    classes = 4
    labels = np.arange(400) % classes
    noise = np.random.default_rng(6).normal(size=(400, 16))
    accuracy = knn_accuracy(noise, labels, k=5, folds=5, seed=0)
    assert abs(accuracy - 1 / classes) < 0.08
    assert knn_accuracy(noise, labels, k=5, folds=5, seed=0) == accuracy  # the seed fixes the folds


@pytest.mark.parametrize("k", [1, 7])
def test_knn_accuracy_matches_a_direct_count(k):
    from sklearn.model_selection import StratifiedKFold

    features, labels = _clusters(90, 2, 6, separation=0.4, seed=9)
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    accuracies = []
    for train, test in StratifiedKFold(5, shuffle=True, random_state=3).split(features, labels):
        nearest = np.argsort(-(unit[test] @ unit[train].T), axis=1)[:, :k]  # highest cosine similarity
        votes = labels[train][nearest].mean(axis=1) > 0.5  # two classes, odd k: no ties
        accuracies.append(np.mean(votes == labels[test]))
    assert knn_accuracy(features, labels, k=k, folds=5, seed=3) == pytest.approx(np.mean(accuracies), abs=1e-12)
    # Cosine distance: scaling an example's features changes nothing.
    scales = np.random.default_rng(10).uniform(0.1, 10, size=(90, 1))
    assert knn_accuracy(features * scales, labels, k=k, folds=5, seed=3) == pytest.approx(np.mean(accuracies))


# Input checks

_F = np.random.default_rng(7).normal(size=(12, 3))
_Y = np.arange(12) % 3
_P = np.full((12, 4), 0.25)
_Z = np.arange(12) % 4
# (case, labels, the message that names the problem); "{rows_of}" is the argument the labels pair with.
_BAD_LABELS = [
    ("fraction", np.where(_Y == 0, 0.5, _Y), r"^The target labels are float64 values such as (np\.float64\()?0\.5\b"),
    (
        "negative",
        _Y - 1,
        r"^The target labels run from -1 to 1, but a transferability score has classes numbered "
        r"from 0 \(labels 0\.\.2\)\. Renumber the labels from 0",
    ),
    ("nan", np.where(_Y == 0, np.nan, _Y), r"^The target labels are float64 values such as (np\.float64\()?nan\b"),
    ("bool", _Y == 0, r"^The target labels are bool values"),
    ("strings", _Y.astype(str), r"^The target labels are <U\d+ values"),
    ("complex", _Y + 0j, r"^The target labels are complex128 values"),
    ("2-D", np.stack([_Y, _Y], axis=1), r"^The target labels have shape \(12, 2\); .* one integer class index per"),
    ("ragged", [[0]] * 11 + [[1, 2]], r"^The target labels are a list that is not a rectangular array"),
    ("one class", np.zeros(12, int), r"^The target labels hold a single class \(0\) in 12 images"),
    (
        "too short",
        _Y[:-1],
        r"^Invalid value for argument `labels`\. Received: labels='11 labels'\. Expected one "
        r"label per example in `{rows_of}` \(12\)",
    ),
]
_NOT_FEATURES = r"^Invalid features\. Received: an array of shape {shape} and dtype {dtype}\. Expected numbers shaped"
_NON_FINITE = r"^The features hold NaN or infinite values\. Expected finite features"
_BAD_FEATURES = [
    ("1-D", _F[:, 0], _NOT_FEATURES.format(shape=r"\(12,\)", dtype="float64")),
    ("3-D", _F[:, :, None], _NOT_FEATURES.format(shape=r"\(12, 3, 1\)", dtype="float64")),
    ("nan", np.where(_F > 1, np.nan, _F), _NON_FINITE),
    ("inf", np.where(_F > 1, np.inf, _F), _NON_FINITE),
    ("strings", _F.astype(str), _NOT_FEATURES.format(shape=r"\(12, 3\)", dtype=r"<U\d+")),
    ("complex", _F + 1j, _NOT_FEATURES.format(shape=r"\(12, 3\)", dtype="complex128")),
    (
        "no columns",
        _F[:, :0],
        r"^Invalid features\. Received: an array of shape \(12, 0\), with no columns\. "
        r"Expected at least one column",
    ),
    ("ragged", [[1.0, 2.0], [3.0]], r"^Invalid features\. Received: a list that is not a rectangular array"),
]
_INVALID = r"^Invalid value for argument `{0}`\. Received: {0}="
_SUMS = _INVALID.format("source_probabilities") + r"'row 0 with values from {}'\. Expected rows of non-negative "
_NOT_LABELS = r"^The source labels have shape {}; .* one integer class index per"
_SCORES = [
    ("logme", logme, _F, "features"),
    ("h_score", h_score, _F, "features"),
    ("knn", knn_accuracy, _F, "features"),
    ("leep", leep, _P, "source_probabilities"),
    ("nce", nce, _Z, "source_labels"),
]
_CASES = (
    [(f"{name}-labels-{case}", fn, (x, y), match.format(rows_of=rows_of))
     for name, fn, x, rows_of in _SCORES for case, y, match in _BAD_LABELS]
    + [(f"{name}-features-{case}", fn, (f, _Y), match)
       for name, fn, _, _ in _SCORES[:3] for case, f, match in _BAD_FEATURES]
    + [
        ("leep-rows-not-summing-to-1", leep, (_P * 2, _Y), _SUMS.format(r"0\.5 to 0\.5 summing to 2")),
        ("leep-negative", leep, (_P + [0.5, -0.5, 0, 0], _Y), _SUMS.format(r"-0\.25 to 0\.75 summing to 1")),
        ("leep-nan", leep, (np.where(_P > 0, np.nan, _P), _Y),
         r"^The source_probabilities hold NaN or infinite values\. Expected finite numbers\. Pass the source model's "
         "softmax outputs"),
        ("leep-1-D", leep, (_P[:, 0], _Y),
         r"^Invalid source_probabilities\. Received: an array of shape \(12,\) and dtype float64\. Expected numbers "
         r"shaped \(n, source_classes\)"),
        ("leep-mismatched", leep, (_P[:6], _Y),
         _INVALID.format("labels") + r"'12 labels'\. Expected one label per example in `source_probabilities` \(6\)"),
        ("nce-source-fraction", nce, (_Z + 0.5, _Y),
         r"^The source labels are float64 values such as (np\.float64\()?0\.5\b"),
        ("nce-source-negative", nce, (_Z - 2, _Y), r"^The source labels run from -2 to 1, but a transferability score"),
        ("nce-source-2-D", nce, (_Z[:, None].repeat(2, 1), _Y), _NOT_LABELS.format(r"\(12, 2\)")),
        ("nce-source-scalar", nce, (3, _Y), _NOT_LABELS.format(r"\(\)")),
        ("h_score-shrinkage", h_score, (_F, _Y, "yes"),
         _INVALID.format("shrinkage") + r"'yes'\. Expected True or False\.$"),
        ("knn-k-0", knn_accuracy, (_F, _Y, 0, 2), _INVALID.format("k") + r"0\. Expected an integer >= 1\."),
        ("knn-k-too-large", knn_accuracy, (_F, _Y, 9, 3),
         _INVALID.format("k") + r"9\. Expected an integer from 1 to 6\. A fold may train on 6 examples"),
        ("knn-folds-1", knn_accuracy, (_F, _Y, 1, 1), _INVALID.format("folds") + r"1\. Expected an integer >= 2\."),
        ("knn-folds-above-class-size", knn_accuracy, (_F, _Y, 1, 5),
         _INVALID.format("folds") + r"5\. Expected at most as many folds as the smallest class has examples "
         r"\(class 0 has 4\)"),
        ("knn-seed", knn_accuracy, (_F, _Y, 1, 2, -1),
         _INVALID.format("seed") + r"-1\. Expected an integer from 0 to 4294967295\."),
        ("logme-all-zero", logme, (np.zeros_like(_F), _Y),
         _INVALID.format("features") + r"'an all-zero array of shape \(12, 3\)'\. Expected features that vary"),
    ]
)  # fmt: skip


@pytest.mark.parametrize("function, args, match", [c[1:] for c in _CASES], ids=[c[0] for c in _CASES])
def test_bad_inputs_raise_value_error_naming_the_problem(function, args, match):
    with pytest.raises(ValueError, match=match):
        function(*args)


def test_inputs_are_checked_before_any_computation(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("computed before checking the inputs")

    monkeypatch.setattr(transferability, "_logme_fit", fail)
    monkeypatch.setattr(np.linalg, "eigh", fail)
    for function in (logme, h_score, knn_accuracy):
        with pytest.raises(ValueError, match="labels hold a single class"):
            function(_F, np.zeros(12, int))


def test_good_inputs_in_other_forms_are_accepted():
    # A column of labels, whole-number float labels, integer features and float16 probabilities.
    assert logme(_F, _Y[:, None]) == pytest.approx(logme(_F, _Y.astype(float)), abs=1e-12)
    assert h_score((_F * 10).astype(int), _Y) > 0
    assert leep(_P.astype(np.float16), _Y) == pytest.approx(-math.log(3), abs=1e-12)
