"""The ``objects`` table: idempotent writes keyed by objid, lookups and kNN.

Lookups by objid go through a BTree scalar index, never a table scan. kNN uses
cosine distance on L2-normalised embeddings; the query object itself is removed
with a prefilter, so ``k`` neighbours come back whenever the table holds them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ssald_index.ann import ANN_COLUMN, SearchParams, refresh_indexes
from ssald_index.cache import MetadataCache
from ssald_index.filters import Filter, angular_separation_arcsec, cone_where
from ssald_index.registry import (  # noqa: F401 - re-exported: callers import them from here
    _has_table,
    append_quarantine,
    connect,
    read_models,
    read_quarantine,
    register_model,
)
from ssald_index.schema import (
    MORPHOLOGY_COLUMNS,
    OBJECT_METADATA_COLUMNS,
    OBJECTS,
    embedding_dim,
    embedding_matrix,
    objects_schema,
)

__all__ = [
    "MAX_K",
    "DISTANCE",
    "FINALIZE_MAX_SCORED",
    "Filter",
    "SearchParams",
    "ObjectNotFound",
    "TableNotReady",
    "ObjectStore",
    "embedding_matrix",
    "connect",
    "append_quarantine",
    "read_quarantine",
    "register_model",
    "read_models",
]

MAX_K = 1000
# finalize() scores at most this many new objects itself (about a minute on 2 cores).
FINALIZE_MAX_SCORED = 50_000
DISTANCE = "cosine"

PathLike = str | os.PathLike[str]
log = logging.getLogger(__name__)


class ObjectNotFound(KeyError):
    """No object with this objid in the table (or, with ``message``, none at the asked position)."""

    def __init__(self, objid: int | None, message: str | None = None) -> None:
        super().__init__(objid)
        self.objid = objid
        self.message = message or f"objid {objid} is not in the objects table"

    def __str__(self) -> str:
        return self.message


class TableNotReady(RuntimeError):
    """The database has no ``objects`` table yet (nothing ingested)."""


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= MAX_K:
        raise ValueError(f"k must be an integer between 1 and {MAX_K}, got {k!r}")
    return int(k)


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    rows = table.to_pylist()
    for row in rows:
        if "_distance" in row:
            row["distance"] = float(row.pop("_distance"))
    return rows


class ObjectStore:
    """Read access to the ``objects`` table, plus the idempotent writer.

    Parameters
    ----------
    table : lancedb.table.Table
        An open ``objects`` table; use :meth:`open` rather than this constructor.
    """

    def __init__(self, table: Any, search_params: SearchParams | None = None) -> None:
        self._table = table
        self.dim = embedding_dim(table.schema)
        self.search_params = search_params or SearchParams()
        self._cache: MetadataCache | None = None
        self._dataset: Any = None

    def enable_cache(self, vectors: bool = False) -> None:
        """Keep the metadata columns (and with ``vectors``, the embeddings) in memory, as the server does.

        See :mod:`ssald_index.cache`. With the vectors in memory, kNN re-ranks its candidates exactly
        from memory rather than with Lance's ``refine_factor`` (random reads of the table).
        """
        self._cache = MetadataCache(self._table, vectors=vectors, scan=self.search_params.scans_in_memory)

    def refresh(self) -> bool:
        """Follow the table to its latest version; rebuild the cache if it moved. Returns whether it did."""
        self._table.checkout_latest()
        self._dataset = None
        if self._cache is not None and self._cache.version != self._table.version:
            self._cache = MetadataCache(
                self._table, vectors=self._cache.vectors is not None, scan=self.search_params.scans_in_memory
            )
            return True
        return False

    def _lance(self) -> Any:
        """The Lance dataset at the version being read: kNN queries go to it directly (pylance), which costs
        about half of LanceDB's query-builder overhead per query. A served store (with a cache) reads the
        cache's version until :meth:`refresh` drops the dataset; others follow the table's writes (asking
        LanceDB for the table version costs about a millisecond, which only the served path saves)."""
        if self._dataset is None or (self._cache is None and self._dataset.version != self._table.version):
            dataset = self._table.to_lance()
            if self._cache is not None and dataset.version != self._cache.version:
                dataset = dataset.checkout_version(self._cache.version)
            self._dataset = dataset
        return self._dataset

    def in_memory(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``(objids, normalised embeddings, density_score)`` of every object from the served cache (in the
        cache's row order, grouped by IVF partition), or None when the embeddings are not kept in memory (the
        active-learning service shares them)."""
        if self._cache is None or self._cache.vectors is None:
            return None
        cache = self._cache
        return (
            cache.in_vector_order(cache.objids),
            cache.vectors,
            cache.in_vector_order(cache.column("density_score")).astype(np.float32),
        )

    def _cached_vectors(self, objids: np.ndarray) -> np.ndarray | None:
        """Normalised embeddings of ``objids`` from the in-memory cache, or None if any is not there."""
        if self._cache is None or self._cache.vectors is None:
            return None
        pos, found = self._cache.positions(objids)
        return self._cache.vectors_at(pos) if found.all() else None

    @property
    def version(self) -> int:
        """The table version being read."""
        return int(self._table.version)

    def _with_metadata(self, hits: pa.Table) -> list[dict[str, Any]]:
        """Join ``objid, _distance`` hits to their metadata (cache first, then the table)."""
        objids = hits.column("objid").to_numpy()
        rows, found = self._cache.lookup(objids)  # type: ignore[union-attr]
        if not found.all():
            missing = ", ".join(str(int(o)) for o in objids[~found])
            fresh = self._table.search().where(f"objid IN ({missing})").select(list(OBJECT_METADATA_COLUMNS))
            by_id = {r["objid"]: r for r in fresh.limit(None).to_arrow().to_pylist()}
            rows = [r if r is not None else by_id.get(int(o)) for r, o in zip(rows, objids)]
        out = []
        for row, dist in zip(rows, hits.column("_distance").to_pylist()):
            if row is not None:
                out.append({**row, "distance": float(dist)})
        return out

    @classmethod
    def open(
        cls,
        db_path: PathLike,
        read_consistency_interval: timedelta | None = None,
        search_params: SearchParams | None = None,
    ) -> ObjectStore:
        """Open the ``objects`` table of the database at ``db_path``.

        Parameters
        ----------
        db_path : path
            LanceDB database directory.
        read_consistency_interval : timedelta, optional
            How stale a read may be relative to other processes' writes; ``None`` reads
            the version current at open time (fastest), ``timedelta(0)`` checks every read.
        search_params : SearchParams, optional
            ANN query parameters (default :class:`ssald_index.ann.SearchParams`).

        Raises
        ------
        TableNotReady
            If the database holds no ``objects`` table yet.
        """
        if not Path(db_path).exists():
            raise TableNotReady(f"database {os.fspath(db_path)!r} does not exist: run `ssald ingest` first")
        db = connect(db_path, read_consistency_interval)
        if not _has_table(db, OBJECTS):
            raise TableNotReady(f"database {os.fspath(db_path)!r} has no {OBJECTS!r} table: run `ssald ingest`")
        return cls(db.open_table(OBJECTS), search_params)

    @classmethod
    def write(cls, db_path: PathLike, rows: pa.Table, *, new: bool = False) -> ObjectStore:
        """Create the table if needed, then merge-insert ``rows`` keyed by objid.

        Re-writing an objid replaces its row, so re-running a job neither
        duplicates nor loses rows. The objid BTree index is created on first write
        and brought up to date afterwards. Each call is one atomic commit.

        Parameters
        ----------
        db_path : path
            LanceDB database directory (created if missing).
        rows : pyarrow.Table
            Rows conforming to :func:`ssald_index.schema.objects_schema`; objids must be unique.
        new : bool
            The caller guarantees that no objid of ``rows`` is in the table (``ssald ingest`` knows it
            from the objids it read under its lock): the rows are appended without the merge's join
            against the table's objids. A wrong guarantee duplicates rows.
        """
        dim = embedding_dim(rows.schema)
        schema = objects_schema(dim)
        for name in MORPHOLOGY_COLUMNS:  # rows from jobs that measure no morphology: null
            if name not in rows.column_names:
                rows = rows.append_column(schema.field(name), pa.nulls(rows.num_rows, schema.field(name).type))
        rows = rows.select(schema.names).cast(schema)
        objids = rows.column("objid").to_numpy()
        if len(np.unique(objids)) != len(objids):
            raise ValueError("rows to write contain duplicate objids; deduplicate before writing")
        db = connect(db_path)
        if _has_table(db, OBJECTS):
            table = db.open_table(OBJECTS)
            have = embedding_dim(table.schema)
            if have != dim:
                raise ValueError(f"table {OBJECTS!r} holds {have}-d embeddings; refusing to write {dim}-d rows")
            missing = [schema.field(name) for name in MORPHOLOGY_COLUMNS if name not in table.schema.names]
            if missing:
                # A table written before the morphology columns existed gains them, null for its rows.
                table.add_columns(missing)
            rows = rows.select([name for name in table.schema.names if name in rows.column_names])
        else:
            # A new table holds no objid: create it with the rows, in one commit.
            return cls(db.create_table(OBJECTS, data=rows, schema=schema))
        if rows.num_rows and new:
            table.add(rows)
        elif rows.num_rows:
            table.merge_insert("objid").when_matched_update_all().when_not_matched_insert_all().execute(rows)
        return cls(table)

    def finalize(self, keep_versions_for: timedelta = timedelta(hours=1), progress: bool = False) -> None:
        """Bring indexes and anomaly scores up to date after writes (``ingest`` calls this at its end).

        Missing indexes are created and new rows folded into existing ones without a rebuild
        (:func:`ssald_index.ann.refresh_indexes`). Rows without a density score are then scored
        (:func:`ssald_index.density.update_density`, through the ANN index when there is one) if there
        are at most ``FINALIZE_MAX_SCORED`` of them; a larger first ingest leaves scoring to
        ``ssald index``. Old versions are removed.

        Parameters
        ----------
        keep_versions_for : timedelta
            Table versions older than this are deleted; readers (a running server)
            may still hold a recent one, so they are not removed at once.
        progress : bool
            Show progress bars.
        """
        from ssald_index.density import update_density

        refresh_indexes(self._table, keep_versions_for=keep_versions_for)
        missing = self._table.count_rows("density_score IS NULL")
        if 0 < missing <= FINALIZE_MAX_SCORED:
            update_density(self, only_missing=True, progress=progress)
            # The scored rows were rewritten: fold them back into the indexes.
            self._table.optimize(cleanup_older_than=keep_versions_for)
        elif missing:
            log.warning("%d objects without a density score: run `ssald index --db DB` to score them", missing)

    @property
    def table(self) -> Any:
        """The underlying LanceDB table."""
        return self._table

    def count(self) -> int:
        """Number of objects."""
        return self._table.count_rows()

    def count_scored(self) -> int:
        """Number of objects with a density score."""
        if self._cache is not None:
            return len(self._cache.sorted_scores)
        return self._table.count_rows("density_score IS NOT NULL")

    @property
    def model_id(self) -> str | None:
        """The model of the stored embeddings (``None`` for an empty table)."""
        ids = self.model_ids()
        return ids[0] if len(ids) == 1 else (None if not ids else ",".join(ids))

    def model_ids(self) -> list[str]:
        """Distinct model ids of the stored embeddings."""
        col = self._column("model_id")
        return sorted(v for v in pc.unique(col).to_pylist() if v is not None)

    def objids(self) -> np.ndarray:
        """All objids, as an int64 array."""
        return self._column("objid").to_numpy()

    def _column(self, name: str) -> pa.ChunkedArray:
        return self.read([name]).column(name)

    def read(self, columns: Sequence[str], where: str | None = None) -> pa.Table:
        """``columns`` of every row (of the rows matching the SQL ``where``), as one Arrow table."""
        query = self._table.search().select(list(columns)).limit(None)
        return (query.where(where) if where else query).to_arrow()

    def get(self, objid: int, with_embedding: bool = False) -> dict[str, Any]:
        """One object's row, found through the objid index.

        Raises
        ------
        ObjectNotFound
            If ``objid`` is not in the table.
        """
        if self._cache is not None and not with_embedding:
            rows, found = self._cache.lookup(np.array([int(objid)]))
            if found[0]:
                return rows[0]
        columns = [*OBJECT_METADATA_COLUMNS, "embedding"] if with_embedding else list(OBJECT_METADATA_COLUMNS)
        return self._get(objid, columns)

    def _get(self, objid: int, columns: list[str]) -> dict[str, Any]:
        objid = int(objid)
        found = self._table.search().where(f"objid = {objid}").select(columns).limit(1).to_arrow()
        if found.num_rows == 0:
            raise ObjectNotFound(objid)
        return _rows(found)[0]

    def neighbours(
        self,
        objid: int,
        k: int,
        filter: Filter | None = None,
        exclude_radius_arcsec: float = 0.0,
    ) -> list[dict[str, Any]]:
        """The ``k`` nearest neighbours of an object, the object itself excluded.

        Parameters
        ----------
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
        k = _check_k(k)
        cached = self._cached_vectors(np.array([int(objid)]))
        query = {"embedding": cached[0]} if cached is not None else self._get(objid, ["ra", "dec", "embedding"])
        exclude = {int(objid)}
        if exclude_radius_arcsec:
            sky = query if "ra" in query else self.get(objid)  # the cached row, only when it is needed
            exclude |= self._objids_within(sky["ra"], sky["dec"], exclude_radius_arcsec)
        return self.search_vector(query["embedding"], k, exclude=exclude, filter=filter)

    def _objids_within(self, ra: float, dec: float, radius_arcsec: float) -> set[int]:
        found = self.cone(ra, dec, radius_arcsec)
        return {int(row["objid"]) for row in found}

    def cone(self, ra: float, dec: float, radius_arcsec: float, filter: Filter | None = None) -> list[dict[str, Any]]:
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
        found = self._run(self._table.search().where(where).select(list(OBJECT_METADATA_COLUMNS)).limit(None), extra)
        if found.num_rows == 0:
            return []
        sep = angular_separation_arcsec(ra, dec, found.column("ra").to_numpy(), found.column("dec").to_numpy())
        keep = np.flatnonzero(sep <= radius_arcsec)
        keep = keep[np.argsort(sep[keep], kind="stable")]
        rows = _rows(found.take(pa.array(keep)))
        for row, s in zip(rows, sep[keep]):
            row["separation_arcsec"] = float(s)
        return rows

    def nearest_object(self, ra: float, dec: float, radius_arcsec: float) -> dict[str, Any]:
        """The catalogue object nearest to (ra, dec) within ``radius_arcsec`` (with ``separation_arcsec``).

        Raises
        ------
        ObjectNotFound
            If no object lies within the radius.
        """
        found = self.cone(ra, dec, radius_arcsec)
        if not found:
            raise ObjectNotFound(None, f"no object within {radius_arcsec:g} arcsec of ra={ra!r}, dec={dec!r}")
        return found[0]

    def search_vector(
        self,
        vector: Sequence[float] | np.ndarray,
        k: int,
        exclude: Iterable[int] = (),
        filter: Filter | None = None,
    ) -> list[dict]:
        """The ``k`` nearest objects to an embedding vector, by cosine distance (exact distances).

        Parameters
        ----------
        vector : array-like of float, shape (D,)
            Query embedding (need not be normalised).
        k : int
            Number of neighbours, in ``[1, MAX_K]``.
        exclude : iterable of int
            Objids never returned (e.g. the query object).
        filter : Filter, optional
            Metadata prefilter.
        """
        k = _check_k(k)
        vec = np.asarray(vector, dtype=np.float32)
        if vec.shape != (self.dim,):
            raise ValueError(f"query vector has shape {vec.shape}, expected ({self.dim},)")
        if not np.all(np.isfinite(vec)) or not np.any(vec):
            raise ValueError("query vector must be finite and non-zero")
        params = self.search_params
        nprobes = params.probes(len(self._cache) if self._cache is not None else self._table.count_rows())
        memory = (
            self._cache is not None
            and self._cache.vectors is not None
            and params.rerank == "memory"
            and params.refine_factor > 0
        )
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
        if memory and self._cache.scans and not user:
            # Served, no metadata filter: the IVF partitions are scanned in the server's own copy of the
            # embeddings (the index's centroids, exact distances), without a Lance query.
            pos, found = self._cache.positions(np.asarray(excluded, dtype=np.int64))
            pos, dist = self._cache.scan(vec, k, nprobes, pos[found], k * params.refine_factor)
            return [{**row, "distance": float(d)} for row, d in zip(self._cache.rows_at(pos), dist)]
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
            return self._run(
                lambda: self._lance().to_table(
                    columns=columns, with_row_id=row_ids, nearest=nearest, filter=where, prefilter=True
                ),
                user,
            )

        if self._cache is None:
            return _rows(query([*OBJECT_METADATA_COLUMNS, "_distance"]))
        # Served: only row addresses and distances come back (reading even the objid column of the
        # candidates cost more than the search); the cache maps them to objects, vectors and metadata.
        hits = query(["_distance"], row_ids=True)
        pos, found = self._cache.positions_of_rowids(hits.column("_rowid").to_numpy())
        if found.all():
            dist = hits.column("_distance").to_numpy(zero_copy_only=False).astype(np.float64)
            if memory and len(pos):
                dist = 1.0 - self._cache.vectors_at(pos) @ (vec / np.linalg.norm(vec)).astype(np.float64)
            order = np.lexsort((self._cache.objids[pos], dist))[:k]
            rows = self._cache.rows_at(pos[order])
            return [{**row, "distance": float(d)} for row, d in zip(rows, dist[order])]
        # Rows the cache does not know (the table moved on mid-refresh): by objid, as an unserved store does.
        hits = query(["objid", "_distance"])
        if memory:
            hits = self._rerank(hits, vec, k)
        return self._with_metadata(hits)

    def _rerank(self, hits: pa.Table, vec: np.ndarray, k: int) -> pa.Table:
        """The ``k`` candidates nearest to ``vec`` by exact cosine distance, from the in-memory vectors."""
        objids = hits.column("objid").to_numpy()
        vectors = self._cached_vectors(objids)
        if vectors is None:  # rows newer than the cache: keep Lance's own distances for this query
            return hits.slice(0, k)
        dist = 1.0 - vectors @ (vec / np.linalg.norm(vec))
        order = np.lexsort((objids, dist))[:k]
        return pa.table({"objid": objids[order], "_distance": dist[order].astype(np.float32)})

    @staticmethod
    def _run(query: Any, user_where: str | None) -> pa.Table:
        try:
            return query() if callable(query) else query.to_arrow()
        except ValueError as exc:
            if user_where:
                raise ValueError(f"bad filter {user_where!r}: {exc}") from None
            raise
