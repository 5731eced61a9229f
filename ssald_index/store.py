"""The ``objects`` table: idempotent writes keyed by objid, lookups and kNN.

Lookups by objid go through a BTree scalar index, never a table scan. kNN uses
cosine distance on L2-normalised embeddings; the query object itself is removed
with a prefilter, so ``k`` neighbours come back whenever the table holds them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import lancedb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from lancedb.index import BTree

from ssald_index.schema import (
    MODELS,
    MODELS_SCHEMA,
    OBJECT_METADATA_COLUMNS,
    OBJECTS,
    QUARANTINE,
    QUARANTINE_SCHEMA,
    embedding_dim,
    objects_schema,
)

__all__ = [
    "MAX_K",
    "DISTANCE",
    "ObjectNotFound",
    "TableNotReady",
    "ObjectStore",
    "connect",
    "append_quarantine",
    "read_quarantine",
    "register_model",
    "read_models",
]

MAX_K = 1000
DISTANCE = "cosine"

PathLike = str | os.PathLike[str]


class ObjectNotFound(KeyError):
    """No object with this objid in the table."""

    def __init__(self, objid: int) -> None:
        super().__init__(objid)
        self.objid = objid

    def __str__(self) -> str:
        return f"objid {self.objid} is not in the objects table"


class TableNotReady(RuntimeError):
    """The database has no ``objects`` table yet (nothing ingested)."""


def connect(db_path: PathLike, read_consistency_interval: timedelta | None = None) -> lancedb.DBConnection:
    """Open (or create) the LanceDB database directory at ``db_path``."""
    return lancedb.connect(os.fspath(db_path), read_consistency_interval=read_consistency_interval)


def _has_table(db: lancedb.DBConnection, name: str) -> bool:
    return name in db.list_tables().tables


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

    def __init__(self, table: Any) -> None:
        self._table = table
        self.dim = embedding_dim(table.schema)

    @classmethod
    def open(cls, db_path: PathLike, read_consistency_interval: timedelta | None = None) -> ObjectStore:
        """Open the ``objects`` table of the database at ``db_path``.

        Parameters
        ----------
        db_path : path
            LanceDB database directory.
        read_consistency_interval : timedelta, optional
            How stale a read may be relative to other processes' writes; ``None`` reads
            the version current at open time (fastest), ``timedelta(0)`` checks every read.

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
        return cls(db.open_table(OBJECTS))

    @classmethod
    def write(cls, db_path: PathLike, rows: pa.Table) -> ObjectStore:
        """Create the table if needed, then merge-insert ``rows`` keyed by objid.

        Re-writing an objid replaces its row, so re-running a job neither
        duplicates nor loses rows. The objid BTree index is created on first write
        and brought up to date afterwards.

        Parameters
        ----------
        db_path : path
            LanceDB database directory (created if missing).
        rows : pyarrow.Table
            Rows conforming to :func:`ssald_index.schema.objects_schema`; objids must be unique.
        """
        dim = embedding_dim(rows.schema)
        schema = objects_schema(dim)
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
        else:
            table = db.create_table(OBJECTS, schema=schema)
        if rows.num_rows:
            table.merge_insert("objid").when_matched_update_all().when_not_matched_insert_all().execute(rows)
        return cls(table)

    def finalize(self, keep_versions_for: timedelta = timedelta(hours=1)) -> None:
        """Build or refresh the objid scalar index and compact the table after writes.

        Parameters
        ----------
        keep_versions_for : timedelta
            Table versions older than this are deleted; readers (a running server)
            may still hold a recent one, so they are not removed at once.
        """
        if not any(idx.columns == ["objid"] for idx in self._table.list_indices()):
            # lancedb 0.40 takes the column as the first positional argument of create_index.
            self._table.create_index("objid", config=BTree())
        self._table.optimize(cleanup_older_than=keep_versions_for)

    @property
    def table(self) -> Any:
        """The underlying LanceDB table."""
        return self._table

    def count(self) -> int:
        """Number of objects."""
        return self._table.count_rows()

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
        return self._table.search().select([name]).limit(None).to_arrow().column(name)

    def get(self, objid: int, with_embedding: bool = False) -> dict[str, Any]:
        """One object's row, found through the objid index.

        Raises
        ------
        ObjectNotFound
            If ``objid`` is not in the table.
        """
        objid = int(objid)
        columns = [*OBJECT_METADATA_COLUMNS, "embedding"] if with_embedding else list(OBJECT_METADATA_COLUMNS)
        found = self._table.search().where(f"objid = {objid}").select(columns).limit(1).to_arrow()
        if found.num_rows == 0:
            raise ObjectNotFound(objid)
        return _rows(found)[0]

    def neighbours(self, objid: int, k: int) -> list[dict[str, Any]]:
        """The ``k`` nearest neighbours of an object, the object itself excluded.

        Raises
        ------
        ObjectNotFound
            If ``objid`` is not in the table.
        ValueError
            If ``k`` is not in ``[1, MAX_K]``.
        """
        k = _check_k(k)
        query = self.get(objid, with_embedding=True)
        return self.search_vector(query["embedding"], k, exclude=(int(objid),))

    def search_vector(self, vector: Sequence[float] | np.ndarray, k: int, exclude: Iterable[int] = ()) -> list[dict]:
        """The ``k`` nearest objects to an embedding vector, by cosine distance.

        Parameters
        ----------
        vector : array-like of float, shape (D,)
            Query embedding.
        k : int
            Number of neighbours, in ``[1, MAX_K]``.
        exclude : iterable of int
            Objids never returned (e.g. the query object).
        """
        k = _check_k(k)
        vec = np.asarray(vector, dtype=np.float32)
        if vec.shape != (self.dim,):
            raise ValueError(f"query vector has shape {vec.shape}, expected ({self.dim},)")
        if not np.all(np.isfinite(vec)) or not np.any(vec):
            raise ValueError("query vector must be finite and non-zero")
        query = self._table.search(vec).distance_type(DISTANCE).select([*OBJECT_METADATA_COLUMNS, "_distance"]).limit(k)
        excluded = sorted({int(o) for o in exclude})
        if excluded:
            query = query.where(f"objid NOT IN ({', '.join(map(str, excluded))})", prefilter=True)
        return _rows(query.to_arrow())


def _append(db_path: PathLike, name: str, schema: pa.Schema, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    db = connect(db_path)
    data = pa.Table.from_pylist(rows, schema=schema)
    if _has_table(db, name):
        db.open_table(name).add(data)
    else:
        db.create_table(name, data=data, schema=schema)


def append_quarantine(db_path: PathLike, rows: list[dict[str, Any]]) -> None:
    """Append rows ``{source, objid, reason}`` to the ``quarantine`` table (time stamped now)."""
    now = datetime.now(UTC)
    _append(db_path, QUARANTINE, QUARANTINE_SCHEMA, [{"at": now, **row} for row in rows])


def read_quarantine(db_path: PathLike) -> pa.Table:
    """The whole ``quarantine`` table (empty when nothing was quarantined)."""
    db = connect(db_path)
    if not _has_table(db, QUARANTINE):
        return QUARANTINE_SCHEMA.empty_table()
    return db.open_table(QUARANTINE).to_arrow()


def read_models(db_path: PathLike) -> pa.Table:
    """The ``models`` table (empty when no model was registered)."""
    db = connect(db_path)
    if not _has_table(db, MODELS):
        return MODELS_SCHEMA.empty_table()
    return db.open_table(MODELS).to_arrow()


def register_model(db_path: PathLike, row: dict[str, Any]) -> None:
    """Record a model in the ``models`` table, once per model_id."""
    if row["model_id"] in read_models(db_path).column("model_id").to_pylist():
        return
    _append(db_path, MODELS, MODELS_SCHEMA, [{"registered_at": datetime.now(UTC), **row}])
