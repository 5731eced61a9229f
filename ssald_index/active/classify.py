"""Classifiers over embeddings (scikit-learn): fit on the labelled rows, score every object.

Two kinds: ``logistic`` (L2 logistic regression on standardised features, balanced class weights: the
rare class is rare) and ``forest`` (a random forest, non-linear). Standardising matters for multi-view
embeddings, whose parts differ in scale.

Features (:data:`FEATURES`): the embedding, the non-parametric morphology measured at ingest (the
``morph_*`` columns; NaN imputed with column medians, then standardised), or both side by side.

Probabilities are calibrated with ``CalibratedClassifierCV`` (sigmoid) once every class has at least
``MIN_PER_CLASS_TO_CALIBRATE`` labels; before that the raw probabilities are used. Cross-validated ROC AUC
and average precision are reported when every class has at least two labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ssald_index.errors import Wanted, check_wanted
from ssald_index.feature_space import NoMorphology, standardise_morphology

__all__ = [
    "CLASSIFIERS",
    "FEATURES",
    "MIN_PER_CLASS_TO_CALIBRATE",
    "ClassifierResult",
    "check_features",
    "feature_matrix",
    "make_classifier",
    "fit_and_score",
]

CLASSIFIERS = ("logistic", "forest")
FEATURES = ("embedding", "morphology", "embedding+morphology")
MIN_PER_CLASS_TO_CALIBRATE = 6


@dataclass
class ClassifierResult:
    """Scores for every object plus what they came from."""

    scores: np.ndarray
    kind: str
    n_positive: int
    n_negative: int
    calibrated: bool
    metrics: dict[str, float] = field(default_factory=dict)


def check_features(features: str) -> str:
    """``features`` if it names one of :data:`FEATURES` (``""``: ``"embedding"``), else a ``ValueError``."""
    features = features or "embedding"
    if features not in FEATURES:
        raise ValueError(f"features must be one of {', '.join(FEATURES)}, got {features!r}")
    return features


def feature_matrix(
    embeddings: np.ndarray, morphology: np.ndarray | None, features: str = "embedding", *, standardised: bool = False
) -> np.ndarray:
    """The classifier's input for every object.

    Parameters
    ----------
    embeddings : ndarray, shape (N, D)
    morphology : ndarray, shape (N, M), or None
        The ``morph_*`` values (NaN where not measured); needed unless ``features`` is ``"embedding"``.
    features : {"embedding", "morphology", "embedding+morphology"}
    standardised : bool
        ``morphology`` is already :func:`~ssald_index.feature_space.standardise_morphology`'s output (e.g. the
        server's cached copy), so it is used as it is.

    Returns
    -------
    ndarray of float32
        Morphology columns have their NaN replaced by the column median (0 when a column has no value) and are
        standardised, so that each weighs like an embedding dimension after the classifier's own scaling.
    """
    features = check_features(features)
    if features == "embedding":
        return embeddings
    try:
        m = (np.asarray(morphology) if standardised else standardise_morphology(morphology)).astype(np.float32)
    except NoMorphology as exc:
        raise NoMorphology(f"features {features!r} need the morph_* columns, but {exc}") from None
    return m if features == "morphology" else np.hstack([np.asarray(embeddings, np.float32), m])


def make_classifier(kind: str = "logistic", seed: int = 0):
    """An unfitted scikit-learn classifier of the given kind."""
    if kind == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000))
    if kind == "forest":
        return RandomForestClassifier(
            n_estimators=200, min_samples_leaf=1, class_weight="balanced_subsample", random_state=seed, n_jobs=1
        )
    raise ValueError(f"classifier must be one of {', '.join(CLASSIFIERS)}, got {kind!r}")


def _cv_metrics(x: np.ndarray, y: np.ndarray, kind: str, seed: int) -> dict[str, float]:
    n_min = int(min(np.sum(y == 1), np.sum(y == 0)))
    if n_min < 2:
        return {}
    folds = StratifiedKFold(n_splits=min(5, n_min), shuffle=True, random_state=seed)
    p = cross_val_predict(make_classifier(kind, seed), x, y, cv=folds, method="predict_proba")[:, 1]
    return {"cv_roc_auc": float(roc_auc_score(y, p)), "cv_average_precision": float(average_precision_score(y, p))}


def fit_and_score(
    x: np.ndarray,
    rows: np.ndarray,
    y: np.ndarray,
    kind: str = "logistic",
    seed: int = 0,
    cv: bool = False,
    wanted: Wanted | None = None,
) -> ClassifierResult:
    """Fit on ``x[rows]`` with 0/1 targets ``y``; return the probability of class 1 for every row of ``x``.

    Parameters
    ----------
    x : ndarray, shape (N, D)
        Embeddings of every object.
    rows : ndarray of int
        Labelled rows.
    y : ndarray of {0, 1}
        Their targets.
    kind : {"logistic", "forest"}
    seed : int
    cv : bool
        Also compute cross-validated metrics (slower).
    wanted : callable, optional
        Asked between the fit, the scoring and the cross-validation (:func:`ssald_index.errors.check_wanted`).

    Raises
    ------
    ValueError
        If the labels hold only one class (nothing to learn from yet).
    ssald_index.errors.Abandoned
        ``wanted`` answered ``False``: the caller has gone.
    """
    y = np.asarray(y, dtype=np.int64)
    if len(rows) != len(y):
        raise ValueError(f"{len(rows)} labelled rows but {len(y)} targets")
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"need both positive and negative labels to train, have {n_pos} positive, {n_neg} negative")
    check_wanted(wanted, f"fitting the {kind} classifier")
    xl = x[rows]
    calibrate = min(n_pos, n_neg) >= MIN_PER_CLASS_TO_CALIBRATE
    if calibrate:
        model = CalibratedClassifierCV(make_classifier(kind, seed), method="sigmoid", cv=3)
    else:
        model = make_classifier(kind, seed)
    model.fit(xl, y)
    check_wanted(wanted, f"scoring {len(x)} objects")
    scores = model.predict_proba(x)[:, 1].astype(np.float32)
    if cv:
        check_wanted(wanted, "cross-validating the classifier")
    metrics = _cv_metrics(xl, y, kind, seed) if cv else {}
    return ClassifierResult(scores, kind, n_pos, n_neg, calibrate, metrics)
