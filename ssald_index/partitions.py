"""Embeddings grouped by IVF partition: the layout that the served cache and the density scorer scan.

Rows are assigned to the nearest of a set of centroids (those of the table's Lance IVF index, see
:func:`ssald_index.ann.ivf_partitions`) and laid out partition after partition, so that visiting a partition is
a product with one contiguous block of rows: an IVF-flat scan with exact distances.

A scan over many rows is bound by memory reads (4 D bytes a float32 row). :class:`Int8Rows` keeps a copy of the
rows in int8 (D bytes a row, each dimension scaled to its own range) that :meth:`Partitions.score_codes` scans
with a compiled loop instead: at 10M x 128 a query's 139k scanned rows (32 probes) cost 0.71 ms instead of
3.60 ms (docs/BENCHMARKS.md, "Queries at 10^7"). Its scores only rank the rows; the caller re-ranks the best
ones with exact float distances. Scans of fewer than :data:`INT8_MIN_ROWS` rows stay in float32.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_limits

__all__ = ["INT8_MIN_ROWS", "Int8Rows", "Partitions"]


#: Probed rows from which a scan ranks them from the int8 copy: below it the float32 product is cheap (a few
#: MB a query) and exact, so small tables (and the tests' near-identical embeddings) keep exact ranking.
INT8_MIN_ROWS = 32_768


def _int8_dots_py(codes, q8, starts, stops, out):  # pragma: no cover - compiled by _int8_dots
    """``codes[i] . q8`` (int32) for the rows of the blocks ``starts[b]:stops[b]``, block after block, into ``out``."""
    d = codes.shape[1]
    k = 0
    for b in range(starts.shape[0]):
        for i in range(starts[b], stops[b]):
            acc = np.int32(0)
            for j in range(d):
                acc += np.int32(codes[i, j]) * np.int32(q8[j])
            out[k] = acc
            k += 1
    return out


@functools.cache
def _int8_dots() -> Callable:
    """:func:`_int8_dots_py` compiled by numba without the GIL (concurrent queries scan in parallel threads), its
    machine code cached on disk where a folder is writable. numba loads here, with the first large table, not
    when the server starts."""
    from numba import njit

    try:
        return njit(nogil=True, cache=True, fastmath=True, boundscheck=False)(_int8_dots_py)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return njit(nogil=True, fastmath=True, boundscheck=False)(_int8_dots_py)


class Int8Rows:
    """An int8 copy of unit rows for ranking by inner product: ``codes[i, j] = round(x[i, j] * scale[j])``.

    Each dimension is scaled to its own largest magnitude (127), so no dimension's range is wasted; a query
    is divided by the same scales and rounded to int8 with its own range, so ``codes @ query`` is
    proportional to ``x @ q`` up to rounding. Built chunk by chunk (no float copy of the whole array).

    Parameters
    ----------
    vectors : ndarray, shape (n, D), float32
        The rows, in the order the codes keep.
    """

    def __init__(self, vectors: np.ndarray, chunk: int = 65_536) -> None:
        peak = np.zeros(vectors.shape[1], np.float32)
        for i in range(0, len(vectors), chunk):
            peak = np.maximum(peak, np.abs(vectors[i : i + chunk]).max(axis=0))
        self.scale = (127.0 / np.maximum(peak, np.float32(1e-12))).astype(np.float32)
        self.codes = np.empty(vectors.shape, np.int8)
        for i in range(0, len(vectors), chunk):
            self.codes[i : i + chunk] = np.rint(vectors[i : i + chunk] * self.scale)

    def query(self, q: np.ndarray) -> np.ndarray:
        """``q`` in the codes' scale, as int8."""
        scaled = q / self.scale
        top = float(np.abs(scaled).max())
        return np.rint(scaled * (127.0 / top)).astype(np.int8) if top > 0 else np.zeros(len(q), np.int8)

    @property
    def nbytes(self) -> int:
        """Memory held by the codes."""
        return int(self.codes.nbytes + self.scale.nbytes)


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

    def score_codes(self, rows: Int8Rows, q: np.ndarray, parts: np.ndarray) -> np.ndarray:
        """:meth:`score` from the int8 copy ``rows`` (same row order as the vectors): a ranking, float32, in
        arbitrary units, of the rows of :meth:`rows`."""
        starts = self.bounds[parts].astype(np.int64)
        stops = self.bounds[np.asarray(parts) + 1].astype(np.int64)
        out = np.empty(int((stops - starts).sum()), np.int32)
        return _int8_dots()(rows.codes, rows.query(q), starts, stops, out).astype(np.float32)
