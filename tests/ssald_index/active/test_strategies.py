"""ssald_index.active.strategies: every strategy on clustered unit vectors with one rare cluster."""

from __future__ import annotations

import numpy as np
import pytest

from ssald_index.active.classify import fit_and_score
from ssald_index.active.strategies import STRATEGIES, Pool, cold_start_from_example, reduce_for_gp, select


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
