"""In-memory copy of the ``objects`` metadata columns, for serving.

A kNN answer is ``k`` objids; reading ~20 metadata columns of ``k`` random rows from Lance costs more
than the ANN search itself (about 20 ms for 10 rows at 1M on 2 cores, against a few ms for the search).
The server therefore keeps the metadata (not the embeddings: ~150 bytes a row, ~150 MB at 1M) sorted by
objid in memory and joins ANN results to it with a binary search. The cache belongs to one table
version; :meth:`ObjectStore.refresh` rebuilds it when the table moves on, and rows it does not hold yet
are read from the table.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from ssald_index.schema import OBJECT_METADATA_COLUMNS

__all__ = ["MetadataCache"]


class MetadataCache:
    """Metadata of every object of one table version, sorted by objid.

    Parameters
    ----------
    table : lancedb.table.Table
        The ``objects`` table; its current version is read in full (metadata columns only).
    """

    def __init__(self, table: Any) -> None:
        self.version = table.version
        data = table.search().select(list(OBJECT_METADATA_COLUMNS)).limit(None).to_arrow()
        order = np.argsort(data.column("objid").to_numpy(), kind="stable")
        self._data = data.take(pa.array(order)).combine_chunks()
        self._objids = self._data.column("objid").to_numpy()
        scores = self._data.column("density_score").to_numpy(zero_copy_only=False).astype(np.float64)
        scored = np.flatnonzero(np.isfinite(scores))
        # Most anomalous first; ties by objid (the data are sorted by objid, and the sort is stable).
        self.anomaly_order = scored[np.argsort(-scores[scored], kind="stable")]
        self.sorted_scores = scores[self.anomaly_order]

    def __len__(self) -> int:
        return len(self._objids)

    @property
    def nbytes(self) -> int:
        """Memory held by the cached columns."""
        return int(self._data.nbytes)

    def rows_at(self, positions: np.ndarray) -> list[dict[str, Any]]:
        """Cached rows at ``positions`` (indices into the objid-sorted data)."""
        return self._data.take(pa.array(np.asarray(positions, dtype=np.int64))).to_pylist()

    def lookup(self, objids: np.ndarray) -> tuple[list[dict[str, Any] | None], np.ndarray]:
        """Rows for ``objids`` (``None`` where not cached) and the mask of those found."""
        objids = np.asarray(objids, dtype=np.int64)
        pos = np.searchsorted(self._objids, objids)
        pos = np.minimum(pos, max(len(self._objids) - 1, 0))
        found = (self._objids[pos] == objids) if len(self._objids) else np.zeros(len(objids), bool)
        taken = self._data.take(pa.array(pos[found])).to_pylist() if found.any() else []
        it = iter(taken)
        return [next(it) if f else None for f in found], found
