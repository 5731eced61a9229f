"""Opening a database, and the small append-only tables beside ``objects``: quarantine and models.

:mod:`ssald_index.store` re-exports the public names, so callers of the store need one import.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import lancedb
import pyarrow as pa

from ssald_index.schema import MODELS, MODELS_SCHEMA, QUARANTINE, QUARANTINE_SCHEMA

__all__ = [
    "connect",
    "has_table",
    "append_rows",
    "append_quarantine",
    "read_quarantine",
    "register_model",
    "read_models",
]

PathLike = str | os.PathLike[str]


def connect(db_path: PathLike, read_consistency_interval: timedelta | None = None) -> lancedb.DBConnection:
    """Open (or create) the LanceDB database directory at ``db_path``."""
    return lancedb.connect(os.fspath(db_path), read_consistency_interval=read_consistency_interval)


def has_table(db: lancedb.DBConnection, name: str) -> bool:
    """Whether the database holds a table called ``name``."""
    return name in db.list_tables().tables


def append_rows(db_path: PathLike, name: str, schema: pa.Schema, rows: list[dict[str, Any]]) -> None:
    """Append ``rows`` to table ``name`` (created with ``schema`` on first use); nothing to append is a no-op."""
    if not rows:
        return
    db = connect(db_path)
    data = pa.Table.from_pylist(rows, schema=schema)
    if has_table(db, name):
        db.open_table(name).add(data)
    else:
        db.create_table(name, data=data, schema=schema)


def append_quarantine(db_path: PathLike, rows: list[dict[str, Any]]) -> None:
    """Append rows ``{source, objid, reason}`` to the ``quarantine`` table (time stamped now)."""
    now = datetime.now(UTC)
    append_rows(db_path, QUARANTINE, QUARANTINE_SCHEMA, [{"at": now, **row} for row in rows])


def read_quarantine(db_path: PathLike) -> pa.Table:
    """The whole ``quarantine`` table (empty when nothing was quarantined)."""
    db = connect(db_path)
    if not has_table(db, QUARANTINE):
        return QUARANTINE_SCHEMA.empty_table()
    return db.open_table(QUARANTINE).to_arrow()


def read_models(db_path: PathLike) -> pa.Table:
    """The ``models`` table (empty when no model was registered)."""
    db = connect(db_path)
    if not has_table(db, MODELS):
        return MODELS_SCHEMA.empty_table()
    return db.open_table(MODELS).to_arrow()


def register_model(db_path: PathLike, row: dict[str, Any]) -> None:
    """Record a model in the ``models`` table, once per model_id."""
    if row["model_id"] in read_models(db_path).column("model_id").to_pylist():
        return
    append_rows(db_path, MODELS, MODELS_SCHEMA, [{"registered_at": datetime.now(UTC), **row}])
