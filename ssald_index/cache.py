"""In-memory copy of the ``objects`` metadata columns, for serving.

A kNN answer is ``k`` objids; reading ~20 metadata columns of ``k`` random rows from Lance costs more
than the ANN search itself (about 20 ms for 10 rows at 1M on 2 cores, against a few ms for the search).
The server therefore keeps the metadata (~150 bytes a row, ~150 MB at 1M) sorted by objid in memory and
joins ANN results to it with a binary search. With ``vectors=True`` it also keeps the L2-normalised
embeddings (4 D bytes a row: 512 MB at 1M x 128), so the exact re-rank of the ANN candidates and the
query object's own embedding come from memory instead of random reads of the table (about 2 ms a query
at 1M here). The cache belongs to one table version; :meth:`ObjectStore.refresh` rebuilds it when the
table moves on, and rows it does not hold yet are read from the table.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ssald_index.schema import OBJECT_METADATA_COLUMNS, embedding_matrix

__all__ = ["MetadataCache"]


def _find(
    sorted_values: np.ndarray, keys: np.ndarray, order: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Index of each key in ``sorted_values`` (mapped through ``order`` when given) and the mask of keys
    present; indices are valid where present."""
    if not len(sorted_values):
        return np.zeros(len(keys), np.int64), np.zeros(len(keys), bool)
    i = np.minimum(np.searchsorted(sorted_values, keys), len(sorted_values) - 1)
    return (i if order is None else order[i]), sorted_values[i] == keys


# A string column with at most this many distinct values is held dictionary-encoded (codes + a Python list):
# survey, bands, classes, model ids. Others (file paths) stay Arrow strings and are taken per row.
_MAX_DICTIONARY = 65_536


class _Validity:
    """The validity bitmap of an Arrow array, read in place (no byte-per-row mask)."""

    def __init__(self, array: pa.Array) -> None:
        self._bits = np.frombuffer(array.buffers()[0], dtype=np.uint8)
        self._offset = array.offset

    def at(self, pos: np.ndarray) -> list[bool]:
        i = pos + self._offset
        return ((self._bits[i >> 3] >> (i & 7).astype(np.uint8)) & 1).astype(bool).tolist()


def _values(array: pa.Array, dtype: Any) -> np.ndarray:
    """The fixed-width values buffer of ``array`` as numpy, in place; null slots hold whatever is there."""
    return np.frombuffer(array.buffers()[1], dtype=dtype)[array.offset : array.offset + len(array)]


class _Rows:
    """Turns cache positions into row dicts without Arrow's per-value ``to_pylist`` (about 1.5 us a value,
    0.35 ms for the 10 rows of a kNN answer, against ~0.05 ms from numpy here).

    Numbers and timestamps are numpy views of the Arrow buffers (no copy), nulls are read from the
    Arrow validity bitmap, and low-cardinality strings are held as dictionary codes (a byte or two a row);
    only high-cardinality strings are taken from Arrow.
    """

    def __init__(self, data: pa.Table) -> None:
        self.names = data.column_names
        self._columns: list[tuple[str, Any, _Validity | None, Any]] = []
        for column in data.columns:
            array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
            valid = None if array.null_count == 0 else _Validity(array)
            kind = array.type
            if pa.types.is_string(kind) or pa.types.is_large_string(kind):
                encoded = pc.dictionary_encode(array)
                if len(encoded.dictionary) <= _MAX_DICTIONARY:
                    # Nulls get the code one past the dictionary, whose entry is None.
                    codes = encoded.indices.fill_null(len(encoded.dictionary)).to_numpy(zero_copy_only=False)
                    codes = codes.astype(np.min_scalar_type(len(encoded.dictionary)))
                    self._columns.append(("dict", codes, None, [*encoded.dictionary.to_pylist(), None]))
                else:
                    self._columns.append(("arrow", array, None, None))
            elif pa.types.is_timestamp(kind) and kind.unit != "ns":  # numpy gives ints, not datetimes, for ns
                tz = UTC if kind.tz is not None else None
                self._columns.append(("time", _values(array, f"datetime64[{kind.unit}]"), valid, tz))
            elif pa.types.is_integer(kind) or pa.types.is_floating(kind):
                self._columns.append(("numpy", _values(array, kind.to_pandas_dtype()), valid, None))
            else:  # booleans (bit-packed), nested types
                self._columns.append(("arrow", array, None, None))

    def take(self, positions: np.ndarray) -> list[dict[str, Any]]:
        pos = np.asarray(positions, dtype=np.int64)
        columns = []
        for kind, values, valid, extra in self._columns:
            if kind == "arrow":
                column = values.take(pa.array(pos)).to_pylist()
            elif kind == "dict":
                column = [extra[c] for c in values[pos].tolist()]
            elif kind == "time":
                column = [t.replace(tzinfo=extra) if extra else t for t in values[pos].astype(object)]
            else:
                column = values[pos].tolist()
            if valid is not None:
                column = [v if ok else None for v, ok in zip(column, valid.at(pos))]
            columns.append(column)
        return [dict(zip(self.names, row)) for row in zip(*columns)]


class MetadataCache:
    """Metadata of every object of one table version, sorted by objid.

    Parameters
    ----------
    table : lancedb.table.Table
        The ``objects`` table; its current version is read in full (metadata columns only).
    vectors : bool
        Also keep the L2-normalised embeddings (see the module docstring).
    """

    def __init__(self, table: Any, vectors: bool = False) -> None:
        self.version = table.version
        data = table.search().select(list(OBJECT_METADATA_COLUMNS)).with_row_id(True).limit(None).to_arrow()
        order = np.argsort(data.column("objid").to_numpy(), kind="stable")
        # Lance row addresses of this version -> cache positions: kNN then needs no column read at all.
        rowids = data.column("_rowid").to_numpy()[order]
        self._rowid_order = np.argsort(rowids, kind="stable")
        self._rowids_sorted = rowids[self._rowid_order]
        data = data.drop_columns(["_rowid"])
        self.vectors: np.ndarray | None = None
        if vectors:
            self.vectors = self._read_vectors(table, len(rowids))

        data = data.take(pa.array(order)).combine_chunks()
        self._data = data
        self._rows = _Rows(data)
        self._objids = self._data.column("objid").to_numpy()
        scores = self._data.column("density_score").to_numpy(zero_copy_only=False).astype(np.float64)
        scored = np.flatnonzero(np.isfinite(scores))
        # Most anomalous first; ties by objid (the data are sorted by objid, and the sort is stable).
        self.anomaly_order = scored[np.argsort(-scores[scored], kind="stable")]
        self.sorted_scores = scores[self.anomaly_order]

    def __len__(self) -> int:
        return len(self._objids)

    def _read_vectors(self, table: Any, n: int) -> np.ndarray:
        """The L2-normalised embeddings in cache order, streamed batch by batch into one preallocated array
        (reading them whole and then reordering peaked at 18.7 GB for 6.5 GB of cache at 10M rows)."""
        dataset = table.to_lance()
        if dataset.version != self.version:
            dataset = dataset.checkout_version(self.version)
        x = np.empty((n, dataset.schema.field("embedding").type.list_size), np.float32)
        filled = 0
        for batch in dataset.to_batches(columns=["embedding"], with_row_id=True, batch_size=65_536):
            pos, found = self.positions_of_rowids(batch.column("_rowid").to_numpy())
            if not found.all():
                raise RuntimeError(f"table version {self.version} changed while its embeddings were being cached")
            rows = embedding_matrix(batch)
            norms = np.linalg.norm(rows, axis=1, keepdims=True)
            x[pos] = rows / np.where(norms > 0, norms, 1.0)
            filled += len(pos)
        if filled != n:
            raise RuntimeError(f"cached {filled} embeddings for {n} objects of table version {self.version}")
        return x

    @property
    def objids(self) -> np.ndarray:
        """Cached objids, sorted."""
        return self._objids

    def column(self, name: str) -> np.ndarray:
        """One cached metadata column, in objid order (nulls as NaN for numbers, None otherwise)."""
        return self._data.column(name).to_numpy(zero_copy_only=False)

    @property
    def nbytes(self) -> int:
        """Memory held by the cached columns (and vectors)."""
        return int(self._data.nbytes) + (0 if self.vectors is None else int(self.vectors.nbytes))

    def positions(self, objids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions of ``objids`` in the cache and the mask of those found (positions are valid where found)."""
        return _find(self._objids, np.asarray(objids, dtype=np.int64))

    def positions_of_rowids(self, rowids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cache positions of Lance ``_rowid`` values of this version, and the mask of those found."""
        return _find(self._rowids_sorted, np.asarray(rowids, dtype=np.uint64), self._rowid_order)

    def rows_at(self, positions: np.ndarray) -> list[dict[str, Any]]:
        """Cached rows at ``positions`` (indices into the objid-sorted data)."""
        return self._rows.take(positions)

    def lookup(self, objids: np.ndarray) -> tuple[list[dict[str, Any] | None], np.ndarray]:
        """Rows for ``objids`` (``None`` where not cached) and the mask of those found."""
        pos, found = self.positions(objids)
        taken = self._rows.take(pos[found]) if found.any() else []
        it = iter(taken)
        return [next(it) if f else None for f in found], found
