"""Transferability scores: ranking pretrained models for a task from their frozen features.

Each score reads what a pretrained model gives for the target images without training it
(its cached features, or its softmax outputs over its own source classes) together with the
target labels, and returns one number; higher means the model is expected to transfer
better. Computed for several candidate backbones on the same images, the scores rank the
backbones in seconds, where fine-tuning each would take hours. They rank *models*: none
of them says which strategy to use with the chosen one (keep the base frozen, cut it
earlier, fine-tune its top or all of it); that is what the lessons' experiments measure.

The scores, from the papers' formulas:

- `logme`: the log of the maximum Bayesian evidence of a linear model on the features
  (You, Liu, Long, Jordan, "LogME: Practical Assessment of Pre-trained Models for Transfer
  Learning", ICML 2021).
- `leep`: the log expected empirical prediction of the source classifier re-mapped to the
  target classes (Nguyen, Hassner, Seeger, Archambeau, "LEEP: A New Measure to Evaluate
  Transferability of Learned Representations", ICML 2020).
- `nce`: the negative conditional entropy of the target labels given the source model's
  predicted classes (Tran, Nguyen, Hassner, "Transferability and Hardness of Supervised
  Classification Tasks", ICCV 2019).
- `h_score`: the between-class share of the feature covariance (Bao, Li, Huang, Zheng,
  Zhang, "An Information-Theoretic Approach to Transferability in Task Transfer Learning",
  ICIP 2019), optionally with the Ledoit-Wolf shrinkage of Ibrahim, Ponomareva, Mazumder,
  "Newer is not always better: Rethinking transferability metrics, their peculiarities,
  stability and performance", ECML PKDD 2022.
- `knn_accuracy`: the cross-validated accuracy of a k-nearest-neighbour classifier on the
  frozen features (cosine distance), a training-free baseline for the scores above.

The scores of different kinds are on different scales: compare one score across models,
never one score with another.

Example:

```python
from tlkit.transferability import knn_accuracy, logme

for name in ("mobilenet_0.25", "mobilenet_v2"):
    base = tlkit.load_backbone(name, 96)
    features = tlkit.extract(tlkit.feature_extractor(base), splits.train.images)
    print(name, logme(features, splits.train.labels), knn_accuracy(features, splits.train.labels))
```
"""

from __future__ import annotations

import math

import numpy as np

from tlkit.checks import check_features, check_labels
from tlkit.errors import check_int, invalid

# LogME's fixed-point iteration: the reference implementation's limits (github.com/thuml/LogME,
# LogME.py): at most 11 updates, stopping when alpha / beta changes by at most 0.1%.
_LOGME_MAX_ITERATIONS = 11
_LOGME_TOLERANCE = 1e-3
# Softmax outputs sum to 1 up to rounding; a row further off than this is not a distribution.
_PROBABILITY_TOLERANCE = 1e-2


def _features(features) -> np.ndarray:
    """`features` as float64, if `tlkit.checks.check_features` accepts them (finite numbers, (n, d), d >= 1)."""
    return check_features(features, "features").astype(np.float64)


def _labels(labels, role: str = "target", complete: bool = True) -> np.ndarray:
    """`labels` as int64 class indices shaped (n,), if `tlkit.checks.check_labels` accepts them.

    They are checked against as many classes as their largest index needs (whole numbers from 0:
    no negative ones); `complete` refuses labels of a single class.
    """
    return check_labels(
        labels,
        _classes_needed(labels),
        role,
        complete=complete,
        name="a transferability score",
        classes="classes numbered from 0",
        fix="Renumber the labels from 0, e.g. np.unique(labels, return_inverse=True)[1].",
    ).astype(np.int64)


def _classes_needed(labels) -> int:
    """The largest index + 1 of whole-number `labels` (+ the shift to 0 of negative ones), or 1 for
    labels that are not whole numbers (which `check_labels` refuses before it counts classes)."""
    try:
        array = np.asarray(labels)
    except (TypeError, ValueError):  # ragged
        return 1
    real = np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    if array.size == 0 or not real or not np.isfinite(array).all() or not np.all(np.mod(array, 1) == 0):
        return 1
    return int(array.max()) + 1 - min(int(array.min()), 0)


def _check_rows(labels: np.ndarray, rows: int, rows_of: str, name: str = "labels") -> None:
    """Raises unless there is one label per example in `rows_of` (`rows` of them)."""
    if len(labels) != rows:
        raise invalid(
            name,
            f"{len(labels)} labels",
            f"one label per example in `{rows_of}` ({rows})",
            f"Pass the labels of the same examples as `{rows_of}`, in the same order.",
        )


# LogME


def logme(features, labels) -> float:
    """LogME: the log maximum evidence of a Bayesian linear model from `features` to each class.

    You, Liu, Long and Jordan, "LogME: Practical Assessment of Pre-trained Models for Transfer
    Learning", ICML 2021 (http://proceedings.mlr.press/v139/you21b.html). For each class c the
    target is the one-vs-rest indicator y_c (1 for the examples of class c, 0 otherwise), modelled
    as y_c = F w + noise with a Gaussian prior w ~ N(0, alpha^-1 I) and Gaussian noise of precision
    beta. The evidence is the probability of y_c with w integrated out,
    p(y_c | F, alpha, beta) = N(y_c; 0, beta^-1 I + alpha^-1 F F^T); its logarithm is maximised over
    alpha and beta by the paper's fixed-point iteration (Algorithm 1) in the singular value
    decomposition F = U S V^T, sigma = S^2: starting from alpha = beta = 1, repeat

    gamma = sum(beta sigma / (alpha + beta sigma)),
    m = beta V diag(1 / (alpha + beta sigma)) V^T F^T y_c  (the posterior mean of w),
    alpha = gamma / (m^T m),  beta = (n - gamma) / ||F m - y_c||^2,

    until alpha / beta changes by at most 0.1% (at most 11 times, as the reference implementation
    at https://github.com/thuml/LogME does). The log evidence at the final alpha and beta is
    n/2 log beta + d/2 log alpha - n/2 log(2 pi) - beta/2 ||F m - y_c||^2 - alpha/2 m^T m
    - 1/2 log det(alpha I + beta F^T F). LogME is the mean over classes of the log evidence
    divided by n: the average log-likelihood per example, so models compare on one scale.

    Every step runs in the spectrum of F: from the d x d matrix F^T F when n >= d, or from the
    n x n matrix F F^T when n < d (the reference's fast version), which give the same score.
    The features are used as they are (no centering or scaling): the score depends on their
    scale, as in the paper.

    Args:
        features: the cached features, shaped `(n, d)`: one row per example.
        labels: one integer class index per example, shaped `(n,)`; at least 2 classes. The
            score averages over the classes present in `labels`.

    Returns:
        The LogME score, a float: higher means the features fit the labels better. Values are
        typically between -2 and 2.

    Example:

    ```python
    features = tlkit.extract(tlkit.feature_extractor(base), splits.train.images)
    logme(features, splits.train.labels)  # e.g. 0.93
    ```
    """
    features = _features(features)
    labels = _labels(labels)
    _check_rows(labels, len(features), "features")
    evidences, _, _ = _logme_fit(features, labels)
    return float(np.mean(evidences))


def _logme_spectrum(features: np.ndarray, targets: np.ndarray, form: str | None = None):
    """The nonzero eigenvalues `sigma` of F^T F (= of F F^T) and the squared projections `x2` of
    each target column on the left singular vectors of F, plus the squared length of each target
    outside their span (`outside`).

    `form` "gram" decomposes the d x d matrix F^T F, "kernel" the n x n matrix F F^T; None picks
    the smaller.
    """
    n, d = features.shape
    form = form or ("kernel" if n < d else "gram")
    if form == "gram":
        sigma, v = np.linalg.eigh(features.T @ features)
    else:
        sigma, u = np.linalg.eigh(features @ features.T)
    keep = sigma > sigma.max(initial=0.0) * max(n, d) * np.finfo(np.float64).eps  # numerical rank
    sigma = sigma[keep]
    if form == "gram":
        # x = U^T y with U = F V S^-1, without forming the n x r matrix U.
        x = (v[:, keep].T @ (features.T @ targets)) / np.sqrt(sigma)[:, None]
    else:
        x = u[:, keep].T @ targets
    x2 = x**2
    outside = np.maximum((targets**2).sum(axis=0) - x2.sum(axis=0), 0.0)
    return sigma, x2, outside


def _logme_fit(features: np.ndarray, labels: np.ndarray, form: str | None = None):
    """Per class of `labels` (sorted): the maximum log evidence / n, and the alpha and beta that give it."""
    n, d = features.shape
    classes = np.unique(labels)
    targets = (labels[:, None] == classes[None, :]).astype(np.float64)  # one-vs-rest, n x C
    sigma, x2, outside = _logme_spectrum(features, targets, form)
    if sigma.size == 0:
        raise invalid(
            "features",
            f"an all-zero array of shape {features.shape}",
            "features that vary",
            "Check the extractor's output: an all-zero feature array carries no information.",
        )
    tiny = np.finfo(np.float64).tiny

    def fit_terms(alpha: float, beta: float, x2_c: np.ndarray, outside_c: float):
        t = alpha / beta
        gamma = float(np.sum(sigma / (sigma + t)))  # the effective number of parameters
        m2 = float(np.sum(sigma * x2_c / (sigma + t) ** 2))  # m^T m
        res2 = float(np.sum(x2_c * (t / (sigma + t)) ** 2) + outside_c)  # ||F m - y||^2
        return gamma, m2, res2

    evidences, alphas, betas = [], [], []
    for c in range(len(classes)):
        x2_c, outside_c = x2[:, c], float(outside[c])
        alpha, beta = 1.0, 1.0
        for _ in range(_LOGME_MAX_ITERATIONS):
            t = alpha / beta
            gamma, m2, res2 = fit_terms(alpha, beta, x2_c, outside_c)
            alpha, beta = gamma / max(m2, tiny), (n - gamma) / max(res2, tiny)
            if abs(alpha / beta - t) / t <= _LOGME_TOLERANCE:
                break
        # The evidence at the final alpha and beta, with their posterior mean m.
        _, m2, res2 = fit_terms(alpha, beta, x2_c, outside_c)
        log_det = np.sum(np.log(alpha + beta * sigma)) + (d - sigma.size) * math.log(alpha)  # log|alpha I + beta F^T F|
        evidence = (
            n / 2 * math.log(beta)
            + d / 2 * math.log(alpha)
            - n / 2 * math.log(2 * math.pi)
            - beta / 2 * res2
            - alpha / 2 * m2
            - log_det / 2
        )
        evidences.append(evidence / n)
        alphas.append(alpha)
        betas.append(beta)
    return np.array(evidences), np.array(alphas), np.array(betas)


# LEEP and NCE: from the source model's outputs


def leep(source_probabilities, labels) -> float:
    """LEEP: the log expected empirical prediction of the source model re-mapped to the target classes.

    Nguyen, Hassner, Seeger and Archambeau, "LEEP: A New Measure to Evaluate Transferability of
    Learned Representations", ICML 2020 (http://proceedings.mlr.press/v119/nguyen20b.html). With
    theta_i(z) the source model's probability of source class z for example i, the empirical
    joint distribution of target label and source class is P(y, z) = 1/n sum over the examples
    of class y of theta_i(z); the empirical conditional is P(y | z) = P(y, z) / P(z). LEEP is the
    mean over examples of the log of the re-mapped classifier's probability of the true label:
    1/n sum_i log(sum_z P(y_i | z) theta_i(z)). It is at most 0; 0 means the source
    predictions determine the target labels. A source class that no example gives any
    probability (P(z) = 0) contributes nothing.

    Args:
        source_probabilities: the pretrained model's softmax outputs over its own (source)
            classes, shaped `(n, source_classes)`: each row a probability distribution (rows
            must sum to 1 within 0.01).
        labels: one integer class index per example of the target task, shaped `(n,)`; at
            least 2 classes.

    Returns:
        The LEEP score, a float <= 0: higher means better transfer.

    Example:

    ```python
    source_model = keras.applications.MobileNetV2(weights="imagenet")  # with its ImageNet head
    probabilities = source_model.predict(keras.applications.mobilenet_v2.preprocess_input(images))
    leep(probabilities, labels)  # e.g. -1.3
    ```
    """
    theta = check_features(
        source_probabilities,
        "source_probabilities",
        columns="source_classes",
        fix="Pass the source model's softmax outputs, e.g. model.predict(images) of a model with its original head.",
    ).astype(np.float64)
    sums = theta.sum(axis=1)
    if theta.min() < 0 or np.abs(sums - 1).max() > _PROBABILITY_TOLERANCE:
        worst = int(np.argmax(np.abs(sums - 1) + (theta.min(axis=1) < 0)))
        raise invalid(
            "source_probabilities",
            f"row {worst} with values from {theta[worst].min():.4g} to {theta[worst].max():.4g} summing to "
            f"{sums[worst]:.4g}",
            f"rows of non-negative probabilities that sum to 1 (within {_PROBABILITY_TOLERANCE})",
            "Apply a softmax to logits first: keras.ops.softmax(logits) or scipy.special.softmax(logits, axis=-1).",
        )
    labels = _labels(labels)
    _check_rows(labels, len(theta), "source_probabilities")
    n = len(theta)
    classes, index = np.unique(labels, return_inverse=True)
    joint = np.zeros((len(classes), theta.shape[1]))  # P(y, z)
    np.add.at(joint, index, theta / n)
    p_z = joint.sum(axis=0)
    conditional = np.divide(joint, p_z, out=np.zeros_like(joint), where=p_z > 0)  # P(y | z)
    # sum_z P(y_i | z) theta_i(z) > 0: example i itself puts theta_i(z) / n into P(y_i, z).
    expected = np.einsum("iz,iz->i", conditional[index], theta)
    return float(np.mean(np.log(expected)))


def nce(source_labels, labels) -> float:
    """NCE: the negative conditional entropy of the target labels given the source model's classes.

    Tran, Nguyen and Hassner, "Transferability and Hardness of Supervised Classification Tasks",
    ICCV 2019 (https://arxiv.org/abs/1908.08142). With z_i the source model's predicted class for
    example i (the argmax of its source predictions) and y_i its target label, the empirical
    joint distribution is P(y, z) = (number of examples with y and z) / n; NCE is
    -H(Y | Z) = sum over (y, z) of P(y, z) log(P(y, z) / P(z)), in nats. It is at most 0; 0 means
    the source class determines the target label, and -log(C) is reached when the source class
    says nothing about C equally frequent target classes.

    Args:
        source_labels: the source model's predicted class per example, shaped `(n,)`: integer
            indices of the source classes, e.g. `probabilities.argmax(-1)`.
        labels: one integer class index per example of the target task, shaped `(n,)`; at
            least 2 classes.

    Returns:
        The NCE score, a float <= 0 (nats): higher means better transfer.

    Example:

    ```python
    source_labels = source_model.predict(preprocessed_images).argmax(-1)  # ImageNet classes
    nce(source_labels, labels)  # e.g. -0.9
    ```
    """
    source = _labels(source_labels, "source", complete=False)  # a source model may predict one class only
    labels = _labels(labels)
    _check_rows(labels, len(source), "source_labels")
    _, y = np.unique(labels, return_inverse=True)
    _, z = np.unique(source, return_inverse=True)
    joint = np.zeros((y.max() + 1, z.max() + 1))
    np.add.at(joint, (y, z), 1.0 / len(y))  # P(y, z)
    p_z = joint.sum(axis=0, keepdims=True)
    present = joint > 0  # 0 log 0 = 0
    return float(np.sum(joint[present] * np.log((joint / p_z)[present])))


# From the features


def h_score(features, labels, shrinkage: bool = False) -> float:
    """H-score: how much of the features' covariance lies between the classes.

    Bao, Li, Huang, Zheng and Zhang, "An Information-Theoretic Approach to Transferability in
    Task Transfer Learning", ICIP 2019. H(f) = tr(cov(f)^-1 cov(E[f | y])): cov(f) is the
    covariance of the features over all examples, and cov(E[f | y]) the covariance of the
    features with each example's replaced by the mean of its class (the between-class
    covariance). In one dimension it is the between-class variance over the total variance,
    between 0 and 1; in d dimensions it is between 0 and min(d, classes - 1).

    cov(f)^-1 is the Moore-Penrose pseudo-inverse (eigenvalues below the largest times
    max(n, d) times the float64 machine epsilon count as zero), so features with constant or
    linearly dependent columns are scored on the directions in which they vary. With many
    feature dimensions and few examples the plain estimate is unstable; `shrinkage=True` gives
    the regularised H-score of Ibrahim, Ponomareva and Mazumder, "Newer is not always better:
    Rethinking transferability metrics, their peculiarities, stability and performance", ECML
    PKDD 2022 (https://arxiv.org/abs/2110.06893): cov(f) is replaced by the Ledoit-Wolf
    shrinkage estimate cov_a(f) = (1 - a) cov(f) + a (tr(cov(f)) / d) I, with the shrinkage a
    estimated from the data (scikit-learn's `LedoitWolf`), and the score is
    tr(cov_a(f)^-1 (1 - a) cov(E[f | y])). Both covariances are the maximum-likelihood (1/n)
    estimates, so a = 0 gives the plain H-score.

    Args:
        features: the cached features, shaped `(n, d)`: one row per example.
        labels: one integer class index per example, shaped `(n,)`; at least 2 classes.
        shrinkage: use the Ledoit-Wolf shrinkage estimate of the feature covariance.

    Returns:
        The H-score, a float >= 0: higher means better transfer.

    Example:

    ```python
    features = tlkit.extract(tlkit.feature_extractor(base), splits.train.images)
    h_score(features, splits.train.labels, shrinkage=True)  # e.g. 3.2
    ```
    """
    features = _features(features)
    labels = _labels(labels)
    _check_rows(labels, len(features), "features")
    if not isinstance(shrinkage, (bool, np.bool_)):
        raise invalid("shrinkage", shrinkage, "True or False")
    n, d = features.shape
    centered = features - features.mean(axis=0)
    classes, index = np.unique(labels, return_inverse=True)
    means = np.zeros((len(classes), d))
    np.add.at(means, index, centered)
    means /= np.bincount(index)[:, None]
    class_means = means[index]  # each example's features replaced by its class mean (their mean is 0)
    between = class_means.T @ class_means / n  # cov(E[f | y])
    if shrinkage:
        from sklearn.covariance import LedoitWolf

        estimate = LedoitWolf(assume_centered=True).fit(centered)
        covariance, between = estimate.covariance_, (1 - estimate.shrinkage_) * between
    else:
        covariance = centered.T @ centered / n  # cov(f)
    eigenvalues, vectors = np.linalg.eigh(covariance)
    keep = eigenvalues > eigenvalues.max(initial=0.0) * max(n, d) * np.finfo(np.float64).eps
    projected = vectors[:, keep].T @ between @ vectors[:, keep]
    return float(np.sum(np.diag(projected) / eigenvalues[keep]))


def knn_accuracy(features, labels, k: int = 5, folds: int = 5, seed: int = 0) -> float:
    """The cross-validated accuracy of a k-nearest-neighbour classifier on the frozen features.

    A training-free baseline for the scores above: each example is classified by the majority
    label of its `k` nearest neighbours (cosine distance between the L2-normalised feature
    vectors) among the examples of the other folds, over a stratified `folds`-fold split.
    Features in which examples of the same class lie close together transfer well to a
    linear or nearest-neighbour head. scikit-learn's `KNeighborsClassifier`,
    `StratifiedKFold` and `cross_val_score` compute it.

    Args:
        features: the cached features, shaped `(n, d)`: one row per example.
        labels: one integer class index per example, shaped `(n,)`; at least 2 classes, each
            with at least `folds` examples.
        k: the number of neighbours that vote.
        folds: the number of cross-validation folds (at least 2).
        seed: the seed of the shuffle before the split into folds.

    Returns:
        The mean accuracy over the folds, between 0 and 1: higher means better transfer.

    Example:

    ```python
    features = tlkit.extract(tlkit.feature_extractor(base), splits.train.images)
    knn_accuracy(features, splits.train.labels, k=5)  # e.g. 0.84
    ```
    """
    features = _features(features)
    labels = _labels(labels)
    _check_rows(labels, len(features), "features")
    k = check_int("k", k, 1, fix="At least one neighbour votes: e.g. k=5.")
    folds = check_int("folds", folds, 2, fix="Cross-validation needs at least 2 folds: e.g. folds=5.")
    seed = check_int("seed", seed, 0, 2**32 - 1)
    counts = np.unique(labels, return_counts=True)
    if counts[1].min() < folds:
        smallest = int(counts[0][np.argmin(counts[1])])
        raise invalid(
            "folds",
            folds,
            f"at most as many folds as the smallest class has examples (class {smallest} has {counts[1].min()})",
            "Pass fewer folds, or more examples of each class.",
        )
    # The largest test fold holds at most ceil(count / folds) examples of each class.
    smallest_training = len(labels) - sum(math.ceil(int(c) / folds) for c in counts[1])
    check_int(
        "k", k, 1, smallest_training, fix=f"A fold may train on {smallest_training} examples: pass fewer neighbours."
    )
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import normalize

    classifier = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute")
    splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_score(classifier, normalize(features), labels, cv=splits, scoring="accuracy")
    return float(np.mean(scores))
