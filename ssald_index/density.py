"""Anomaly (low-density) scores of the ``objects`` table, stored as columns.

The default score of an object is the cosine distance to its ``k``-th nearest neighbour (itself
excluded): large in sparse regions of the embedding space. Neighbours come from the ANN index in batches
(multi-vector queries) when the table has one, else from an exact blockwise scan. IsolationForest and
LocalOutlierFactor (scikit-learn, fit on a sample) are options. Scores go to ``density_score`` (BTree
indexed) with the scorer in ``density_model`` (e.g. ``knn10:MODEL_ID``); :func:`top_anomalies` reads the
top of that index (or the server's score-sorted cache) instead of scoring per request.

After an ingest, :func:`update_density` with ``only_missing=True`` scores only rows without a score
(scores of old rows are not revised by the new rows' arrival; ``ssald index --density`` rescores all).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from ssald_index.ann import ANN_COLUMN, has_ann_index
from ssald_index.filters import Filter, run_filtered
from ssald_index.schema import OBJECT_METADATA_COLUMNS, embedding_matrix
from ssald_index.search import MAX_K, StoreView

__all__ = ["METHODS", "knn_scores", "update_density", "top_anomalies"]

METHODS = ("knn", "iforest", "lof")
_BLOCK = 4096


def knn_scores(
    store: StoreView, vectors: np.ndarray, objids: np.ndarray, k: int = 10, progress: bool = False
) -> np.ndarray:
    """Cosine distance from each vector to its ``k``-th nearest table object other than itself.

    Parameters
    ----------
    store : StoreView
        The scored store (an :class:`ssald_index.store.ObjectStore`).
    vectors : ndarray, shape (m, D)
        Query embeddings (rows of the table, or new ones).
    objids : ndarray of int, shape (m,)
        Their objids, excluded from their own neighbours.
    k : int
        Which neighbour.
    """
    if k < 1:
        raise ValueError(f"density k must be >= 1, got {k}")
    out = np.empty(len(vectors), np.float32)
    bar = tqdm(total=len(vectors), desc="density", unit="obj", disable=not progress)
    if has_ann_index(store.table):
        step = 256
        nprobes = store.search_params.probes(store.count())
        for lo in range(0, len(vectors), step):
            q = vectors[lo : lo + step]
            res = (
                store.table.search(list(q), vector_column_name=ANN_COLUMN)
                .distance_type("cosine")
                .nprobes(nprobes)
                .refine_factor(max(store.search_params.refine_factor, 1))
                .select(["objid", "_distance"])
                .limit(k + 1)
                .to_arrow()
            )
            qi, ids, dist = (res.column(c).to_numpy() for c in ("query_index", "objid", "_distance"))
            for j in range(len(q)):
                mine = (qi == j) & (ids != objids[lo + j])
                d = np.sort(dist[mine])
                out[lo + j] = d[k - 1] if len(d) >= k else (d[-1] if len(d) else np.nan)
            bar.update(len(q))
    else:
        table = store.read(["objid", ANN_COLUMN])
        all_ids, all_vec = table.column("objid").to_numpy(), embedding_matrix(table, ANN_COLUMN)
        all_vec = all_vec / np.linalg.norm(all_vec, axis=1, keepdims=True)
        kk = min(k, len(all_ids) - 1)
        for lo in range(0, len(vectors), _BLOCK):
            q = vectors[lo : lo + _BLOCK]
            q = q / np.linalg.norm(q, axis=1, keepdims=True)
            dist = 1.0 - q @ all_vec.T
            dist[all_ids[None, :] == objids[lo : lo + _BLOCK, None]] = np.inf
            out[lo : lo + len(q)] = np.partition(dist, kk - 1, axis=1)[:, kk - 1] if kk >= 1 else np.nan
            bar.update(len(q))
    bar.close()
    return out


def _sklearn_scores(
    method: str, store: StoreView, where: str | None, sample: int, seed: int, progress: bool
) -> tuple[np.ndarray, np.ndarray]:
    """IsolationForest or LocalOutlierFactor scores of the rows matching ``where``.

    The model is fit on ``sample`` random rows of the whole table, then scores the rows batch by batch, so
    memory stays at one batch of embeddings whatever the table size.
    """
    from sklearn.ensemble import IsolationForest
    from sklearn.neighbors import LocalOutlierFactor

    ds = store.table.to_lance()
    n = ds.count_rows()
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, size=min(sample, n), replace=False))
    fit = embedding_matrix(ds.take(rows, columns=[ANN_COLUMN]), ANN_COLUMN)
    if method == "iforest":
        model = IsolationForest(n_estimators=200, random_state=seed).fit(fit)
    else:
        model = LocalOutlierFactor(n_neighbors=min(20, len(fit) - 1), novelty=True).fit(fit)
    objids, scores = [], []
    total = ds.count_rows(filter=where) if where else n
    bar = tqdm(total=total, desc=f"density ({method})", unit="obj", disable=not progress)
    for batch in ds.to_batches(columns=["objid", ANN_COLUMN], filter=where, batch_size=65_536):
        if batch.num_rows == 0:
            continue
        objids.append(batch.column("objid").to_numpy())
        # score_samples is high for inliers: negate so that larger means more anomalous, as for knn.
        scores.append((-model.score_samples(embedding_matrix(batch, ANN_COLUMN))).astype(np.float32))
        bar.update(batch.num_rows)
    bar.close()
    if not objids:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    return np.concatenate(objids), np.concatenate(scores)


def update_density(
    store: StoreView,
    method: str = "knn",
    k: int = 10,
    only_missing: bool = False,
    sample: int = 100_000,
    seed: int = 0,
    progress: bool = True,
) -> int:
    """Score objects into ``density_score``; returns the number of objects scored.

    Parameters
    ----------
    store : StoreView
        The scored store (an :class:`ssald_index.store.ObjectStore`).
    method : {"knn", "iforest", "lof"}
        k-th-neighbour distance (default), IsolationForest or LocalOutlierFactor.
    k : int
        Neighbour used by ``knn``.
    only_missing : bool
        Score only rows whose ``density_score`` is null (incremental update after an ingest).
    sample : int
        Rows the sklearn models are fit on.
    seed : int
        Random seed of the sklearn sample and model.
    progress : bool
        Show a progress bar.
    """
    if method not in METHODS:
        raise ValueError(f"unknown density method {method!r}; expected one of {', '.join(METHODS)}")
    where = "density_score IS NULL" if only_missing else None
    if store.count() < 2:
        return 0
    if method == "knn":
        todo = store.read(["objid", ANN_COLUMN], where)
        objids, vectors = todo.column("objid").to_numpy(), embedding_matrix(todo, ANN_COLUMN)
        del todo
        scores = knn_scores(store, vectors, objids, k=k, progress=progress) if len(objids) else vectors[:0, 0]
        name = f"knn{k}"
    else:
        objids, scores = _sklearn_scores(method, store, where, sample, seed, progress)
        name = method
    if len(objids) == 0:
        return 0
    model = f"{name}:{store.model_id or ''}"
    _merge(store, pa.table({"objid": objids, "density_score": scores, "density_model": [model] * len(objids)}))
    return len(objids)


def _merge(store: StoreView, columns: pa.Table) -> None:
    schema = store.table.schema
    columns = columns.cast(pa.schema([schema.field(name) for name in columns.column_names]))
    store.table.merge_insert("objid").when_matched_update_all().execute(columns)


def _score_thresholds(store: StoreView) -> np.ndarray:
    if store.cache is not None:
        return store.cache.sorted_scores
    scores = store.read(["density_score"], "density_score IS NOT NULL").column("density_score").to_numpy()
    return -np.sort(-scores.astype(np.float64))


def top_anomalies(store: StoreView, n: int, filter: Filter | None = None) -> list[dict[str, Any]]:
    """The ``n`` highest-scoring objects (most anomalous first) matching ``filter``.

    Unfiltered, the served metadata cache already holds the objects sorted by score. Filtered (or without
    a cache), rows with ``density_score >= t`` are read through the BTree index on ``density_score``,
    ``t`` being the ``M``-th highest score, with ``M`` growing from ``n`` until ``n`` rows pass the filter:
    no request scores objects or scans the table. Objects without a score never come back.

    Raises
    ------
    ValueError
        If ``n`` is not in ``[1, MAX_K]`` or the filter is malformed.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_K:
        raise ValueError(f"n must be an integer between 1 and {MAX_K}, got {n!r}")
    user = filter.sql() if filter is not None else None
    cache = store.cache
    if cache is not None and not user:
        return cache.rows_at(cache.anomaly_order[:n])
    scores = _score_thresholds(store)
    if len(scores) == 0:
        return []
    limit = int(n)
    while True:
        t = float(scores[min(limit, len(scores)) - 1])
        where = f"density_score >= {t!r}" + (f" AND ({user})" if user else "")
        found = run_filtered(store.table.search().where(where).select(list(OBJECT_METADATA_COLUMNS)).limit(None), user)
        if found.num_rows >= n or limit >= len(scores):
            break
        limit = min(len(scores), limit * 8)
    rows = found.to_pylist()
    rows.sort(key=lambda r: (-r["density_score"], r["objid"]))
    return rows[:n]
