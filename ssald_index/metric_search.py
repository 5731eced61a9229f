"""Exact kNN in a space derived from the embeddings: every row scanned, no ANN index.

The morphology spaces (:mod:`ssald_index.feature_space`) and the learned-metric spaces
(:mod:`ssald_index.active.learned`) map every object to a vector once per table version and search it
here: a few hundred thousand rows of 16-129 floats scan in milliseconds. :class:`ExactSpace` is such a
space, :func:`exact_neighbours` the ``FindSimilar`` contract over it, :func:`allowed_rows` a metadata
filter's matches in its row order, :class:`LRUCache` what its owners keep spaces in.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from ssald_index.errors import ObjectNotFound
from ssald_index.filters import Filter
from ssald_index.search import check_k

__all__ = [
    "EmbeddingRows",
    "ExactSpace",
    "LRUCache",
    "allowed_rows",
    "exact_neighbours",
]

K = TypeVar("K")
V = TypeVar("V")


class EmbeddingRows(Protocol):
    """The embeddings of one objects-table version (:class:`ssald_index.active.session.Embeddings` is one)."""

    version: int
    objids: np.ndarray
    x: np.ndarray

    def rows_of(self, objids: Any) -> np.ndarray: ...


def allowed_rows(store: Any, emb: EmbeddingRows, filter: Filter | None) -> np.ndarray | None:
    """Rows of ``emb`` whose objects match ``filter``, sorted and unique; ``None`` (every row) without one.

    Objects the filter matches but ``emb`` does not hold are left out.

    Raises
    ------
    ValueError
        The filter's SQL is refused by the table (the message names the filter).
    """
    where = filter.sql() if filter is not None else None
    if not where:
        return None
    try:
        matching = store.read(["objid"], where=where).column("objid").to_numpy()
    except ValueError as exc:
        raise ValueError(f"bad filter {where!r}: {exc}") from None
    rows = emb.rows_of(matching)
    return np.unique(rows[rows >= 0])


class LRUCache(Generic[K, V]):
    """At most ``max_cached`` values by key, the least recently used dropped first.

    Not locked: its owner guards every call with its own lock.
    """

    def __init__(self, max_cached: int) -> None:
        if max_cached < 1:
            raise ValueError(f"max_cached must be at least 1, got {max_cached!r}")
        self.max_cached = max_cached
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        """The value of ``key`` (now the most recently used), or ``None``."""
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def put(self, key: K, value: V) -> None:
        """Keep ``value`` under ``key``, dropping the least recently used beyond ``max_cached``."""
        self._items[key] = value
        while len(self._items) > self.max_cached:
            self._items.popitem(last=False)


@dataclass(frozen=True)
class ExactSpace:
    """Every object mapped to a vector, searched exactly (every row) by Euclidean distance.

    Attributes
    ----------
    key : tuple
        What it was built for (including the objects-table version); the cache key of its owner.
    objids : ndarray of int64, shape (N,)
    z : ndarray of float32, shape (N, d)
        The mapped objects, in the row order of ``objids``.
    sq : ndarray of float32, shape (N,)
        Squared norms of ``z``.
    """

    key: tuple
    objids: np.ndarray
    z: np.ndarray
    sq: np.ndarray

    def nearest(
        self, row: int, k: int, exclude: np.ndarray | None = None, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` rows nearest to row ``row`` by Euclidean distance, ties broken by objid.

        Parameters
        ----------
        row : int
            The query's row.
        k : int
            At most this many come back (fewer when fewer rows are allowed).
        exclude : ndarray of int, optional
            Rows never returned.
        allowed : ndarray of int, optional
            Only these rows are searched (a metadata filter's matches); all when ``None``.

        Returns
        -------
        (rows, distances) : ndarrays of int64 and float64, nearest first
        """
        q = self.z[row]
        if allowed is None:
            candidates, z = np.arange(len(self.objids)), self.z
        else:
            candidates = np.asarray(allowed, dtype=np.int64)
            z = self.z[candidates]
        d2 = np.maximum(self.sq[candidates].astype(np.float64) - 2.0 * (z @ q) + float(q @ q), 0.0)
        if exclude is not None and len(exclude):
            # Masked rather than removed: no copy of the whole space for the usual one excluded row.
            d2[np.isin(candidates, exclude)] = np.inf
        k = min(int(k), int(np.isfinite(d2).sum()))
        if k == 0:
            return np.zeros(0, np.int64), np.zeros(0)
        top = np.argpartition(d2, k - 1)[:k] if k < len(d2) else np.arange(len(d2))
        order = top[np.lexsort((self.objids[candidates[top]], d2[top]))]
        return candidates[order], np.sqrt(d2[order])


def exact_neighbours(
    store: Any,
    emb: EmbeddingRows,
    objid: int,
    k: int,
    space: Callable[[], ExactSpace],
    filter: Filter | None = None,
    exclude_radius_arcsec: float = 0.0,
) -> list[dict[str, Any]]:
    """The ``k`` nearest neighbours of an object in an exact space, itself excluded.

    The contract of :meth:`ssald_index.store.ObjectStore.neighbours`, except that ``distance`` is Euclidean
    in the space.

    Parameters
    ----------
    store : ObjectStore
        The served table: metadata of the neighbours, filter matches, sky exclusion.
    emb : EmbeddingRows
        Embeddings of the store's current version (the row order of the space).
    objid, k, filter, exclude_radius_arcsec
        As for ``ObjectStore.neighbours``; the filter restricts the searched objects.
    space : callable
        Gives the space, in ``emb``'s row order; called once the request is known to be valid.

    Raises
    ------
    ObjectNotFound
        ``objid`` is not in the table.
    ValueError
        Bad ``k`` or filter.
    """
    check_k(k)
    row = int(emb.rows_of([objid])[0])
    if row < 0:
        raise ObjectNotFound(int(objid))
    excluded = {int(objid)}
    if exclude_radius_arcsec:
        sky = store.get(int(objid))
        excluded |= {int(r["objid"]) for r in store.cone(sky["ra"], sky["dec"], exclude_radius_arcsec)}
    allowed = allowed_rows(store, emb, filter)
    found = space()
    skip = emb.rows_of(np.fromiter(excluded, dtype=np.int64))
    rows, dist = found.nearest(row, k, exclude=skip[skip >= 0], allowed=allowed)
    return [{**store.get(int(found.objids[r])), "distance": float(d)} for r, d in zip(rows, dist)]
