"""In-memory copy of the ``objects`` metadata columns (and optionally the embeddings), for serving.

A kNN answer is ``k`` objids; reading ~20 metadata columns of ``k`` random rows from Lance costs more
than the ANN search itself. The server therefore keeps the metadata (~150 bytes a row) sorted by objid
in memory and joins ANN results to it with a binary search. With ``vectors=True`` it also keeps the
L2-normalised embeddings (4 D bytes a row), so the exact re-rank of the ANN candidates and the query
object's own embedding come from memory instead of random reads of the table, and queries without a
metadata filter are answered from them alone: the rows are grouped by the IVF partitions of the table's
Lance index (its centroids, every row assigned to the nearest), and a query scans the partitions nearest
to it with exact distances (:meth:`MetadataCache.scan`), faster than Lance's own search of the same index
at the same recall. Loading pays for that assignment, which grows with rows x partitions (figures in
docs/BENCHMARKS.md). The cache belongs to one table version; :meth:`ObjectStore.refresh` rebuilds it when
the table moves on, and rows it does not hold yet are read from the table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ssald_index.ann import ivf_partitions
from ssald_index.partitions import INT8_MIN_ROWS, Int8Rows, Partitions
from ssald_index.schema import OBJECT_METADATA_COLUMNS, embedding_dim, embedding_matrix, unit_rows

__all__ = ["MetadataCache", "RowReader"]


def _find(
    sorted_values: np.ndarray, keys: np.ndarray, order: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Index of each key in ``sorted_values`` (through ``order`` when given) and the mask of keys present.

    Indices are valid where present.
    """
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


class RowReader:
    """Turns cache positions into row dicts without Arrow's per-value ``to_pylist``, which is slow per value.

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

    @property
    def kinds(self) -> dict[str, str]:
        """How each column is held: ``numpy``, ``time``, ``dict`` (dictionary codes) or ``arrow``."""
        return {name: kind for name, (kind, *_) in zip(self.names, self._columns)}

    def take(self, positions: np.ndarray) -> list[dict[str, Any]]:
        """The rows at ``positions``, as :meth:`pyarrow.Table.to_pylist` gives them (nulls as ``None``)."""
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
    scan : callable, optional
        ``scan(partition_sizes, dim)``: whether queries scan the cached embeddings by IVF partition
        (:meth:`ssald_index.ann.SearchParams.scans_in_memory`); default always.
    """

    def __init__(
        self, table: Any, vectors: bool = False, scan: Callable[[np.ndarray, int], bool] | None = None
    ) -> None:
        self.version = table.version
        data = table.search().select(list(OBJECT_METADATA_COLUMNS)).with_row_id(True).limit(None).to_arrow()
        order = np.argsort(data.column("objid").to_numpy(), kind="stable")
        # Lance row addresses of this version -> cache positions: kNN then needs no column read at all.
        rowids = data.column("_rowid").to_numpy()[order]
        self._rowid_order = np.argsort(rowids, kind="stable")
        self._rowids_sorted = rowids[self._rowid_order]
        data = data.drop_columns(["_rowid"])
        self.vectors: np.ndarray | None = None
        self._partitions: Partitions | None = None
        self._codes: Int8Rows | None = None
        self.scans = False
        if vectors:
            self._read_vectors(table, len(rowids), scan or (lambda sizes, dim: True))

        data = data.take(pa.array(order)).combine_chunks()
        self._data = data
        self._rows = RowReader(data)
        self._objids = self._data.column("objid").to_numpy()
        scores = self._data.column("density_score").to_numpy(zero_copy_only=False).astype(np.float64)
        scored = np.flatnonzero(np.isfinite(scores))
        # Most anomalous first; ties by objid (the data are sorted by objid, and the sort is stable).
        self.anomaly_order = scored[np.argsort(-scores[scored], kind="stable")]
        self.sorted_scores = scores[self.anomaly_order]

    def __len__(self) -> int:
        return len(self._objids)

    def _read_vectors(self, table: Any, n: int, scan: Callable[[np.ndarray, int], bool]) -> None:
        """Cache the L2-normalised embeddings, grouped by IVF partition when queries are to scan them here.

        ``scan`` decides that from the partition sizes and the dimension. The embeddings are streamed batch
        by batch into one preallocated array, since reading them whole and then reordering needs several
        times the cache's memory: a first pass assigns every row to its nearest centroid of the table's IVF
        index, a second writes each row at its place in its partition. Without an index the whole table is
        one partition (an exact scan).
        """
        dataset = table.to_lance()
        if dataset.version != self.version:
            dataset = dataset.checkout_version(self.version)
        dim = embedding_dim(dataset.schema)
        index = ivf_partitions(dataset)
        centroids, sizes = index if index is not None else (None, np.array([n]))
        self.scans = scan(sizes, dim)

        def batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            filled = 0
            for batch in dataset.to_batches(columns=["embedding"], with_row_id=True, batch_size=65_536):
                pos, found = self.positions_of_rowids(batch.column("_rowid").to_numpy())
                if not found.all():
                    raise RuntimeError(f"table version {self.version} changed while its embeddings were being cached")
                filled += len(pos)
                yield pos, unit_rows(embedding_matrix(batch))
            if filled != n:
                raise RuntimeError(f"cached {filled} embeddings for {n} objects of table version {self.version}")

        if centroids is None or not self.scans:
            partitions = Partitions(np.zeros((1, dim), np.float32))
            part = np.zeros(n, np.int32)
        else:
            partitions = Partitions(centroids)
            part = np.empty(n, np.int32)
            for pos, rows in batches():
                part[pos] = partitions.assign(rows)
        partitions.group(part)
        self._partitions = partitions
        x = np.empty((n, dim), np.float32)
        for pos, rows in batches():
            x[self._partitions.slot[pos]] = rows
        self.vectors = x
        # A scan over many rows ranks them from the int8 copy (a quarter of the bytes) and re-ranks the best
        # from the float32 vectors; only tables that large hold one.
        if n >= INT8_MIN_ROWS:
            self._codes = Int8Rows(x)

    def vectors_at(self, positions: np.ndarray) -> np.ndarray:
        """Normalised embeddings of the objects at cache ``positions``."""
        return self.vectors[self._partitions.slot[positions]]  # type: ignore[index, union-attr]

    def in_vector_order(self, values: np.ndarray) -> np.ndarray:
        """A per-object array (in objid order) reordered to match the rows of :attr:`vectors`."""
        return values[self._partitions.position]  # type: ignore[union-attr]

    def scan(
        self, query: np.ndarray, k: int, nprobes: int, exclude: np.ndarray, candidates: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` cached objects nearest to ``query`` by cosine distance, from the nearest IVF partitions.

        The partitions' rows are scored in float32, or, when they are at least
        :data:`~ssald_index.partitions.INT8_MIN_ROWS`, from the int8 copy (:class:`ssald_index.partitions.Int8Rows`)
        with 4x the candidates; the best ``candidates`` are re-ranked in float64, ties broken by objid.

        Parameters
        ----------
        query : ndarray, shape (D,)
            Query embedding (any norm).
        k : int
            Objects returned at most.
        nprobes : int
            Partitions visited; more while they hold fewer than ``k`` objects not in ``exclude``.
        exclude : ndarray of int
            Cache positions never returned.
        candidates : int
            Scored rows re-ranked in float64 (at least ``k``).

        Returns
        -------
        (positions, distances) : ndarrays of int64 and float64
            Cache positions and exact cosine distances, nearest first.
        """
        parts = self._partitions
        q = (query / np.linalg.norm(query)).astype(np.float32)
        skip = parts.slot[exclude] if len(exclude) else exclude
        while True:
            probe = parts.nearest(q, nprobes)
            rows = parts.rows(probe)
            if len(rows) - len(skip) >= k or nprobes >= parts.count:
                break
            nprobes = min(2 * nprobes, parts.count)
        if self._codes is not None and len(rows) >= INT8_MIN_ROWS:
            # int8 ranking is approximate: 4x the candidates go to the exact re-rank.
            score, candidates = parts.score_codes(self._codes, q, probe), 4 * candidates
        else:
            score = parts.score(self.vectors, q, probe)  # type: ignore[arg-type]
        if len(skip):
            score[np.isin(rows, skip)] = -np.inf
        keep = min(max(candidates, k), int(np.isfinite(score).sum()))
        if keep == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float64)
        best = np.argpartition(-score, keep - 1)[:keep] if keep < len(score) else np.arange(keep)
        pos = parts.position[rows[best]]
        dist = 1.0 - self.vectors[rows[best]] @ q.astype(np.float64)  # type: ignore[index]
        order = np.lexsort((self._objids[pos], dist))[:k]
        return pos[order], dist[order]

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
        vectors = 0 if self.vectors is None else int(self.vectors.nbytes)
        vectors += 0 if self._codes is None else self._codes.nbytes
        return int(self._data.nbytes) + vectors

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
