"""Active-learning strategies: which unlabelled objects to show the astronomer next.

Every strategy is a pure function of a :class:`Pool` (embeddings, labelled rows and targets, the current
classifier's probabilities, optional anomaly scores) that returns ``n`` row indices, never one already
labelled. For a binary target, least-confidence ``uncertainty``, ``margin`` and ``entropy`` rank the
pool identically (all are monotone in |p - 0.5|); they are kept apart for multi-class use and clarity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import pdist
from scipy.stats import norm
from sklearn.cluster import kmeans_plusplus
from sklearn.decomposition import PCA
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

__all__ = [
    "Pool",
    "STRATEGIES",
    "GP_MAX_LABELLED",
    "select",
    "reduce_for_gp",
    "gp_training_rows",
    "cold_start_from_example",
    "cold_start_from_anomalies",
]

#: PCA dimensions of the Gaussian-process strategy, and the rows its PCA is fitted on at most.
GP_DIMS = 16
GP_PCA_SAMPLE = 50_000
#: Most labelled objects the ``gp_ei`` Gaussian process is fitted on: its kernel matrix costs O(L^2) memory and
#: its predictions O(L^2) time per object, for L labelled objects. Beyond this many, it fits on every positive
#: (a rare class has few) and a random sample of negatives to fill the rest: memory stays ~10 MB whatever L.
GP_MAX_LABELLED = 500
#: Objects predicted per batch: the cross-kernel of one batch is GP_PREDICT_BATCH x L float64.
GP_PREDICT_BATCH = 4096


@dataclass
class Pool:
    """What a strategy may look at.

    Attributes
    ----------
    x : ndarray, shape (N, D)
        L2-normalised embeddings.
    labelled : ndarray of int
        Rows already labelled (never proposed again).
    y : ndarray of {0, 1}
        Their targets.
    probs : ndarray, shape (N,), optional
        Current classifier probability of the target; ``None`` before a classifier exists.
    anomaly : ndarray, shape (N,), optional
        Low-density scores (larger = more anomalous).
    seed : int
    reduced : ndarray, shape (N, GP_DIMS), optional
        :func:`reduce_for_gp` of ``x``, computed once per loop and kept here (the ``gp_ei`` strategy computes
        it when missing, which costs seconds at 10^6 objects).
    """

    x: np.ndarray
    labelled: np.ndarray
    y: np.ndarray
    probs: np.ndarray | None = None
    anomaly: np.ndarray | None = None
    seed: int = 0
    reduced: np.ndarray | None = None

    def unlabelled(self) -> np.ndarray:
        """Rows not labelled yet, ascending."""
        mask = np.ones(len(self.x), bool)
        mask[self.labelled] = False
        return np.flatnonzero(mask)


def _top(candidates: np.ndarray, score: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` candidates of highest score (ties by row order)."""
    order = np.lexsort((candidates, -score))
    return candidates[order[:n]]


def _need_probs(pool: Pool, name: str) -> np.ndarray:
    if pool.probs is None:
        raise ValueError(f"strategy {name!r} needs classifier probabilities; train a classifier first")
    return pool.probs


def random(pool: Pool, n: int) -> np.ndarray:
    """Uniformly random unlabelled objects: the baseline."""
    rng = np.random.default_rng(pool.seed)
    cand = pool.unlabelled()
    return rng.choice(cand, size=min(n, len(cand)), replace=False)


def top(pool: Pool, n: int) -> np.ndarray:
    """Greedy exploitation: the highest-probability unlabelled objects (what a candidate list shows)."""
    cand = pool.unlabelled()
    return _top(cand, _need_probs(pool, "top")[cand], n)


def uncertainty(pool: Pool, n: int) -> np.ndarray:
    """Least confidence: 1 - max(p, 1 - p), highest first."""
    cand = pool.unlabelled()
    p = _need_probs(pool, "uncertainty")[cand]
    return _top(cand, 1.0 - np.maximum(p, 1.0 - p), n)


def margin(pool: Pool, n: int) -> np.ndarray:
    """Smallest margin between the two class probabilities, |2p - 1|."""
    cand = pool.unlabelled()
    p = _need_probs(pool, "margin")[cand]
    return _top(cand, -np.abs(2.0 * p - 1.0), n)


def entropy(pool: Pool, n: int) -> np.ndarray:
    """Largest predictive entropy."""
    cand = pool.unlabelled()
    p = np.clip(_need_probs(pool, "entropy")[cand].astype(np.float64), 1e-9, 1 - 1e-9)
    return _top(cand, -(p * np.log(p) + (1 - p) * np.log(1 - p)), n)


def committee(pool: Pool, n: int, members: int = 5) -> np.ndarray:
    """Query-by-committee: the largest spread of probabilities among classifiers fitted on resamples.

    Each of the ``members`` is the ``logistic`` classifier (:func:`ssald_index.active.classify.make_classifier`)
    fitted on a bootstrap resample of the labels.
    """
    from ssald_index.active.classify import make_classifier

    rng = np.random.default_rng(pool.seed)
    cand = pool.unlabelled()
    xl, y = pool.x[pool.labelled], np.asarray(pool.y)
    votes = []
    for _ in range(members):
        idx = rng.choice(len(y), size=len(y), replace=True)
        if len(np.unique(y[idx])) < 2:  # a resample needs both classes; keep every positive then
            idx = np.concatenate([idx, np.flatnonzero(y == 1), np.flatnonzero(y == 0)])
        model = make_classifier("logistic").fit(xl[idx], y[idx])
        votes.append(model.predict_proba(pool.x[cand])[:, 1])
    return _top(cand, np.std(votes, axis=0), n)


def diversity(pool: Pool, n: int, pool_factor: int = 10) -> np.ndarray:
    """k-means++ seeding over the ``pool_factor * n`` most uncertain objects: uncertain *and* spread out."""
    uncertain = uncertainty(pool, pool_factor * n)
    if len(uncertain) <= n:
        return uncertain
    _, picked = kmeans_plusplus(pool.x[uncertain], n_clusters=n, random_state=pool.seed)
    return uncertain[np.asarray(picked)]


def _distance_to_labelled(pool: Pool, cand: np.ndarray) -> np.ndarray:
    if len(pool.labelled) == 0:
        return np.ones(len(cand), np.float32)
    sims = pool.x[cand] @ pool.x[pool.labelled].T
    return 1.0 - sims.max(axis=1)


def anomaly_guided(pool: Pool, n: int) -> np.ndarray:
    """Astronomaly-style: anomaly rank modulated by the classifier's relevance and by novelty.

    score = a * (0.1 + p) * (1 - exp(-d / tau)), with ``a`` the anomaly percentile rank in [0, 1], ``p`` the
    classifier probability (0.5 before one exists), ``d`` the cosine distance to the nearest labelled
    object and ``tau`` its median over the pool: anomalous objects the user would find relevant, away from
    what was already shown (Lochner & Bassett 2021 weight anomaly scores by user relevance the same way).
    """
    if pool.anomaly is None:
        raise ValueError("strategy 'anomaly' needs anomaly scores; run `ssald index` to compute density scores")
    cand = pool.unlabelled()
    a = np.argsort(np.argsort(pool.anomaly)) / max(len(pool.anomaly) - 1, 1)
    p = pool.probs[cand] if pool.probs is not None else np.full(len(cand), 0.5)
    d = _distance_to_labelled(pool, cand)
    tau = max(float(np.median(d)), 1e-6)
    return _top(cand, a[cand] * (0.1 + p) * (1.0 - np.exp(-d / tau)), n)


def reduce_for_gp(x: np.ndarray, dims: int = GP_DIMS, seed: int = 0) -> np.ndarray:
    """Embeddings projected on their first ``dims`` principal components: the ``gp_ei`` strategy's space.

    The PCA is fitted on at most :data:`GP_PCA_SAMPLE` random rows, then applied to all.
    """
    k = min(dims, x.shape[1], len(x))
    rng = np.random.default_rng(seed)
    fit_rows = x if len(x) <= GP_PCA_SAMPLE else x[np.sort(rng.choice(len(x), GP_PCA_SAMPLE, replace=False))]
    return PCA(n_components=k, random_state=seed).fit(fit_rows).transform(x).astype(np.float32)


def gp_training_rows(y: np.ndarray, limit: int = GP_MAX_LABELLED, seed: int = 0) -> np.ndarray:
    """Positions in ``y`` the ``gp_ei`` process fits on: all when at most ``limit``, else every positive (a random
    ``limit`` of them when there are more) and random negatives up to ``limit``, ascending."""
    if len(y) <= limit:
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    positives, negatives = np.flatnonzero(y), np.flatnonzero(y == 0)
    if len(positives) >= limit:
        return np.sort(rng.choice(positives, limit, replace=False))
    return np.sort(np.concatenate([positives, rng.choice(negatives, limit - len(positives), replace=False)]))


def gp_expected_improvement(pool: Pool, n: int, xi: float = 0.01) -> np.ndarray:
    """Protege-like: a Gaussian process on the labels (embeddings reduced by PCA), ranked by expected improvement.

    EI = (mu - y_best - xi) Phi(z) + sigma phi(z), z = (mu - y_best - xi) / sigma. The RBF length scale is
    the median distance between labelled points in the PCA space and the noise level is fixed (0.05):
    with tens of binary labels, fitting them by maximum likelihood collapses the length scale to zero,
    and a fixed kernel keeps each round cheap. Walmsley et al.'s Protege ranks candidates by
    a GP's expected improvement the same way. The process fits on at most :data:`GP_MAX_LABELLED` labelled
    objects (:func:`gp_training_rows`) and predicts in batches, so its memory is bounded whatever the labels.
    """
    cand = pool.unlabelled()
    z_all = pool.reduced if pool.reduced is not None else reduce_for_gp(pool.x)
    y_all = np.asarray(pool.y, dtype=float)
    fit = gp_training_rows(np.asarray(pool.y), GP_MAX_LABELLED, pool.seed)
    zl, yl = z_all[np.asarray(pool.labelled)[fit]], y_all[fit]
    diffs = pdist(zl) if len(zl) > 1 else np.zeros(0)
    scale = float(np.median(diffs[diffs > 0])) if np.any(diffs > 0) else 1.0
    kernel = ConstantKernel(1.0, "fixed") * RBF(length_scale=scale, length_scale_bounds="fixed") + WhiteKernel(
        0.05, "fixed"
    )
    gp = GaussianProcessRegressor(kernel=kernel, optimizer=None, normalize_y=False)
    gp.fit(zl, yl)
    mu, sigma = np.empty(len(cand)), np.empty(len(cand))
    for start in range(0, len(cand), GP_PREDICT_BATCH):
        part = slice(start, start + GP_PREDICT_BATCH)
        mu[part], sigma[part] = gp.predict(z_all[cand[part]], return_std=True)
    best = float(np.max(y_all)) if len(y_all) else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        imp = mu - best - xi
        z = np.where(sigma > 0, imp / sigma, 0.0)
        ei = np.where(sigma > 0, imp * norm.cdf(z) + sigma * norm.pdf(z), 0.0)
    return _top(cand, ei, n)


STRATEGIES: dict[str, Callable[[Pool, int], np.ndarray]] = {
    "random": random,
    "top": top,
    "uncertainty": uncertainty,
    "margin": margin,
    "entropy": entropy,
    "committee": committee,
    "diversity": diversity,
    "anomaly": anomaly_guided,
    "gp_ei": gp_expected_improvement,
}


def select(name: str, pool: Pool, n: int) -> np.ndarray:
    """Rows the strategy ``name`` wants labelled next (at most ``n``, none already labelled)."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    picked = np.asarray(STRATEGIES[name](pool, n), dtype=np.int64)
    assert not np.isin(picked, pool.labelled).any()  # internal invariant, not user input
    return picked


def cold_start_from_example(x: np.ndarray, row: int, n: int) -> np.ndarray:
    """The example itself and its ``n - 1`` nearest neighbours (cosine): start from one known object."""
    sims = x @ x[row]
    sims[row] = np.inf
    return np.argsort(-sims, kind="stable")[:n]


def cold_start_from_anomalies(anomaly: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` most anomalous objects: start with no example at all."""
    return np.argsort(-anomaly, kind="stable")[:n]
