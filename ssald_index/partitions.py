"""Embeddings grouped by IVF partition: the layout that the served cache and the density scorer scan.

Rows are assigned to the nearest of a set of centroids (those of the table's Lance IVF index, see
:func:`ssald_index.ann.ivf_partitions`) and laid out partition after partition, so that visiting a partition is
a product with one contiguous block of rows: an IVF-flat scan with exact distances.
"""

from __future__ import annotations

import os

import numpy as np
from threadpoolctl import threadpool_limits

__all__ = ["Partitions"]


class Partitions:
    """Rows grouped by IVF partition, each partition a contiguous block of a vectors array.

    ``slot[p]`` is the row of position ``p`` (in the caller's order: objid order for the served cache, scan
    order for the density scorer) in the vectors array, ``position`` the inverse, and ``bounds[c]`` to
    ``bounds[c + 1]`` the rows of partition ``c``. A query scores the centroids (the same L2 rule on
    normalised vectors that assigned the rows), then the rows of the nearest partitions, one matrix product
    per partition block.

    Parameters
    ----------
    centroids : ndarray, shape (partitions, D)
        Unit-length centroids; one row of zeros makes a single partition (an exact scan).
    """

    def __init__(self, centroids: np.ndarray) -> None:
        self.centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        self.half_norm = 0.5 * np.einsum("ij,ij->i", self.centroids, self.centroids)
        self.count = len(self.centroids)

    def _closeness(self, x: np.ndarray) -> np.ndarray:
        """``x . c - |c|^2 / 2`` per centroid: larger is nearer in L2 (``|x|^2`` is the same for all)."""
        return x @ self.centroids.T - self.half_norm

    def assign(self, rows: np.ndarray, chunk: int = 16_384) -> np.ndarray:
        """Nearest centroid of each row, with every core (the server otherwise keeps BLAS to one thread)."""
        out = np.empty(len(rows), np.int32)
        with threadpool_limits(os.cpu_count(), user_api="blas"):
            for i in range(0, len(rows), chunk):
                out[i : i + chunk] = np.argmax(self._closeness(rows[i : i + chunk]), axis=1)
        return out

    def group(self, part: np.ndarray) -> None:
        """Lay the rows out partition by partition, given each cache position's partition ``part``."""
        self.position = np.argsort(part, kind="stable")
        self.slot = np.empty(len(part), np.int64)
        self.slot[self.position] = np.arange(len(part))
        self.bounds = np.searchsorted(part[self.position], np.arange(self.count + 1))

    def nearest(self, q: np.ndarray, nprobes: int) -> np.ndarray:
        """The ``nprobes`` partitions nearest to ``q``."""
        if nprobes >= self.count:
            return np.arange(self.count)
        return np.argpartition(-self._closeness(q), nprobes - 1)[:nprobes]

    def nearest_each(self, q: np.ndarray, nprobes: int) -> np.ndarray:
        """The ``nprobes`` partitions nearest to each row of ``q``, shape ``(len(q), min(nprobes, count))``."""
        if nprobes >= self.count:
            return np.broadcast_to(np.arange(self.count), (len(q), self.count))
        return np.argpartition(-self._closeness(q), nprobes - 1, axis=1)[:, :nprobes]

    def rows(self, parts: np.ndarray) -> np.ndarray:
        """Vector rows of partitions ``parts``, block after block."""
        return np.concatenate([np.arange(self.bounds[p], self.bounds[p + 1]) for p in parts])

    def score(self, vectors: np.ndarray, q: np.ndarray, parts: np.ndarray) -> np.ndarray:
        """``vectors @ q`` over the rows of :meth:`rows`, one contiguous block at a time (no row gather)."""
        return np.concatenate([vectors[self.bounds[p] : self.bounds[p + 1]] @ q for p in parts])
