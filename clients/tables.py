"""Write query results (neighbours, anomalies, objects) to Parquet, CSV, FITS or VOTable for TOPCAT.

>>> write_objects(client.find_similar(objid, k=100), "neighbours.vot")   # doctest: +SKIP

The format follows the file suffix (.parquet, .csv, .fits, .vot/.xml). Nulls become masked values;
embeddings (when present) are one vector column, or ``embedding_0 …`` columns in CSV. astropy only.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from clients.client import GalaxyObject

__all__ = ["SUFFIXES", "write_objects"]

SUFFIXES = {".parquet": "parquet", ".csv": "ascii.csv", ".fits": "fits", ".vot": "votable", ".xml": "votable"}


def _column(values: list) -> np.ndarray:
    if any(isinstance(v, str) for v in values):
        return np.array(["" if v is None else v for v in values], dtype=str)
    if any(v is None for v in values):
        return np.ma.masked_invalid(np.array([np.nan if v is None else v for v in values], dtype=np.float64))
    return np.asarray(values)


def write_objects(objects: Sequence[GalaxyObject], path: str | os.PathLike[str], overwrite: bool = True) -> Path:
    """Write objects (e.g. :class:`~clients.client.Neighbour` with ``distance``) as a table; returns the path.

    Raises
    ------
    ValueError
        If the suffix names no known format or ``objects`` is empty.
    """
    from astropy.table import Table

    path = Path(path)
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"cannot tell the format of {os.fspath(path)!r}; use a suffix among {', '.join(SUFFIXES)}")
    if not objects:
        raise ValueError(f"nothing to write to {os.fspath(path)!r}: no objects")
    names = [f.name for f in dataclasses.fields(objects[0]) if f.name != "embedding"]
    columns = {name: _column([getattr(o, name) for o in objects]) for name in names}
    if all(o.embedding is not None for o in objects):
        emb = np.array([o.embedding for o in objects], dtype=np.float32)
        if fmt == "ascii.csv":
            columns.update({f"embedding_{j}": emb[:, j] for j in range(emb.shape[1])})
        else:
            columns["embedding"] = emb
    Table(columns).write(path, format=fmt, overwrite=overwrite)
    return path
