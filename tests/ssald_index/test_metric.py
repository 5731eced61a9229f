"""Learned metrics (ssald_index.metric) on a class separable along one direction drowned in noise."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ssald_index.metric import METRIC_KINDS, TooFewLabels, fit_metric

N, D, PREVALENCE = 2000, 32, 0.05


def drowned_class(n: int = N, d: int = D, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(x, y): the class sits 2 sigma-of-noise out along one random direction; the other d-1 are noise."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < PREVALENCE).astype(np.int64)
    x = rng.normal(size=(n, d))
    x[:, 0] = rng.normal(scale=0.3, size=n) + 2.0 * y
    rotation, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return (x @ rotation).astype(np.float32), y


def precision_at_10(z: np.ndarray, y: np.ndarray) -> float:
    """Mean fraction of the class among the 10 Euclidean nearest neighbours of each of its members."""
    z = np.asarray(z, dtype=np.float64)
    pos = np.flatnonzero(y == 1)
    d2 = np.sum((z[pos, None, :] - z[None, :, :]) ** 2, axis=-1)
    d2[np.arange(len(pos)), pos] = np.inf
    return float(y[np.argsort(d2, axis=1)[:, :10]].mean())


def labelled(y: np.ndarray, n_pos: int, n_neg: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    return np.concatenate([rng.choice(pos, n_pos, replace=False), rng.choice(neg, n_neg, replace=False)])


@pytest.fixture(scope="module")
def survey():
    return drowned_class()


@pytest.mark.parametrize("kind", METRIC_KINDS)
def test_learned_space_finds_the_class_the_raw_space_misses(survey, kind):
    x, y = survey
    rows = labelled(y, 20, 80)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    raw = precision_at_10(unit, y)
    metric = fit_metric(x, rows, y[rows], kind=kind)
    z = metric.transform(x)
    assert z.dtype == np.float32 and z.shape[0] == N and np.isfinite(z).all()
    assert (metric.kind, metric.n_positive, metric.n_negative) == (kind, 20, 80)
    learned = precision_at_10(z, y)
    assert raw < 0.3
    assert learned > raw + 0.4, (kind, raw, learned)


def test_probe_appends_the_standardised_decision_of_a_balanced_logistic_probe(survey):
    x, y = survey
    rows = labelled(y, 10, 40)
    z = fit_metric(x, rows, y[rows], kind="probe", probe_weight=2.0).transform(x)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    np.testing.assert_allclose(z[:, :D], unit, atol=1e-6)
    reference = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=2000))
    reference.fit(x[rows].astype(np.float64), y[rows])
    s = reference.decision_function(x.astype(np.float64))
    s_labelled = s[rows]
    expected = 2.0 * (s - s_labelled.mean()) / s_labelled.std()
    np.testing.assert_allclose(z[:, D], expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", METRIC_KINDS)
def test_fits_are_reproducible_and_dimensions_as_documented(survey, kind):
    x, y = survey
    rows = labelled(y, 5, 10)
    a = fit_metric(x, rows, y[rows], kind=kind, seed=3).transform(x[:50])
    b = fit_metric(x, rows, y[rows], kind=kind, seed=3).transform(x[:50])
    np.testing.assert_array_equal(a, b)
    assert a.shape[1] == {"probe": D + 1, "nca": 15, "head": 64}[kind]  # nca: at most the 15 labelled rows


def test_extra_features_carry_a_class_the_embedding_does_not_see():
    rng = np.random.default_rng(4)
    y = (rng.random(N) < PREVALENCE).astype(np.int64)
    x = rng.normal(size=(N, D)).astype(np.float32)
    extra = (rng.normal(scale=0.3, size=N) + 2.0 * y)[:, None]
    rows = labelled(y, 20, 80)
    metric = fit_metric(x, rows, y[rows], extra=extra)
    assert precision_at_10(metric.transform(x, extra=extra), y) > precision_at_10(x, y) + 0.4
    with pytest.raises(ValueError, match="fitted on 33 feature columns, got 32"):
        metric.transform(x)


@pytest.mark.parametrize(("n_pos", "n_neg"), [(1, 10), (10, 1), (0, 5), (0, 0)])
def test_too_few_labels_name_the_label_and_the_counts(survey, n_pos, n_neg):
    x, y = survey
    rows = labelled(y, n_pos, n_neg)
    with pytest.raises(TooFewLabels, match=rf"'merger' has {n_pos} positive and {n_neg} negative labels"):
        fit_metric(x, rows, y[rows], label="merger")
    assert issubclass(TooFewLabels, ValueError)


def test_bad_arguments_are_named(survey):
    x, y = survey
    rows = labelled(y, 3, 3)
    with pytest.raises(ValueError, match="unknown metric kind 'lmnn'; choose from probe, nca, head"):
        fit_metric(x, rows, y[rows], kind="lmnn")
    with pytest.raises(ValueError, match="6 labelled rows but 5 targets"):
        fit_metric(x, rows, y[rows][:5])
    with pytest.raises(ValueError, match="targets must be 0 or 1"):
        fit_metric(x, rows, np.array([0, 1, 2, 0, 1, 0]))
    with pytest.raises(ValueError, match=r"labelled rows must lie in \[0, 2000\)"):
        fit_metric(x, np.append(rows[:-1], N), y[rows])
