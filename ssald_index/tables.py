"""Write tables of objects to Parquet, CSV, FITS and VOTable (astropy), for TOPCAT and friends.

:func:`write_table` takes named columns (NumPy arrays or lists, an ``(N, D)`` array for embeddings) and
picks the format from the file suffix. FITS and VOTable keep an embedding as one vector column; CSV
has no vector type, so it becomes ``embedding_0 … embedding_{D-1}``. :func:`dump_embeddings` writes
``(objid, embedding)`` of a whole table, in chunks with a progress bar.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FORMATS", "format_for", "write_table", "dump_embeddings"]

#: File suffix -> astropy format name.
FORMATS = {".parquet": "parquet", ".csv": "ascii.ecsv", ".fits": "fits", ".vot": "votable", ".xml": "votable"}
_NAMES = {"parquet": "parquet", "csv": "ascii.ecsv", "fits": "fits", "votable": "votable"}


def format_for(path: str | os.PathLike[str], fmt: str | None = None) -> str:
    """The astropy format for ``path`` (or the explicit ``fmt``: parquet, csv, fits or votable)."""
    if fmt is not None:
        if fmt not in _NAMES:
            raise ValueError(f"unknown export format {fmt!r}; expected one of {', '.join(_NAMES)}")
        return _NAMES[fmt]
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(
            f"cannot tell the format of {os.fspath(path)!r} from its suffix; use one of {', '.join(FORMATS)}"
        )
    return FORMATS[suffix]


def _column(values: Any) -> Any:
    if isinstance(values, np.ndarray):
        return values
    values = list(values)
    if any(isinstance(v, str) for v in values):
        return np.array(["" if v is None else v for v in values], dtype=str)
    if any(v is None for v in values):
        return np.ma.masked_invalid(np.array([np.nan if v is None else v for v in values], dtype=np.float64))
    return np.asarray(values)


def write_table(
    columns: Mapping[str, Any], path: str | os.PathLike[str], fmt: str | None = None, overwrite: bool = True
) -> Path:
    """Write named columns to ``path``; returns the path.

    Parameters
    ----------
    columns : mapping of str to array-like
        Equal-length columns; ``None`` values become masked (FITS/VOTable nulls, empty CSV cells).
    path : path
        Output file; its suffix (.parquet, .csv, .fits, .vot/.xml) picks the format unless ``fmt`` is given.
    fmt : {"parquet", "csv", "fits", "votable"}, optional
    overwrite : bool
        Replace an existing file.
    """
    from astropy.table import Table

    astropy_fmt = format_for(path, fmt)
    cols = {name: _column(values) for name, values in columns.items()}
    lengths = {name: len(c) for name, c in cols.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"columns have different lengths: {lengths}")
    if astropy_fmt.startswith("ascii"):
        flat: dict[str, Any] = {}
        for name, c in cols.items():
            if getattr(c, "ndim", 1) == 2:
                flat.update({f"{name}_{j}": c[:, j] for j in range(c.shape[1])})
            else:
                flat[name] = c
        cols = flat
        astropy_fmt = "ascii.csv"
    table = Table(cols)
    path = Path(path)
    kwargs = {"overwrite": overwrite}
    table.write(path, format=astropy_fmt, **kwargs)
    return path


def dump_embeddings(store: Any, path: str | os.PathLike[str], fmt: str | None = None, progress: bool = True) -> int:
    """Write ``(objid, embedding)`` of every object to ``path``; returns the row count."""
    from tqdm import tqdm

    format_for(path, fmt)  # fail before reading the table
    n = store.count()
    ids, vecs = [], []
    bar = tqdm(total=n, desc="dump", unit="obj", disable=not progress)
    reader = store.table.search().select(["objid", "embedding"]).limit(None).to_batches(65536)
    for batch in reader:
        ids.append(batch.column("objid").to_numpy())
        emb = batch.column("embedding")
        vecs.append(emb.values.to_numpy(zero_copy_only=False).reshape(len(emb), -1))
        bar.update(len(emb))
    bar.close()
    objid = np.concatenate(ids) if ids else np.zeros(0, np.int64)
    embedding = np.concatenate(vecs) if vecs else np.zeros((0, store.dim), np.float32)
    write_table({"objid": objid, "embedding": embedding.astype(np.float32)}, path, fmt)
    return len(objid)
