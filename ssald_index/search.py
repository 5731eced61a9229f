"""Queries of the ``objects`` table: kNN by cosine distance, cone search, and the ``k`` they may ask for.

kNN runs on L2-normalised embeddings through the ANN index. Without a metadata cache (a script, a test),
Lance answers with the metadata columns. A served store (:mod:`ssald_index.cache`) gets back only row
addresses and distances and reads the rest from memory; with the embeddings in memory it re-ranks the
candidates exactly, or scans the nearest IVF partitions itself when there is no metadata filter. The query
object is removed with a prefilter, so ``k`` neighbours come back whenever the table holds them.

:class:`ssald_index.store.ObjectStore` exposes every function here as a method; they take any object with
the attributes of :class:`StoreView`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from ssald_index.ann import ANN_COLUMN, SearchParams
from ssald_index.cache import MetadataCache
from ssald_index.errors import ObjectNotFound
from ssald_index.filters import Filter, angular_separation_arcsec, cone_where, run_filtered
from ssald_index.schema import OBJECT_METADATA_COLUMNS

__all__ = [
    "MAX_K",
    "DISTANCE",
    "StoreView",
    "check_k",
    "check_query_vector",
    "as_rows",
    "search_vector",
    "neighbours",
    "cone",
    "MAX_CONE_ROWS",
    "objects_in_cone",
    "nearest_object",
]

MAX_K = 1000
#: Most objects one :func:`objects_in_cone` answer carries (about 2.5 MB on the wire, under gRPC's 4 MiB).
MAX_CONE_ROWS = 10_000
DISTANCE = "cosine"


class StoreView(Protocol):
    """What the search, density and maintenance functions read of a store (:class:`ObjectStore` has it all)."""

    dim: int
    search_params: SearchParams

    @property
    def table(self) -> Any: ...

    @property
    def cache(self) -> MetadataCache | None: ...

    @property
    def model_id(self) -> str | None: ...

    def lance(self) -> Any: ...

    def count(self) -> int: ...

    def read(self, columns: Sequence[str], where: str | None = None) -> pa.Table: ...

    def get(self, objid: int, with_embedding: bool = False) -> dict[str, Any]: ...

    def row(self, objid: int, columns: list[str]) -> dict[str, Any]: ...

    def cached_vectors(self, objids: np.ndarray) -> np.ndarray | None: ...


def check_k(k: int) -> int:
    """``k`` as an int, if it is an integer in ``[1, MAX_K]``.

    Raises
    ------
    ValueError
        Otherwise (booleans and floats included), naming the value.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= MAX_K:
        raise ValueError(f"k must be an integer between 1 and {MAX_K}, got {k!r}")
    return int(k)


def as_rows(table: pa.Table) -> list[dict[str, Any]]:
    """The rows of an Arrow query result as dicts, Lance's ``_distance`` renamed ``distance``."""
    rows = table.to_pylist()
    for row in rows:
        if "_distance" in row:
            row["distance"] = float(row.pop("_distance"))
    return rows


def neighbours(
    store: StoreView,
    objid: int,
    k: int,
    filter: Filter | None = None,
    exclude_radius_arcsec: float = 0.0,
) -> list[dict[str, Any]]:
    """The ``k`` nearest neighbours of an object, the object itself excluded.

    Parameters
    ----------
    store : StoreView
        The store to search.
    objid : int
        The query object.
    k : int
        Number of neighbours, in ``[1, MAX_K]``.
    filter : Filter, optional
        Metadata prefilter; ``k`` neighbours still come back when ``k`` rows match.
    exclude_radius_arcsec : float
        Objects closer than this on the sky to the query (e.g. the other nucleus of a pair, a
        separate objid) are never returned; 0 excludes only the object itself.

    Raises
    ------
    ObjectNotFound
        If ``objid`` is not in the table.
    ValueError
        If ``k`` is not in ``[1, MAX_K]`` or the filter is malformed.
    """
    k = check_k(k)
    cached = store.cached_vectors(np.array([int(objid)]))
    query = {"embedding": cached[0]} if cached is not None else store.row(objid, ["ra", "dec", "embedding"])
    exclude = {int(objid)}
    if exclude_radius_arcsec:
        sky = query if "ra" in query else store.get(objid)  # the cached row, only when it is needed
        exclude |= {int(row["objid"]) for row in cone(store, sky["ra"], sky["dec"], exclude_radius_arcsec)}
    return search_vector(store, query["embedding"], k, exclude=exclude, filter=filter)


def cone(
    store: StoreView, ra: float, dec: float, radius_arcsec: float, filter: Filter | None = None
) -> list[dict[str, Any]]:
    """Objects within ``radius_arcsec`` of (ra, dec), nearest first, each with ``separation_arcsec``.

    The ra/dec BTree indexes serve a bounding box; astropy gives the exact separations.

    Raises
    ------
    ValueError
        If the position or radius is out of range, or the filter is malformed.
    """
    where = cone_where(ra, dec, radius_arcsec)
    extra = filter.sql() if filter is not None else None
    if extra:
        where = f"({where}) AND ({extra})"
    found = run_filtered(store.table.search().where(where).select(list(OBJECT_METADATA_COLUMNS)).limit(None), extra)
    if found.num_rows == 0:
        return []
    sep = angular_separation_arcsec(ra, dec, found.column("ra").to_numpy(), found.column("dec").to_numpy())
    keep = np.flatnonzero(sep <= radius_arcsec)
    keep = keep[np.argsort(sep[keep], kind="stable")]
    rows = as_rows(found.take(pa.array(keep)))
    for row, s in zip(rows, sep[keep]):
        row["separation_arcsec"] = float(s)
    return rows


def objects_in_cone(
    store: StoreView, ra: float, dec: float, radius_arcsec: float, limit: int, filter: Filter | None = None
) -> tuple[list[dict[str, Any]], int]:
    """The ``limit`` objects nearest to (ra, dec) within ``radius_arcsec`` (see :func:`cone`), and how many
    lie there in all.

    Raises
    ------
    ValueError
        If ``limit`` is not an integer in ``[1, MAX_CONE_ROWS]``, or as for :func:`cone`.
    """
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or not 1 <= limit <= MAX_CONE_ROWS:
        raise ValueError(f"limit must be an integer between 1 and {MAX_CONE_ROWS}, got {limit!r}")
    found = cone(store, ra, dec, radius_arcsec, filter=filter)
    return found[: int(limit)], len(found)


def nearest_object(store: StoreView, ra: float, dec: float, radius_arcsec: float) -> dict[str, Any]:
    """The catalogue object nearest to (ra, dec) within ``radius_arcsec`` (with ``separation_arcsec``).

    Raises
    ------
    ObjectNotFound
        If no object lies within the radius.
    """
    found = cone(store, ra, dec, radius_arcsec)
    if not found:
        raise ObjectNotFound(None, f"no object within {radius_arcsec:g} arcsec of ra={ra!r}, dec={dec!r}")
    return found[0]


def check_query_vector(vec: np.ndarray) -> None:
    """Raise ``ValueError`` naming why ``vec`` (float32) has no direction to search along.

    Cosine search normalises the query in float32: a vector with a non-finite element, all zeros, or a
    norm that underflows below float32's smallest normal (subnormal elements) or overflows to infinity
    would normalise to NaNs and match nothing.
    """
    bad = np.flatnonzero(~np.isfinite(vec))
    if bad.size:
        raise ValueError(
            f"query vector must be finite and non-zero: element {bad[0]} is {vec[bad[0]]} ({bad.size} not finite)"
        )
    if not np.any(vec):
        raise ValueError("query vector must be finite and non-zero: all its elements are 0")
    with np.errstate(over="ignore", under="ignore"):
        norm = np.linalg.norm(vec)
    tiny = np.finfo(np.float32).tiny
    if not tiny <= norm < np.inf:
        raise ValueError(
            f"query vector has a float32 norm of {norm:.3g}: it must be at least {tiny:.3g} (float32's smallest "
            "normal; subnormal elements have no usable direction) and finite; scale the vector"
        )


def search_vector(
    store: StoreView,
    vector: Sequence[float] | np.ndarray,
    k: int,
    exclude: Iterable[int] = (),
    filter: Filter | None = None,
) -> list[dict]:
    """The ``k`` nearest objects to an embedding vector, by cosine distance (exact distances).

    Parameters
    ----------
    store : StoreView
        The store to search.
    vector : array-like of float, shape (D,)
        Query embedding (need not be normalised).
    k : int
        Number of neighbours, in ``[1, MAX_K]``.
    exclude : iterable of int
        Objids never returned (e.g. the query object).
    filter : Filter, optional
        Metadata prefilter.
    """
    k = check_k(k)
    vec = np.asarray(vector, dtype=np.float32)
    if vec.shape != (store.dim,):
        raise ValueError(f"query vector has shape {vec.shape}, expected ({store.dim},)")
    check_query_vector(vec)
    params, cache = store.search_params, store.cache
    nprobes = params.probes(len(cache) if cache is not None else store.count())
    memory = cache is not None and cache.vectors is not None and params.rerank == "memory" and params.refine_factor > 0
    # Candidates: refine_factor * k, re-ranked exactly from memory, or by Lance (random reads) without it.
    nearest: dict[str, Any] = {
        "column": ANN_COLUMN,
        "q": vec,
        "k": k * params.refine_factor if memory else k,
        "metric": DISTANCE,
        "minimum_nprobes": nprobes,
    }
    if params.refine_factor and not memory:
        nearest["refine_factor"] = params.refine_factor
    excluded = sorted({int(o) for o in exclude})
    user = filter.sql() if filter is not None else None
    if memory and cache.scans and not user:
        # Served, no metadata filter: the IVF partitions are scanned in the server's own copy of the
        # embeddings (the index's centroids, exact distances), without a Lance query.
        pos, found = cache.positions(np.asarray(excluded, dtype=np.int64))
        pos, dist = cache.scan(vec, k, nprobes, pos[found], k * params.refine_factor)
        return [{**row, "distance": float(d)} for row, d in zip(cache.rows_at(pos), dist)]
    clauses = []
    if excluded:
        clauses.append(f"objid NOT IN ({', '.join(map(str, excluded))})")
    if user:
        clauses.append(f"({user})")
    if not clauses:
        # Without a filter every probed partition yields candidates: probe exactly nprobes. With a
        # selective prefilter, fewer than k rows may lie in them: Lance keeps probing (no maximum).
        nearest["maximum_nprobes"] = nprobes
    where = " AND ".join(clauses) if clauses else None

    def query(columns: list[str], row_ids: bool = False) -> pa.Table:
        return run_filtered(
            lambda: store.lance().to_table(
                columns=columns, with_row_id=row_ids, nearest=nearest, filter=where, prefilter=True
            ),
            user,
        )

    if cache is None:
        return as_rows(query([*OBJECT_METADATA_COLUMNS, "_distance"]))
    # Served: only row addresses and distances come back (reading even the objid column of the
    # candidates cost more than the search); the cache maps them to objects, vectors and metadata.
    hits = query(["_distance"], row_ids=True)
    pos, found = cache.positions_of_rowids(hits.column("_rowid").to_numpy())
    if found.all():
        dist = hits.column("_distance").to_numpy(zero_copy_only=False).astype(np.float64)
        if memory and len(pos):
            dist = 1.0 - cache.vectors_at(pos) @ (vec / np.linalg.norm(vec)).astype(np.float64)
        order = np.lexsort((cache.objids[pos], dist))[:k]
        rows = cache.rows_at(pos[order])
        return [{**row, "distance": float(d)} for row, d in zip(rows, dist[order])]
    # Rows the cache does not know (the table moved on mid-refresh): by objid, as an unserved store does.
    hits = query(["objid", "_distance"])
    if memory:
        hits = _rerank(store, hits, vec, k)
    return _with_metadata(store, cache, hits)


def _rerank(store: StoreView, hits: pa.Table, vec: np.ndarray, k: int) -> pa.Table:
    """The ``k`` candidates nearest to ``vec`` by exact cosine distance, from the in-memory vectors."""
    objids = hits.column("objid").to_numpy()
    vectors = store.cached_vectors(objids)
    if vectors is None:  # rows newer than the cache: keep Lance's own distances for this query
        return hits.slice(0, k)
    dist = 1.0 - vectors @ (vec / np.linalg.norm(vec))
    order = np.lexsort((objids, dist))[:k]
    return pa.table({"objid": objids[order], "_distance": dist[order].astype(np.float32)})


def _with_metadata(store: StoreView, cache: MetadataCache, hits: pa.Table) -> list[dict[str, Any]]:
    """Join ``objid, _distance`` hits to their metadata (cache first, then the table)."""
    objids = hits.column("objid").to_numpy()
    rows, found = cache.lookup(objids)
    if not found.all():
        missing = ", ".join(str(int(o)) for o in objids[~found])
        fresh = store.table.search().where(f"objid IN ({missing})").select(list(OBJECT_METADATA_COLUMNS))
        by_id = {r["objid"]: r for r in fresh.limit(None).to_arrow().to_pylist()}
        rows = [r if r is not None else by_id.get(int(o)) for r, o in zip(rows, objids)]
    out = []
    for row, dist in zip(rows, hits.column("_distance").to_pylist()):
        if row is not None:
            out.append({**row, "distance": float(dist)})
    return out
