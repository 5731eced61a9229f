"""Opening a database, and the small append-only tables beside ``objects``: quarantine and models.

:mod:`ssald_index.store` re-exports the public names, so callers of the store need one import.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import lancedb
import pyarrow as pa

from ssald_index.schema import MODELS, MODELS_SCHEMA, QUARANTINE, QUARANTINE_SCHEMA

__all__ = [
    "connect",
    "has_table",
    "create_table",
    "set_aside_incomplete",
    "append_rows",
    "append_quarantine",
    "read_quarantine",
    "register_model",
    "read_models",
]

PathLike = str | os.PathLike[str]

log = logging.getLogger(__name__)

#: How long a table folder without a manifest must stay untouched before it counts as abandoned
#: rather than as another process's first commit still being written.
SETTLE_SECONDS = 5.0


def connect(db_path: PathLike, read_consistency_interval: timedelta | None = None) -> lancedb.DBConnection:
    """Open (or create) the LanceDB database directory at ``db_path``."""
    return lancedb.connect(os.fspath(db_path), read_consistency_interval=read_consistency_interval)


def _table_dir(db: lancedb.DBConnection, name: str) -> Path | None:
    """The folder of table ``name`` when the database is a local directory, else ``None``."""
    folder = Path(db.uri) / f"{name}.lance"
    return folder if folder.is_dir() else None


def _committed(folder: Path) -> bool:
    """Whether a table folder holds a committed version (a manifest in ``_versions/``)."""
    versions = folder / "_versions"
    return versions.is_dir() and any(versions.glob("*.manifest"))


def has_table(db: lancedb.DBConnection, name: str) -> bool:
    """Whether the database holds a table called ``name`` with at least one committed version.

    A folder left by a crash during the table's first commit (data files, no manifest) is not a
    table: it is reported absent, and :func:`create_table` sets it aside before creating afresh.
    """
    if name not in db.list_tables().tables:
        return False
    folder = _table_dir(db, name)
    return folder is None or _committed(folder)


def _last_change(folder: Path) -> float:
    return max((p.stat().st_mtime for p in folder.rglob("*")), default=folder.stat().st_mtime)


def set_aside_incomplete(db: lancedb.DBConnection, name: str, settle: float | None = None) -> Path | None:
    """Move aside (or remove, when it holds no file) a folder of ``name`` that has no committed version.

    Waits until nothing in the folder changed for ``settle`` seconds, so that another process's
    first commit still in progress is not taken for a crashed one. Returns where the folder went
    (``None`` when there was nothing to set aside, or when it was removed).
    """
    settle = SETTLE_SECONDS if settle is None else settle
    folder = _table_dir(db, name)
    while folder is not None and not _committed(folder):
        idle = time.time() - _last_change(folder)
        if idle >= settle:
            break
        time.sleep(min(settle - idle, 0.5))
        folder = _table_dir(db, name)
    if folder is None or _committed(folder):
        return None
    if not any(p.is_file() for p in folder.rglob("*")):
        shutil.rmtree(folder)
        log.warning("table %r was half-created (no committed version, no data): removed %s", name, folder)
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    aside = folder.with_name(f"{folder.name}.incomplete-{stamp}")
    folder.rename(aside)
    log.warning(
        "table %r was half-created (data but no committed version, e.g. a crash during its first write): "
        "moved it aside to %s and creating it afresh",
        name,
        aside,
    )
    return aside


def create_table(db: lancedb.DBConnection, name: str, data: Any, **kwargs: Any) -> Any:
    """``db.create_table(name, data, **kwargs)``, after setting aside a half-created folder of ``name``.

    Every table of the product is created here (``objects``, ``labels``, ``quarantine``, ``models``,
    ``score_runs``, ``scores_<label>``), so a crash during any table's first commit is repaired, with a
    log line, by the next write of that table (:func:`set_aside_incomplete`).

    Parameters
    ----------
    db : lancedb.DBConnection
        From :func:`connect`.
    name : str
        The table.
    data : pyarrow.Table or iterable of pyarrow.RecordBatch
        Its first rows.
    **kwargs
        Passed to ``db.create_table`` (``schema``, ``mode``...).
    """
    set_aside_incomplete(db, name)
    return db.create_table(name, data=data, **kwargs)


def append_rows(db_path: PathLike, name: str, schema: pa.Schema, rows: list[dict[str, Any]]) -> None:
    """Append ``rows`` to table ``name`` (created with ``schema`` on first use); nothing to append is a no-op."""
    if not rows:
        return
    db = connect(db_path)
    data = pa.Table.from_pylist(rows, schema=schema)
    if has_table(db, name):
        db.open_table(name).add(data)
    else:
        create_table(db, name, data, schema=schema)


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
