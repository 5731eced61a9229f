"""The ``objects`` table: opening it, idempotent writes keyed by objid, and lookups.

Lookups by objid go through a BTree scalar index (or the served metadata cache), never a table scan.
:class:`ObjectStore` is the one handle callers hold: its search methods run :mod:`ssald_index.search`
(kNN, cone search) and :meth:`ObjectStore.finalize` runs :mod:`ssald_index.maintenance`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ssald_index import maintenance, search
from ssald_index.ann import SearchParams
from ssald_index.cache import MetadataCache
from ssald_index.errors import ObjectNotFound, TableNotReady
from ssald_index.filters import Filter
from ssald_index.registry import (
    append_quarantine,
    connect,
    create_table,
    has_table,
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
from ssald_index.search import DISTANCE, MAX_K

__all__ = [
    "MAX_K",
    "DISTANCE",
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

PathLike = str | os.PathLike[str]


class ObjectStore:
    """The handle on the ``objects`` table: lookups and the idempotent writer.

    Search (:meth:`neighbours`, :meth:`search_vector`, :meth:`cone`, :meth:`nearest_object`) runs
    :mod:`ssald_index.search`, :meth:`finalize` runs :mod:`ssald_index.maintenance`.

    Parameters
    ----------
    table : lancedb.table.Table
        An open ``objects`` table; use :meth:`open` rather than this constructor.
    search_params : SearchParams, optional
        ANN query parameters (default :class:`ssald_index.ann.SearchParams`).
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

    @property
    def cache(self) -> MetadataCache | None:
        """The served metadata cache (:meth:`enable_cache`), or None."""
        return self._cache

    def lance(self) -> Any:
        """The Lance dataset at the version being read; kNN queries go to it directly (pylance).

        A served store (with a cache) reads the cache's version until :meth:`refresh` drops the dataset, so
        results and cached rows agree; others follow the table's writes.
        """
        if self._dataset is None or (self._cache is None and self._dataset.version != self._table.version):
            dataset = self._table.to_lance()
            if self._cache is not None and dataset.version != self._cache.version:
                dataset = dataset.checkout_version(self._cache.version)
            self._dataset = dataset
        return self._dataset

    def in_memory(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``(objids, normalised embeddings, density_score)`` of every object from the served cache, or None.

        In the cache's row order (grouped by IVF partition); None when the embeddings are not kept in
        memory. The active-learning session shares them rather than reading a second copy.
        """
        if self._cache is None or self._cache.vectors is None:
            return None
        cache = self._cache
        return (
            cache.in_vector_order(cache.objids),
            cache.vectors,
            cache.in_vector_order(cache.column("density_score")).astype(np.float32),
        )

    def cached_vectors(self, objids: np.ndarray) -> np.ndarray | None:
        """Normalised embeddings of ``objids`` from the in-memory cache, or None if any is not there."""
        if self._cache is None or self._cache.vectors is None:
            return None
        pos, found = self._cache.positions(objids)
        return self._cache.vectors_at(pos) if found.all() else None

    @property
    def version(self) -> int:
        """The table version being read."""
        return int(self._table.version)

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
        if not has_table(db, OBJECTS):
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
        if has_table(db, OBJECTS):
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
            return cls(create_table(db, OBJECTS, rows, schema=schema))
        if rows.num_rows and new:
            table.add(rows)
        elif rows.num_rows:
            table.merge_insert("objid").when_matched_update_all().when_not_matched_insert_all().execute(rows)
        return cls(table)

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

        return self.row(objid, columns)

    def row(self, objid: int, columns: list[str]) -> dict[str, Any]:
        """``columns`` of one object, read from the table through the objid index.

        Raises
        ------
        ObjectNotFound
            If ``objid`` is not in the table.
        """
        objid = int(objid)
        found = self._table.search().where(f"objid = {objid}").select(columns).limit(1).to_arrow()
        if found.num_rows == 0:
            raise ObjectNotFound(objid)
        return search.as_rows(found)[0]

    def finalize(self, keep_versions_for: timedelta = timedelta(hours=1), progress: bool = False) -> dict[str, float]:
        """Bring indexes and anomaly scores up to date after writes; see :func:`ssald_index.maintenance.finalize`."""
        return maintenance.finalize(self, keep_versions_for=keep_versions_for, progress=progress)

    def neighbours(
        self, objid: int, k: int, filter: Filter | None = None, exclude_radius_arcsec: float = 0.0
    ) -> list[dict[str, Any]]:
        """The ``k`` nearest neighbours of an object; see :func:`ssald_index.search.neighbours`."""
        return search.neighbours(self, objid, k, filter=filter, exclude_radius_arcsec=exclude_radius_arcsec)

    def search_vector(
        self, vector: Sequence[float] | np.ndarray, k: int, exclude: Iterable[int] = (), filter: Filter | None = None
    ) -> list[dict]:
        """The ``k`` nearest objects to an embedding vector; see :func:`ssald_index.search.search_vector`."""
        return search.search_vector(self, vector, k, exclude=exclude, filter=filter)

    def cone(self, ra: float, dec: float, radius_arcsec: float, filter: Filter | None = None) -> list[dict[str, Any]]:
        """Objects within ``radius_arcsec`` of (ra, dec), nearest first; see :func:`ssald_index.search.cone`."""
        return search.cone(self, ra, dec, radius_arcsec, filter=filter)

    def nearest_object(self, ra: float, dec: float, radius_arcsec: float) -> dict[str, Any]:
        """The object nearest to (ra, dec) within the radius; see :func:`ssald_index.search.nearest_object`."""
        return search.nearest_object(self, ra, dec, radius_arcsec)
