"""Metrics learned from labels: a map of every embedding into a space where Euclidean distance ranks
neighbours by what the labels of one class care about.

The unlabelled embedding ranks neighbours by everything the encoder saw (size, colour, neighbours in the
stamp…); once a person has labelled some objects of a class, the direction that separates that class is
known and can be given more weight. Three kinds, all fitted on the labelled rows only and applied to
every object:

``probe`` (default)
    A linear probe (logistic regression, balanced class weights, on standardised features) whose decision
    value, standardised over the labelled rows and multiplied by ``probe_weight``, is appended to the unit
    embedding. Neighbours then agree first on the probe's verdict and second on the embedding, so the
    space keeps everything the embedding knew; one direction is all a few labels can estimate well.
``nca``
    scikit-learn's Neighbourhood Components Analysis (Goldberger et al. 2004): a linear map to
    ``n_components`` dimensions trained so that a stochastic nearest-neighbour classifier is right on the
    labelled rows, started from the probe's direction and the labelled rows' principal axes. More
    directions than the probe, so it needs more labels to be stable.
``head``
    A small MLP (one hidden layer of ``hidden`` ReLU units) trained on the labels over the frozen
    embeddings; the hidden activations are the new space: a head fitted to the labels, the encoder
    untouched.

Extra per-object features (e.g. morphology columns) can be given beside the embeddings: every kind learns
from their concatenation, standardised; the probe appends its decision value to the unit embedding only.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "METRIC_KINDS",
    "DEFAULT_METRIC_KIND",
    "MIN_PER_CLASS",
    "TooFewLabels",
    "LearnedMetric",
    "fit_metric",
    "check_choice",
    "check_kind",
]

METRIC_KINDS = ("probe", "nca", "head")
DEFAULT_METRIC_KIND = "probe"
MIN_PER_CLASS = 2


class TooFewLabels(ValueError):
    """A class has fewer than :data:`MIN_PER_CLASS` positive or negative labels (``FAILED_PRECONDITION``)."""


def check_choice(value: str, choices: tuple[str, ...], default: str, what: str) -> str:
    """``value``, or ``default`` for ``""``, if among ``choices``.

    Raises
    ------
    ValueError
        Otherwise, naming ``what`` and listing the choices.
    """
    value = value or default
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; choose from {', '.join(choices)}")
    return value


def check_kind(kind: str) -> str:
    """``kind``, or :data:`DEFAULT_METRIC_KIND` for ``""``; ``ValueError`` listing the choices otherwise."""
    return check_choice(kind, METRIC_KINDS, DEFAULT_METRIC_KIND, "metric kind")


def _features(x: np.ndarray, extra: np.ndarray | None) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be a 2-d (N, D) array, got shape {x.shape}")
    if extra is None:
        return x
    extra = np.asarray(extra, dtype=np.float64)
    if extra.ndim == 1:
        extra = extra[:, None]
    if extra.ndim != 2 or len(extra) != len(x):
        raise ValueError(f"extra features must be (N, F) with N = {len(x)} rows, got shape {extra.shape}")
    return np.hstack([x, extra])


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


@dataclass(frozen=True)
class LearnedMetric:
    """A fitted map into a space where Euclidean distance is the learned metric.

    Attributes
    ----------
    kind : str
        One of :data:`METRIC_KINDS`.
    label : str
        The class it was learned for (only used in messages).
    n_positive, n_negative : int
        Labels it learned from.
    n_features : int
        Columns of embedding plus extra features it expects.
    """

    kind: str
    label: str
    n_positive: int
    n_negative: int
    n_features: int
    _map: Callable[[np.ndarray, np.ndarray], np.ndarray] = field(repr=False)

    def transform(self, x: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
        """Map embeddings (plus the same extra features as at fit) into the learned space.

        Parameters
        ----------
        x : ndarray, shape (N, D)
            Embeddings (any norm).
        extra : ndarray, shape (N, F), optional
            The extra features given to :func:`fit_metric`, for the same rows.

        Returns
        -------
        ndarray of float32, shape (N, d)
        """
        x = np.asarray(x, dtype=np.float64)
        features = _features(x, extra)
        if features.shape[1] != self.n_features:
            raise ValueError(
                f"the {self.kind} metric for {self.label!r} was fitted on {self.n_features} feature columns, "
                f"got {features.shape[1]} (embedding {x.shape[1]} + extra)"
            )
        return np.ascontiguousarray(self._map(x, features), dtype=np.float32)


def _fit_probe(xl: np.ndarray, y: np.ndarray, seed: int, weight: float) -> Callable:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(xl)
    probe = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000, random_state=seed)
    probe.fit(scaler.transform(xl), y)
    s = probe.decision_function(scaler.transform(xl))
    centre, spread = float(np.mean(s)), float(np.std(s)) or 1.0

    def apply(x: np.ndarray, features: np.ndarray) -> np.ndarray:
        value = (probe.decision_function(scaler.transform(features)) - centre) / spread
        return np.hstack([_unit(x), weight * value[:, None]])

    return apply


def _fit_nca(xl: np.ndarray, y: np.ndarray, seed: int, n_components: int, scale: float = 3.0) -> Callable:
    from sklearn.decomposition import PCA
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import NeighborhoodComponentsAnalysis
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(xl)
    s = scaler.transform(xl)
    # Start from the class direction (the balanced probe's, an LDA-like init that also works with a handful
    # of labels) scaled up so it dominates, then the labelled rows' principal axes. Plain "pca" init starts
    # from the directions of largest variance, which in a noisy embedding rarely hold the class, and "lda"
    # gives a single component for two classes.
    probe = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000, random_state=seed).fit(s, y)
    direction = probe.coef_[0] / (np.linalg.norm(probe.coef_[0]) or 1.0)
    n_axes = max(0, min(n_components, len(s), s.shape[1]) - 1)
    axes = PCA(n_components=n_axes, random_state=seed).fit(s).components_ if n_axes else np.zeros((0, s.shape[1]))
    init = np.vstack([scale * direction, axes])
    nca = NeighborhoodComponentsAnalysis(n_components=len(init), init=init, max_iter=100, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        nca.fit(s, y)
    return lambda x, features: nca.transform(scaler.transform(features))


def _fit_head(xl: np.ndarray, y: np.ndarray, seed: int, hidden: int, alpha: float) -> Callable:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(xl)
    # MLPClassifier has no class weights: repeat the rarer class's rows until both classes weigh the same.
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    small, large = (pos, neg) if len(pos) < len(neg) else (neg, pos)
    balanced = np.concatenate([large, small, rng.choice(small, len(large) - len(small))])
    mlp = MLPClassifier(
        hidden_layer_sizes=(hidden,), alpha=alpha, max_iter=500, early_stopping=False, random_state=seed
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(scaler.transform(xl[balanced]), y[balanced])
    w, b = mlp.coefs_[0], mlp.intercepts_[0]
    return lambda x, features: np.maximum(scaler.transform(features) @ w + b, 0.0)


def fit_metric(
    x: np.ndarray,
    rows: np.ndarray,
    y: np.ndarray,
    kind: str = DEFAULT_METRIC_KIND,
    seed: int = 0,
    *,
    extra: np.ndarray | None = None,
    label: str = "the target label",
    probe_weight: float = 2.0,
    n_components: int = 16,
    hidden: int = 64,
    head_alpha: float = 1.0,
) -> LearnedMetric:
    """Learn a metric from the labelled rows ``x[rows]`` with 0/1 targets ``y``.

    Parameters
    ----------
    x : ndarray, shape (N, D)
        Embeddings of every object (any norm; rows are normalised where the kind needs unit vectors).
    rows : ndarray of int
        Labelled rows of ``x``.
    y : ndarray of {0, 1}
        Their targets: 1 for the class, 0 for anything else.
    kind : {"probe", "nca", "head"}
        See the module docstring.
    seed : int
        Seeds the solvers, so a fit is reproducible.
    extra : ndarray, shape (N, F), optional
        More features per object (e.g. morphology), concatenated to the embeddings.
    label : str
        Name of the class, for error messages.
    probe_weight : float
        ``probe``: weight of the standardised decision value against the unit embedding, whose distances
        lie in [0, 2]: at 2, one standard deviation of the decision value outweighs most embedding gaps.
    n_components : int
        ``nca``: output dimension (capped by the labelled rows and the features).
    hidden : int
        ``head``: hidden units, the output dimension.
    head_alpha : float
        ``head``: L2 penalty. Strong, so that the weights of directions the labels do not need shrink
        towards zero and stop spreading the hidden space with noise.

    Returns
    -------
    LearnedMetric

    Raises
    ------
    TooFewLabels
        Fewer than :data:`MIN_PER_CLASS` positive or negative labels (a ``ValueError``).
    ValueError
        Unknown kind, mismatched ``rows``/``y``, targets other than 0/1, rows out of range.
    """
    kind = check_kind(kind)
    features = _features(x, extra)
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    y = np.asarray(y).reshape(-1)
    if len(rows) != len(y):
        raise ValueError(f"{len(rows)} labelled rows but {len(y)} targets")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"targets must be 0 or 1, got {sorted(set(np.unique(y).tolist()))}")
    if len(rows) and (rows.min() < 0 or rows.max() >= len(features)):
        raise ValueError(f"labelled rows must lie in [0, {len(features)}), got {rows.min()}..{rows.max()}")
    y = y.astype(np.int64)
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    if n_pos < MIN_PER_CLASS or n_neg < MIN_PER_CLASS:
        raise TooFewLabels(
            f"label {label!r} has {n_pos} positive and {n_neg} negative labels; a learned metric needs at "
            f"least {MIN_PER_CLASS} of each"
        )
    xl = features[rows]
    if kind == "probe":
        apply = _fit_probe(xl, y, seed, probe_weight)
    elif kind == "nca":
        apply = _fit_nca(xl, y, seed, n_components)
    else:
        apply = _fit_head(xl, y, seed, hidden, head_alpha)
    return LearnedMetric(kind, label, n_pos, n_neg, features.shape[1], apply)
