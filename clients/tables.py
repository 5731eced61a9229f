"""Write query results (neighbours, anomalies, objects) to Parquet, CSV, FITS or VOTable for TOPCAT.

>>> write_objects(client.find_similar(objid, k=100), "neighbours.vot")   # doctest: +SKIP
>>> table_bytes(client.anomalies(n=50), "votable")                       # doctest: +SKIP

The format follows the file suffix (.parquet, .csv, .fits, .vot/.xml), or is named (:data:`FORMATS`).
Nulls become masked values (64-bit identifiers stay exact integers); embeddings (when present) are one
vector column, or ``embedding_0 …`` columns in CSV. astropy only.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from clients.client import GalaxyObject

__all__ = ["FORMATS", "SUFFIXES", "objects_table", "table_bytes", "write_objects"]

SUFFIXES = {".parquet": "parquet", ".csv": "ascii.csv", ".fits": "fits", ".vot": "votable", ".xml": "votable"}

#: The formats of :func:`table_bytes` by name: (file suffix, media type).
FORMATS = {
    "csv": (".csv", "text/csv"),
    "votable": (".vot", "application/x-votable+xml"),
    "fits": (".fits", "application/fits"),
    "parquet": (".parquet", "application/vnd.apache.parquet"),
}

# The dtype of each annotation a result field may have, for the columns of an empty table.
_EMPTY = {"int": np.int64, "float": np.float64, "str": str, "bool": bool}


def _column(values: list) -> np.ndarray:
    if any(isinstance(v, str) for v in values):
        return np.array(["" if v is None else v for v in values], dtype=str)
    if any(v is None for v in values):
        present = [v for v in values if v is not None]
        # An int64 identifier (specobjid) must not pass through float64, which keeps only 53 bits.
        if present and all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in present):
            filled = np.array([0 if v is None else v for v in values], dtype=np.int64)
            return np.ma.array(filled, mask=[v is None for v in values])
        return np.ma.masked_invalid(np.array([np.nan if v is None else v for v in values], dtype=np.float64))
    return np.asarray(values)


def _empty_column(annotation: Any) -> np.ndarray:
    kind = str(annotation).replace(" | None", "").replace("None | ", "")
    return np.array([], dtype=_EMPTY.get(kind, np.float64))


def objects_table(objects: Sequence[GalaxyObject], row_type: type[GalaxyObject] | None = None) -> Any:
    """The objects as an ``astropy.table.Table``: one column per field of their dataclass but ``embedding``,
    plus the embeddings when every object carries one.

    Parameters
    ----------
    objects : sequence of GalaxyObject
        Rows of one class (e.g. :class:`~clients.client.Neighbour`, whose ``distance`` becomes a column).
    row_type : type, optional
        Their class, which gives the columns of an empty table (default :class:`GalaxyObject`).
    """
    from astropy.table import Table

    if not objects:
        fields = [f for f in dataclasses.fields(row_type or GalaxyObject) if f.name != "embedding"]
        return Table({f.name: _empty_column(f.type) for f in fields})
    names = [f.name for f in dataclasses.fields(objects[0]) if f.name != "embedding"]
    columns = {name: _column([getattr(o, name) for o in objects]) for name in names}
    if all(o.embedding is not None for o in objects):
        columns["embedding"] = np.array([o.embedding for o in objects], dtype=np.float32)
    return Table(columns)


def _split_embedding(table: Any) -> Any:
    # CSV cells hold scalars: the embedding becomes embedding_0, embedding_1 ...
    if "embedding" in table.colnames:
        emb = np.asarray(table["embedding"])
        table.remove_column("embedding")
        for j in range(emb.shape[1]):
            table[f"embedding_{j}"] = emb[:, j]
    return table


def write_objects(objects: Sequence[GalaxyObject], path: str | os.PathLike[str], overwrite: bool = True) -> Path:
    """Write objects (e.g. :class:`~clients.client.Neighbour` with ``distance``) as a table; returns the path.

    Raises
    ------
    ValueError
        If the suffix names no known format or ``objects`` is empty.
    """
    path = Path(path)
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"cannot tell the format of {os.fspath(path)!r}; use a suffix among {', '.join(SUFFIXES)}")
    if not objects:
        raise ValueError(f"nothing to write to {os.fspath(path)!r}: no objects")
    table = objects_table(objects)
    if fmt == "ascii.csv":
        table = _split_embedding(table)
    table.write(path, format=fmt, overwrite=overwrite)
    return path


def table_bytes(table: Any, fmt: str) -> bytes:
    """The bytes of a table (an ``astropy.table.Table``, e.g. from :func:`objects_table`) in a format of
    :data:`FORMATS`, as :func:`write_objects` would write them to a file.

    Raises
    ------
    ValueError
        If ``fmt`` is not among :data:`FORMATS`.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown table format {fmt!r}; choose among {', '.join(FORMATS)}")
    suffix = FORMATS[fmt][0]
    # astropy writes Parquet only to a path: every format goes through one temporary file alike.
    with tempfile.TemporaryDirectory(prefix="ssald-table-") as tmp:
        path = Path(tmp) / f"table{suffix}"
        (_split_embedding(table.copy()) if fmt == "csv" else table).write(path, format=SUFFIXES[suffix])
        return path.read_bytes()
