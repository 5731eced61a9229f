"""ssald_index.active.strategies: every strategy on clustered unit vectors with one rare cluster."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from ssald_index.active import strategies
from ssald_index.active.classify import fit_and_score
from ssald_index.active.strategies import (
    GP_MAX_LABELLED,
    STRATEGIES,
    Pool,
    cold_start_from_example,
    reduce_for_gp,
    select,
)


def clustered(n: int = 1500, n_rare: int = 15, dim: int = 16, seed: int = 0):
    """Unit vectors in 5 broad clusters plus one tight rare cluster (the 'dual nuclei')."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(6, dim))
    which = np.r_[rng.integers(0, 5, n - n_rare), np.full(n_rare, 5)]
    spread = np.where(which == 5, 0.25, 1.0)[:, None]
    x = centres[which] + spread * rng.normal(size=(n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    perm = rng.permutation(n)
    return x[perm].astype(np.float32), (which == 5)[perm]


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_proposes_new_unique_rows(name):
    x, truth = clustered()
    labelled = cold_start_from_example(x, int(np.flatnonzero(truth)[0]), 20)
    y = truth[labelled].astype(np.int8)
    probs = fit_and_score(x, labelled, y).scores
    anomaly = 1.0 - np.sort(x @ x.T, axis=1)[:, -11]
    picked = select(name, Pool(x, labelled, y, probs=probs, anomaly=anomaly, seed=1), 10)
    assert len(picked) == 10 and len(set(picked.tolist())) == 10
    assert not np.isin(picked, labelled).any()


def test_gp_uses_the_reduced_space_it_is_given():
    x, truth = clustered()
    labelled = cold_start_from_example(x, int(np.flatnonzero(truth)[0]), 20)
    y = truth[labelled].astype(np.int8)
    reduced = reduce_for_gp(x)
    assert reduced.shape == (len(x), 16)
    fresh = select("gp_ei", Pool(x, labelled, y), 10)
    assert select("gp_ei", Pool(x, labelled, y, reduced=reduced), 10).tolist() == fresh.tolist()
    # it really is the given space that is searched: reversed rows in the reduced space change the picks
    assert select("gp_ei", Pool(x, labelled, y, reduced=reduced[::-1].copy()), 10).tolist() != fresh.tolist()


def test_strategy_semantics():
    x, truth = clustered()
    labelled = np.arange(10)
    probs = np.linspace(0, 1, len(x)).astype(np.float32)
    pool = Pool(x, labelled, truth[labelled].astype(np.int8), probs=probs)
    assert select("top", pool, 3).tolist() == [len(x) - 1, len(x) - 2, len(x) - 3]
    mid = select("uncertainty", pool, 2)
    assert np.all(np.abs(probs[mid] - 0.5) < 1e-3)
    assert set(select("margin", pool, 2)) == set(mid) == set(select("entropy", pool, 2))
    with pytest.raises(ValueError, match="needs anomaly scores"):
        select("anomaly", pool, 2)
    with pytest.raises(ValueError, match="needs classifier probabilities"):
        select("top", Pool(x, labelled, pool.y), 2)
    with pytest.raises(ValueError, match="unknown strategy"):
        select("oracle", pool, 2)
    first = cold_start_from_example(x, 5, 4)
    assert first[0] == 5 and np.all(x[first[1:]] @ x[5] >= np.sort(np.delete(x @ x[5], 5))[-3] - 1e-6)


def _many_labelled(n_labelled: int, n_positive: int, seed: int = 0):
    """Small vectors with ``n_labelled`` labelled rows, ``n_positive`` of them positive, and 100 unlabelled."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_labelled + 100, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    labelled = rng.permutation(len(x))[:n_labelled]
    y = np.zeros(n_labelled, np.int8)
    y[rng.choice(n_labelled, n_positive, replace=False)] = 1
    return x, labelled, y


def test_gp_ei_fits_on_at_most_its_cap_keeping_every_positive(monkeypatch):
    """Fault 5: gp_ei needed 64 L^2 bytes for L labelled objects; just above the cap it fits on the cap."""
    fitted: list[tuple[int, int]] = []

    class Recording(strategies.GaussianProcessRegressor):
        def fit(self, X, y):  # noqa: N803 - scikit-learn's name
            fitted.append((len(X), int(np.sum(y))))
            return super().fit(X, y)

    monkeypatch.setattr(strategies, "GaussianProcessRegressor", Recording)
    x, labelled, y = _many_labelled(GP_MAX_LABELLED + 1, 7)
    picked = select("gp_ei", Pool(x, labelled, y), 10)
    assert fitted == [(GP_MAX_LABELLED, 7)]  # the cap, with all 7 positives
    assert len(set(picked.tolist())) == 10 and not np.isin(picked, labelled).any()
    x, labelled, y = _many_labelled(GP_MAX_LABELLED, 7)
    select("gp_ei", Pool(x, labelled, y), 10)
    assert fitted[-1] == (GP_MAX_LABELLED, 7)  # at the cap, every labelled object is used


def test_gp_ei_memory_does_not_grow_with_the_labels():
    """At 4x the cap the old code held a (L, L, 16) float32 difference array alone: 256 MB; now ~ the cap's."""
    x, labelled, y = _many_labelled(4 * GP_MAX_LABELLED, 20)
    reduced = reduce_for_gp(x)
    tracemalloc.start()
    try:
        select("gp_ei", Pool(x, labelled, y, reduced=reduced), 10)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32e6, f"gp_ei peaked at {peak / 1e6:.0f} MB with {len(labelled)} labelled objects"
