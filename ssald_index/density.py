"""Anomaly (low-density) scores of the ``objects`` table, stored as columns.

The default score of an object is the cosine distance to its ``k``-th nearest neighbour in the table
(itself excluded): large in sparse regions of the embedding space. Scores go to ``density_score`` (BTree
indexed) with the scorer in ``density_model`` (e.g. ``knn10:MODEL_ID``); :func:`top_anomalies` reads the
top of that index (or the server's score-sorted cache) instead of scoring per request. IsolationForest and
LocalOutlierFactor (scikit-learn, fit on a sample) are options.

**When and against what a row is scored.** :func:`update_density` scores rows against the whole table as
it stands when it runs. An ingest commits chunk by chunk but scores once, at its end
(:func:`ssald_index.maintenance.finalize`): scoring each chunk against the rows committed so far would give
an ingest's early objects larger scores (fewer neighbours existed yet) than its late ones, so a ranking
would follow the input order. With ``only_missing=True`` (after an ingest) only rows without a score are
scored; older rows keep theirs (new rows can only bring their neighbours closer, so an old score is an upper
bound of its current value); ``ssald index --density`` rescores every row.

**How: a batched scan of the IVF partitions** (:func:`partition_knn_scores`). The rows are grouped by the
partitions of the table's IVF index (its centroids, each row assigned to the nearest, as the served cache
does: :class:`ssald_index.partitions.Partitions`); a block of rows to score is compared, by one matrix
product, with every row of the ``nprobes`` partitions nearest to each of them, with exact float32 cosine
distances. Since only rows of those partitions are candidates, a score is never below the exact one, and
equals it whenever the ``k`` nearest neighbours lie in those partitions (the recall of the ``k``-th
neighbour is measured in tests/ssald_index/test_density.py and docs/BENCHMARKS.md). A table without an IVF
index gets centroids trained for the scan (:func:`ssald_index.ann.train_centroids`), or, up to
:data:`EXACT_MAX_ROWS` rows, one partition: an exact scan. Memory: the embeddings are held in RAM up to
``memory_bytes`` and in a memory-mapped temporary file beyond (so 10^8 objects never need all their
vectors in RAM), plus ~25 bytes of bookkeeping a row and one block of similarities.

:func:`knn_scores` scores arbitrary vectors (not rows of the table) through Lance's ANN search, 256
queries per multi-vector search, or an exact blockwise scan without an index.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

import numpy as np
import pyarrow as pa
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from ssald_index.ann import ANN_COLUMN, has_ann_index, ivf_partitions, train_centroids
from ssald_index.errors import Wanted, check_wanted
from ssald_index.filters import Filter, run_filtered
from ssald_index.partitions import Partitions
from ssald_index.schema import OBJECT_METADATA_COLUMNS, embedding_dim, embedding_matrix, unit_rows
from ssald_index.search import MAX_K, StoreView

__all__ = [
    "EXACT_MAX_ROWS",
    "MEMORY_BYTES",
    "METHODS",
    "REFINE_FRACTION",
    "REFINE_PROBES",
    "knn_scores",
    "partition_knn_scores",
    "update_density",
    "top_anomalies",
]

METHODS = ("knn", "iforest", "lof")
#: Up to this many rows, a table without an IVF index is scored by an exact scan (one partition).
EXACT_MAX_ROWS = 20_000
#: Embeddings held in RAM while scoring up to this many bytes; beyond, in a memory-mapped temporary file.
MEMORY_BYTES = 4 << 30
_BLOCK = 4096
# Similarities computed at once by the partition scan (32 MiB of float32).
_SIM_FLOATS = 1 << 23
_READ_ROWS = 65_536
#: The highest-scoring fraction of the scored rows is scored again with REFINE_PROBES times the partitions.
REFINE_FRACTION = 0.02
REFINE_PROBES = 4
# Rows scored together: each keeps its k best similarities while the partitions go by.
_QUERY_BLOCK = 262_144


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


def _scan(dataset: Any, columns: list[str]) -> Iterator[pa.RecordBatch]:
    for batch in dataset.to_batches(columns=columns, batch_size=_READ_ROWS):
        if batch.num_rows:
            yield batch


def _centroids(store: StoreView, dataset: Any, n: int, dim: int) -> np.ndarray:
    """The IVF index's centroids, else trained ones, else (small tables) one partition: an exact scan."""
    index = ivf_partitions(dataset)
    if index is not None:
        return index[0]
    if n <= EXACT_MAX_ROWS:
        return np.zeros((1, dim), np.float32)
    return train_centroids(store.table)


def partition_knn_scores(
    store: StoreView,
    k: int = 10,
    only_missing: bool = False,
    nprobes: int | None = None,
    memory_bytes: int = MEMORY_BYTES,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """kNN density scores of table rows by a batched scan of the IVF partitions (see the module docstring).

    Parameters
    ----------
    store : StoreView
        The scored store (an :class:`ssald_index.store.ObjectStore`).
    k : int
        Which neighbour (at most the table's rows minus one are available).
    only_missing : bool
        Score only rows whose ``density_score`` is null; every row is still a neighbour.
    nprobes : int, optional
        Partitions visited per scored row; default the served search's
        (:meth:`ssald_index.ann.SearchParams.probes`).
    memory_bytes : int
        Embeddings are held in RAM up to this size, else in a memory-mapped temporary file.
    progress : bool
        Show a progress bar.

    Returns
    -------
    (objids, scores) : ndarrays of int64 and float32
        The scored rows and their cosine distance to the ``k``-th neighbour found, never below the exact one.
    """
    if k < 1:
        raise ValueError(f"density k must be >= 1, got {k}")
    dataset = store.table.to_lance()
    n, dim = dataset.count_rows(), embedding_dim(dataset.schema)
    if n < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    layout = Partitions(_centroids(store, dataset, n, dim))
    probes = nprobes or store.search_params.probes(n)
    objids, part, todo = np.empty(n, np.int64), np.empty(n, np.int32), np.ones(n, bool)
    filled = 0
    # Pass 1: objids, rows to score and their partitions, in scan order.
    for batch in _scan(dataset, ["objid", ANN_COLUMN, "density_score"]):
        end = filled + batch.num_rows
        objids[filled:end] = batch.column("objid").to_numpy()
        part[filled:end] = layout.assign(unit_rows(embedding_matrix(batch, ANN_COLUMN)))
        if only_missing:
            todo[filled:end] = batch.column("density_score").is_null().to_numpy(zero_copy_only=False)
        filled = end
    if filled != n:
        raise RuntimeError(f"density scan read {filled} rows of a table of {n}: the table changed while scored")
    layout.group(part)
    del part
    with ExitStack() as stack:
        if n * dim * 4 <= memory_bytes:
            x = np.empty((n, dim), np.float32)
        else:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="ssald_density_"))
            x = np.lib.format.open_memmap(os.path.join(folder, "vectors.npy"), "w+", np.float32, (n, dim))
        # Pass 2: each row's unit embedding into its partition's block.
        filled = 0
        for batch in _scan(dataset, ["objid", ANN_COLUMN]):
            end = filled + batch.num_rows
            if not np.array_equal(batch.column("objid").to_numpy(), objids[filled:end]):
                raise RuntimeError("density scan: the table's rows changed order between two reads of one version")
            x[layout.slot[filled:end]] = unit_rows(embedding_matrix(batch, ANN_COLUMN))
            filled = end
        wanted = todo[layout.position]  # by vector row
        scores = _scan_partitions(x, layout, wanted, min(k, n - 1), probes, progress)
    rows = np.flatnonzero(wanted)
    return objids[layout.position[rows]], scores[rows]


def _scan_partitions(
    x: np.ndarray, layout: Partitions, wanted: np.ndarray, k: int, nprobes: int, progress: bool
) -> np.ndarray:
    """The ``k``-th neighbour distance of each ``wanted`` vector row, by row of ``x``.

    Partition-major: a block of rows finds its ``nprobes`` nearest partitions, then each partition is
    compared once with all the rows of the block that probe it (one matrix product per partition and chunk
    of those rows), and each row keeps its ``k`` best similarities so far. Rows that found fewer than ``k``
    neighbours in their partitions (tiny tables) are scanned again over every partition. Blocks run on one
    thread per core, BLAS single-threaded in each: on a loaded machine BLAS's own threads spin and turn
    the many small products into a crawl.
    """
    out = np.full(len(x), np.nan, np.float32)
    todo = np.flatnonzero(wanted)
    nprobes = min(nprobes, layout.count)
    workers = os.cpu_count() or 1

    def kth(rows: np.ndarray, probes: int) -> tuple[np.ndarray, np.ndarray]:
        sim = _kth_similarity(x, layout, rows, k, probes)
        short = ~np.isfinite(sim)
        if short.any() and probes < layout.count:
            sim[short] = _kth_similarity(x, layout, rows[short], k, layout.count)
        return rows, 1.0 - sim

    def blocks(rows: np.ndarray) -> list[np.ndarray]:
        size = min(_QUERY_BLOCK, max(_BLOCK, math.ceil(len(rows) / workers)))
        return [rows[i : i + size] for i in range(0, len(rows), size)]

    bar = tqdm(total=len(todo), desc="density", unit="obj", disable=not progress, smoothing=0.05)
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
        for rows, dist in pool.map(lambda rows: kth(rows, nprobes), blocks(todo)):
            out[rows] = dist
            bar.update(len(rows))
        # The most anomalous rows are those whose neighbours most often lie beyond their nearest partitions:
        # their scores, which can only be too high, are refined with REFINE_PROBES times the partitions.
        top = todo[np.argsort(-out[todo], kind="stable")[: math.ceil(REFINE_FRACTION * len(todo))]]
        if len(top) and nprobes < layout.count:
            more = min(layout.count, REFINE_PROBES * nprobes)
            for rows, dist in pool.map(lambda rows: kth(rows, more), blocks(np.sort(top))):
                out[rows] = np.minimum(out[rows], dist)
    bar.close()
    return out


def _kth_similarity(x: np.ndarray, layout: Partitions, rows: np.ndarray, k: int, nprobes: int) -> np.ndarray:
    """Largest ``k``-th cosine similarity of vector ``rows`` to the other rows of their nearest partitions."""
    probes = np.concatenate(
        [layout.nearest_each(x[rows[i : i + _BLOCK]], nprobes) for i in range(0, len(rows), _BLOCK)]
    )
    pair_part = probes.ravel()
    order = np.argsort(pair_part, kind="stable")
    pair_row = order // probes.shape[1]  # which of ``rows`` each (row, partition) pair belongs to
    starts = np.searchsorted(pair_part[order], np.arange(layout.count + 1))
    best = np.full((len(rows), k), -np.inf, np.float32)
    for part in np.flatnonzero(np.diff(starts)):
        plo, phi = layout.bounds[part], layout.bounds[part + 1]
        if phi == plo:
            continue
        members = x[plo:phi]
        keep = min(k, phi - plo)
        who = pair_row[starts[part] : starts[part + 1]]
        step = max(1, _SIM_FLOATS // (phi - plo))
        for i in range(0, len(who), step):
            sub = who[i : i + step]
            sim = x[rows[sub]] @ members.T
            own = (rows[sub] >= plo) & (rows[sub] < phi)
            sim[np.flatnonzero(own), rows[sub][own] - plo] = -np.inf
            if keep < sim.shape[1]:
                sim = np.partition(sim, sim.shape[1] - keep, axis=1)[:, sim.shape[1] - keep :]
            merged = np.concatenate([best[sub], sim], axis=1)
            best[sub] = np.partition(merged, merged.shape[1] - k, axis=1)[:, merged.shape[1] - k :]
    return best.min(axis=1)


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
        objids, scores = partition_knn_scores(store, k=k, only_missing=only_missing, progress=progress)
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


def top_anomalies(
    store: StoreView, n: int, filter: Filter | None = None, wanted: Wanted | None = None
) -> list[dict[str, Any]]:
    """The ``n`` highest-scoring objects (most anomalous first) matching ``filter``.

    Unfiltered, the served metadata cache already holds the objects sorted by score. Filtered (or without
    a cache), rows with ``density_score >= t`` are read through the BTree index on ``density_score``,
    ``t`` being the ``M``-th highest score, with ``M`` growing from ``n`` until ``n`` rows pass the filter:
    no request scores objects or scans the table. Objects without a score never come back. ``wanted``
    (optional) is asked before each of those reads (:func:`ssald_index.errors.check_wanted`).

    Raises
    ------
    ValueError
        If ``n`` is not in ``[1, MAX_K]`` or the filter is malformed.
    ssald_index.errors.Abandoned
        ``wanted`` answered ``False``.
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
        check_wanted(wanted, f"reading the {limit} most anomalous objects")
        found = run_filtered(store.table.search().where(where).select(list(OBJECT_METADATA_COLUMNS)).limit(None), user)
        if found.num_rows >= n or limit >= len(scores):
            break
        limit = min(len(scores), limit * 8)
    rows = found.to_pylist()
    rows.sort(key=lambda r: (-r["density_score"], r["objid"]))
    return rows[:n]
