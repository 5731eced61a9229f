"""Indexes of the ``objects`` table: the ANN index on embeddings and scalar indexes on filter columns.

The ANN index is Lance's IVF_RQ (IVF partitions + 4-bit RaBitQ codes) with cosine distance: of the index
types measured with ``bench/bench_knn.py``, the best recall per millisecond (see docs/BENCHMARKS.md). Its
IVF centroids are trained by scikit-learn's MiniBatchKMeans (:func:`train_centroids`), as Lance's own
k-means gave poor partitions. Search re-ranks ``refine_factor * k`` candidates with exact distances, so
returned distances are exact cosine distances. A server that keeps the embeddings in memory scans the
index's partitions in its own copy for queries without a metadata filter (:class:`SearchParams` ``scan``;
faster than Lance's own search of the index), and asks Lance for filtered ones.

Scalar indexes: BTree on objid (lookups never scan), on ra/dec (cone search prefilter), on the
numeric filter columns and on ``density_score`` (Anomalies); Bitmap on the low-cardinality class columns.

After appends, :func:`refresh_indexes` folds new rows into the existing indexes (LanceDB ``optimize``:
no retraining of the IVF centroids) and removes old versions; :func:`build_indexes` (``ssald index``)
rebuilds everything from scratch.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
from lancedb.index import Bitmap, BTree, IvfRq
from tqdm import tqdm

from ssald_index.schema import MAGNITUDE_COLUMNS, embedding_matrix, unit_rows

__all__ = [
    "ANN_COLUMN",
    "ANN_MIN_ROWS",
    "BTREE_COLUMNS",
    "BITMAP_COLUMNS",
    "AnnParams",
    "SearchParams",
    "build_indexes",
    "refresh_indexes",
    "index_state",
    "has_ann_index",
    "ivf_partitions",
]

ANN_COLUMN = "embedding"
# Below this many rows an exact scan is as fast as the index and IVF training has too few points.
ANN_MIN_ROWS = 50_000
BTREE_COLUMNS = ("objid", "ra", "dec", "z", *MAGNITUDE_COLUMNS, "density_score")
BITMAP_COLUMNS = ("spec_class", "bpt_class", "truth_class", "cluster")


@dataclass(frozen=True)
class AnnParams:
    """Build parameters of the IVF_RQ index.

    Parameters
    ----------
    num_partitions : int, optional
        IVF partitions; default ``round(sqrt(n_rows))`` (1000 at 1M rows).
    num_bits : int
        RaBitQ bits per dimension: 4 needs a far smaller exact re-rank for the same recall than LanceDB's
        default of 1 bit (docs/BENCHMARKS.md).
    sample_rate : int
        Training points per partition for k-means.
    """

    num_partitions: int | None = None
    num_bits: int = 4
    sample_rate: int = 256

    def partitions(self, n_rows: int) -> int:
        """IVF partitions for a table of ``n_rows``."""
        parts = self.num_partitions or max(1, round(n_rows**0.5))
        return max(1, min(parts, n_rows // 4 or 1))

    def config(self, n_rows: int) -> IvfRq:
        """The LanceDB index configuration for a table of ``n_rows`` (Lance trains the centroids itself)."""
        return IvfRq(
            distance_type="cosine",
            num_partitions=self.partitions(n_rows),
            num_bits=self.num_bits,
            sample_rate=self.sample_rate,
        )


MIN_AUTO_PROBES = 10
# Largest expected in-memory scan per query, in floats, beyond which Lance's 4-bit codes (8x fewer bytes
# to read) answer faster than the server's float32 copy; set from bench/bench_knn.py (docs/BENCHMARKS.md).
MEMORY_SCAN_MAX_FLOATS = 64_000_000


@dataclass(frozen=True)
class SearchParams:
    """Query-time parameters of the ANN search (chosen with ``bench/bench_knn.py``).

    Parameters
    ----------
    nprobes : int, optional
        IVF partitions visited per query; by default 1% of the partitions an index of the table's size has
        (:meth:`AnnParams.partitions`), at least 10, so recall holds as the table and its partition count
        grow.
    refine_factor : int
        ``refine_factor * k`` candidates are re-ranked with exact distances.
    rerank : {"memory", "lance"}
        Where the server re-ranks: from embeddings it keeps in memory (4 D bytes per object; faster) or by
        Lance's ``refine_factor`` (random reads of the table, no memory).
    scan : {"auto", "memory", "lance"}
        With the embeddings in memory, where a query without a metadata filter visits its IVF partitions:
        the server's copy, grouped by the index's partitions (an IVF-flat scan with exact distances, no
        Lance query, faster while the scan is small), or Lance's index, whose 4-bit codes are 8x fewer
        bytes to read. ``auto`` scans in memory while a query's expected scan is at most
        :data:`MEMORY_SCAN_MAX_FLOATS` (:meth:`scans_in_memory`). Filtered queries always go to Lance (its
        SQL prefilter).
    """

    nprobes: int | None = None
    refine_factor: int = 4
    rerank: str = "memory"
    scan: str = "auto"

    def __post_init__(self) -> None:
        if self.rerank not in ("memory", "lance"):
            raise ValueError(f"rerank must be 'memory' or 'lance', got {self.rerank!r}")
        if self.scan not in ("auto", "memory", "lance"):
            raise ValueError(f"scan must be 'auto', 'memory' or 'lance', got {self.scan!r}")
        if (self.nprobes is not None and self.nprobes < 1) or self.refine_factor < 0:
            raise ValueError(f"nprobes must be >= 1 and refine_factor >= 0, got {self.nprobes}, {self.refine_factor}")

    def scans_in_memory(self, sizes: np.ndarray, dim: int) -> bool:
        """Whether queries scan an in-memory copy grouped into partitions of these ``sizes``.

        Always with ``scan="memory"``, never with ``"lance"``; with ``"auto"`` when a query's expected scan
        (``nprobes`` partitions, each drawn in proportion to its size, as queries follow the data) times
        ``dim`` is at most :data:`MEMORY_SCAN_MAX_FLOATS`.
        """
        if self.scan != "auto":
            return self.scan == "memory"
        total = float(sizes.sum())
        if total == 0:
            return True
        expected = min(self.probes(int(total)) * float((sizes.astype(np.float64) ** 2).sum()) / total, total)
        return expected * dim <= MEMORY_SCAN_MAX_FLOATS

    def probes(self, n_rows: int) -> int:
        """Partitions to visit in a table of ``n_rows``: ``nprobes``, or the default described above."""
        if self.nprobes is not None:
            return self.nprobes
        return max(MIN_AUTO_PROBES, math.ceil(AnnParams().partitions(n_rows) / 100))


def _indices(table: Any) -> dict[str, Any]:
    return {tuple(idx.columns)[0]: idx for idx in table.list_indices()}


def has_ann_index(table: Any) -> bool:
    """Whether the embedding column has a vector index."""
    return ANN_COLUMN in _indices(table)


def _scalar_targets(table: Any) -> list[tuple[str, Any]]:
    names = set(table.schema.names)
    targets = [(c, BTree()) for c in BTREE_COLUMNS if c in names]
    return targets + [(c, Bitmap()) for c in BITMAP_COLUMNS if c in names]


def build_indexes(
    table: Any,
    params: AnnParams = AnnParams(),
    min_rows: int = ANN_MIN_ROWS,
    progress: bool = True,
) -> dict[str, float]:
    """(Re)build every index of the ``objects`` table from scratch.

    Parameters
    ----------
    table : lancedb.table.Table
        The ``objects`` table.
    params : AnnParams
        IVF_RQ build parameters.
    min_rows : int
        The ANN index is built only when the table holds at least this many rows (below it, exact
        search is fast and IVF training has too few points); 0 always builds it.
    progress : bool
        Show a progress bar (one step per index).

    Returns
    -------
    dict
        Seconds spent per index, keyed by column.
    """
    import time

    n = table.count_rows()
    targets: list[tuple[str, Any]] = _scalar_targets(table)
    if n >= max(min_rows, 1):
        targets.append((ANN_COLUMN, params.config(n)))
    seconds: dict[str, float] = {}
    bar = tqdm(targets, desc="index", unit="index", disable=not progress)
    for column, config in bar:
        bar.set_postfix(column=column)
        start = time.perf_counter()
        if column == ANN_COLUMN:
            create_ann_index(table, params)
        else:
            table.create_index(column, config=config, replace=True)
        seconds[column] = time.perf_counter() - start
    bar.close()
    return seconds


def train_centroids(table: Any, params: AnnParams = AnnParams(), seed: int = 0) -> np.ndarray:
    """IVF centroids of the embeddings: scikit-learn MiniBatchKMeans on ``sample_rate`` rows per partition.

    On the unit sphere (cosine): the sample and the centroids are L2-normalised. Not Lance's own k-means:
    it trained far fewer partitions than asked for, and the index on them needed many more probes for the
    same recall (docs/BENCHMARKS.md).

    Returns
    -------
    ndarray of float32, shape (partitions, D)
        Unit-length centroids.
    """
    from sklearn.cluster import MiniBatchKMeans

    n = table.count_rows()
    parts = params.partitions(n)
    n_sample = min(n, parts * params.sample_rate)
    sample = table.to_lance().sample(n_sample, columns=[ANN_COLUMN], randomize_order=False)
    # float64: scikit-learn's k-means++ seeding upcasts float32 rows chunk by chunk, which costs more than
    # the whole fit on float64 input.
    x = unit_rows(embedding_matrix(sample, ANN_COLUMN)).astype(np.float64)
    km = MiniBatchKMeans(parts, batch_size=8192, n_init=1, max_iter=20, random_state=seed).fit(x)
    centroids = km.cluster_centers_.astype(np.float32)
    return unit_rows(centroids)


def create_ann_index(table: Any, params: AnnParams = AnnParams()) -> None:
    """(Re)build the IVF_RQ index of the embeddings with centroids from :func:`train_centroids`."""
    centroids = train_centroids(table, params)
    table.to_lance().create_index(
        ANN_COLUMN,
        index_type="IVF_RQ",
        name=f"{ANN_COLUMN}_idx",
        metric="cosine",
        replace=True,
        num_partitions=len(centroids),
        ivf_centroids=centroids,
        num_bits=params.num_bits,
    )
    table.checkout_latest()


def ivf_partitions(dataset: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """``(centroids, sizes)`` of the IVF partitions of a Lance dataset's embedding index, or None without one.

    ``dataset`` is one version of the ``objects`` table. Read from Lance's index statistics (they carry
    the centroids while ``LANCE_INCLUDE_VECTOR_CENTROIDS`` is true, which this sets); the server scans the
    same partitions in memory (:mod:`ssald_index.cache`).
    """
    names = [i.name for i in dataset.describe_indices() if list(i.field_names) == [ANN_COLUMN]]
    if not names:
        return None
    os.environ.setdefault("LANCE_INCLUDE_VECTOR_CENTROIDS", "true")
    segments = dataset.stats.index_stats(names[0]).get("indices") or []
    if not segments or segments[0].get("centroids") is None:
        return None
    sizes = np.zeros(len(segments[0]["centroids"]), np.int64)
    for segment in segments:  # delta segments share the centroids
        for i, partition in enumerate(segment.get("partitions", [])):
            sizes[i] += partition["size"]
    return np.asarray(segments[0]["centroids"], dtype=np.float32), sizes


def refresh_indexes(
    table: Any,
    min_rows: int = ANN_MIN_ROWS,
    params: AnnParams = AnnParams(),
    keep_versions_for: timedelta = timedelta(hours=1),
) -> None:
    """Bring the indexes up to date after writes, without a full rebuild where LanceDB allows it.

    ``optimize`` first compacts the fragments that chunked writes leave, adds new rows to the existing
    indexes (new rows go into the existing IVF partitions, no re-training) and removes old versions.
    Missing scalar indexes are then created, and the ANN index once the table reaches ``min_rows``:
    built after compaction, they cover every row and need no optimising, which would cost more than the
    compaction.

    Parameters
    ----------
    table : lancedb.table.Table
        The ``objects`` table.
    min_rows : int
        Rows the table needs before a missing ANN index is built.
    params : AnnParams
        Build parameters of that index.
    keep_versions_for : timedelta
        Versions older than this are removed; a running server may still read a recent one.
    """
    table.optimize(cleanup_older_than=keep_versions_for)
    have = _indices(table)
    for column, config in _scalar_targets(table):
        if column not in have:
            table.create_index(column, config=config, replace=True)
    n = table.count_rows()
    if ANN_COLUMN not in have and n >= max(min_rows, 1):
        create_ann_index(table, params)


def index_state(table: Any) -> list[dict[str, Any]]:
    """One entry per index: ``{column, index_type, indexed_rows, unindexed_rows}``."""
    state = []
    for idx in table.list_indices():
        stats = table.index_stats(idx.name)
        state.append(
            {
                "column": tuple(idx.columns)[0],
                "index_type": stats.index_type if stats else str(idx.index_type),
                "indexed_rows": int(stats.num_indexed_rows) if stats else 0,
                "unindexed_rows": int(stats.num_unindexed_rows) if stats else 0,
            }
        )
    return sorted(state, key=lambda s: s["column"])
