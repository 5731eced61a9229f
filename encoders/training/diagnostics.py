"""Label-free (and labelled) quality scores of an embedding space; NumPy and scikit-learn only.

The VICReg loss does not say whether an encoder learns: its terms move with the strength
of the augmentations. These scores look at the embeddings instead:

* :func:`embedding_std` - per-dimension standard deviation of the L2-normalised embeddings,
  times ``sqrt(D)``: ~1 for embeddings spread over the sphere, 0 for a collapsed dimension;
* :func:`rankme` - the effective rank of Garrido et al. (2023, "RankMe");
* :func:`two_point_score` - the two-point correlation function score of Mohale & Lochner
  (2024): how much more clustered the representation is than a Gaussian with the same mean
  and covariance;
* with labels, :func:`knn_accuracy` and the Davies-Bouldin index.

:func:`quality_report` computes them all as one JSON-ready dict. No torch here, so the
``ssald quality`` command and the server side can use it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["correlation_excess", "embedding_std", "knn_accuracy", "quality_report", "rankme", "two_point_score"]


def _check(z: np.ndarray, name: str = "embeddings", min_rows: int = 2) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] < min_rows or z.shape[1] < 1:
        raise ValueError(f"{name} must have shape (N, D) with N >= {min_rows}, got {z.shape}")
    if not np.all(np.isfinite(z)):
        raise ValueError(f"{name} contain non-finite values")
    return z


def embedding_std(z: np.ndarray) -> np.ndarray:
    """Per-dimension standard deviation of the L2-normalised embeddings, times ``sqrt(D)``.

    Parameters
    ----------
    z : numpy.ndarray
        ``(N, D)`` embeddings.

    Returns
    -------
    numpy.ndarray
        ``(D,)``; a dimension with value 0 has collapsed, and embeddings drawn uniformly on
        the unit sphere give ~1 in every dimension (Chen & He 2021, SimSiam's collapse check).
    """
    z = _check(z)
    norms = np.linalg.norm(z, axis=1, keepdims=True)
    unit = np.divide(z, norms, out=np.zeros_like(z), where=norms > 0)
    return unit.std(axis=0, ddof=1) * np.sqrt(z.shape[1])


def rankme(z: np.ndarray, eps: float = 1e-7) -> float:
    """Effective rank of an embedding matrix (Garrido et al. 2023, eq. 1).

    Parameters
    ----------
    z : numpy.ndarray
        ``(N, D)`` embeddings (not centred, as in the paper).
    eps : float
        Added to the normalised singular values before the entropy (paper: 1e-7).

    Returns
    -------
    float
        ``exp(-sum_k p_k log p_k)`` with ``p_k = sigma_k / ||sigma||_1 + eps``; between ~1
        (rank one, collapse) and ``min(N, D)`` (all singular values equal).
    """
    z = _check(z)
    sigma = np.linalg.svd(z, compute_uv=False)
    total = sigma.sum()
    if total <= 0:
        return 1.0
    p = sigma / total + eps
    return float(np.exp(-np.sum(p * np.log(p))))


def _pair_distances(x: np.ndarray) -> np.ndarray:
    from scipy.spatial.distance import pdist

    return np.sort(pdist(x))


def correlation_excess(data: np.ndarray, random: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """``eps(r) = (N_R / N_D) DD(r) / RR(r) - 1`` for cumulative pair counts within each ``r``.

    Parameters
    ----------
    data, random : numpy.ndarray
        ``(N_D, k)`` and ``(N_R, k)`` points.
    radii : numpy.ndarray
        Separations ``r``.

    Returns
    -------
    numpy.ndarray
        ``eps`` at each ``r``; ``DD`` and ``RR`` are the mean numbers of other points within
        ``r`` of a point (pairs times 2 / N); ``RR`` is floored at one pair.
    """
    return _excess(_pair_distances(data), _pair_distances(random), len(data), len(random), np.asarray(radii))


def _excess(dd_dist: np.ndarray, rr_dist: np.ndarray, n_d: int, n_r: int, radii: np.ndarray) -> np.ndarray:
    dd = np.searchsorted(dd_dist, radii, side="right") * 2.0 / n_d
    rr = np.searchsorted(rr_dist, radii, side="right") * 2.0 / n_r
    return (n_r / n_d) * dd / np.maximum(rr, 2.0 / n_r) - 1.0


def two_point_score(
    z: np.ndarray,
    n_components: int = 8,
    n_scales: int = 10,
    quantiles: tuple[float, float] = (0.001, 0.1),
    n_random: int | None = None,
    n_realisations: int = 5,
    max_points: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Two-point correlation score of a representation (Mohale & Lochner 2024).

    Parameters
    ----------
    z : numpy.ndarray
        ``(N, D)`` embeddings.
    n_components : int
        Principal components kept (fewer if ``D`` or ``N`` is smaller).
    n_scales : int
        Number of separations ``r``.
    quantiles : tuple of float
        The separations are log-spaced between these quantiles of the pair separations of
        the first random set: small scales, where clustering shows, chosen relative to the
        spread of the representation so that the score does not depend on its overall scale.
    n_random : int, optional
        Size ``N_R`` of each Gaussian random set (default ``N_D``).
    n_realisations : int
        Independent random sets; the score is their mean and the spread their standard deviation.
    max_points : int
        At most this many embeddings are used (a seeded random subset), bounding the
        ``O(N^2)`` pair counting.
    seed : int
        Seeds the subset and the random sets.

    Returns
    -------
    dict
        ``score`` (mean over realisations of ``sum_r eps(r)``), ``spread`` (their standard
        deviation), ``r`` (the separations), ``eps`` (mean ``eps(r)`` at each).

    Notes
    -----
    The data ``D`` are the embeddings projected on their first principal components; each
    random set ``R`` is drawn from a Gaussian with the same mean and covariance. With
    ``DD(r)`` and ``RR(r)`` the mean number of neighbours within separation ``r`` per point
    (pair counts times 2 / N), ``eps(r) = (N_R / N_D) DD(r) / RR(r) - 1`` estimates the
    excess probability of a pair closer than ``r`` over an unstructured (Gaussian) space.
    A representation that groups similar objects has many close pairs and a large positive
    score; a Gaussian blob scores ~0 within the spread. Cumulative counts keep ``RR(r) > 0``
    at every scale (``r`` is a quantile of the random separations).
    """
    z = _check(z, min_rows=3)
    rng = np.random.default_rng(seed)
    if len(z) > max_points:
        z = z[rng.choice(len(z), max_points, replace=False)]
    n_d = len(z)
    n_r = int(n_random or n_d)
    k = max(1, min(int(n_components), z.shape[1], n_d - 1))
    centred = z - z.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    data = centred @ vt[:k].T
    cov = np.atleast_2d(np.cov(data, rowvar=False))
    dd_dist = _pair_distances(data)
    radii = None
    sums, per_scale = [], []
    for _ in range(int(n_realisations)):
        rand = rng.multivariate_normal(np.zeros(k), cov, size=n_r, method="eigh")
        rr_dist = _pair_distances(rand)
        if radii is None:
            radii = np.quantile(rr_dist, np.geomspace(quantiles[0], quantiles[1], n_scales))
        eps = _excess(dd_dist, rr_dist, n_d, n_r, radii)
        per_scale.append(eps)
        sums.append(float(eps.sum()))
    return {
        "score": float(np.mean(sums)),
        "spread": float(np.std(sums, ddof=1)) if len(sums) > 1 else 0.0,
        "r": [float(r) for r in radii],
        "eps": [float(e) for e in np.mean(per_scale, axis=0)],
    }


def knn_accuracy(z: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """Leave-one-out accuracy of a ``k``-nearest-neighbour majority vote (cosine distance).

    Parameters
    ----------
    z : numpy.ndarray
        ``(N, D)`` embeddings.
    labels : array-like
        ``N`` class labels.
    k : int
        Neighbours voting (the point itself excluded); ties go to the nearest neighbour's class.

    Returns
    -------
    float
        Fraction of points whose vote equals their label.
    """
    from sklearn.neighbors import NearestNeighbors

    z = _check(z)
    labels = np.asarray(labels)
    if len(labels) != len(z):
        raise ValueError(f"knn_accuracy got {len(labels)} labels for {len(z)} embeddings")
    k = min(int(k), len(z) - 1)
    _, codes = np.unique(labels, return_inverse=True)
    idx = NearestNeighbors(n_neighbors=k + 1, metric="cosine").fit(z).kneighbors(z, return_distance=False)
    neighbours = np.array([row[row != i][:k] for i, row in enumerate(idx)])
    votes = codes[neighbours]
    n_classes = codes.max() + 1
    counts = np.zeros((len(z), n_classes))
    np.add.at(counts, (np.repeat(np.arange(len(z)), k), votes.ravel()), 1.0)
    counts[np.arange(len(z)), votes[:, 0]] += 0.5  # nearest neighbour breaks ties
    return float(np.mean(counts.argmax(axis=1) == codes))


def quality_report(
    z: np.ndarray, labels: np.ndarray | None = None, k: int = 10, max_points: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """All scores of an embedding set as a JSON-ready dict.

    Parameters
    ----------
    z : numpy.ndarray
        ``(N, D)`` embeddings.
    labels : array-like, optional
        Class labels; adds ``knn_acc`` and ``davies_bouldin`` (empty-string labels are left out).
    k : int
        Neighbours of the kNN vote.
    max_points : int
        Subset size for the pair counts of :func:`two_point_score`.
    seed : int
        Seeds the subsets and random sets.

    Returns
    -------
    dict
        ``n, dim, std_mean, std_min, collapsed_frac`` (dimensions with normalised std < 0.01),
        ``rankme, tpcf, tpcf_spread`` and, with labels, ``knn_acc, davies_bouldin``.
    """
    z = _check(z, min_rows=3)
    std = embedding_std(z)
    tpcf = two_point_score(z, max_points=max_points, seed=seed)
    out: dict[str, Any] = {
        "n": int(len(z)),
        "dim": int(z.shape[1]),
        "std_mean": float(std.mean()),
        "std_min": float(std.min()),
        "collapsed_frac": float(np.mean(std < 0.01)),
        "rankme": rankme(z),
        "tpcf": tpcf["score"],
        "tpcf_spread": tpcf["spread"],
    }
    if labels is not None:
        from sklearn.metrics import davies_bouldin_score

        labels = np.asarray(labels)
        keep = np.array([str(v) != "" for v in labels])
        if keep.sum() >= 3 and 2 <= len(np.unique(labels[keep])) < keep.sum():
            out["knn_acc"] = knn_accuracy(z[keep], labels[keep], k=k)
            out["davies_bouldin"] = float(davies_bouldin_score(z[keep], labels[keep]))
    return out
