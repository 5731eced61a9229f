"""kNN in a metric learned from the labels of one class: the server's path for ``FindSimilar`` with a
``metric`` (issue 13).

For a target label L the labelled objects follow the ``labels`` table's convention
(:mod:`ssald_index.labels`): positive when an object's latest label is L, negative when it is anything
else (``not_L`` for a "no"). :class:`LearnedSpaces` fits a :class:`~ssald_index.metric.LearnedMetric` on
them, maps every object into its space once and keeps the result, keyed by (label, kind, labels-table
version, objects-table version): a new label or a new ingest gives a new key, so a search never uses a
stale space. Searches are exact (every row, one matrix-vector product): the learned spaces have no ANN
index, and a few hundred thousand rows of 16-129 floats scan in milliseconds. :class:`ExactSpace` and
:func:`exact_neighbours` are that search, shared with the morphology spaces of
:mod:`ssald_index.feature_space`.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from ssald_index.filters import Filter
from ssald_index.labels import latest_labels
from ssald_index.metric import LearnedMetric, check_kind, fit_metric
from ssald_index.store import MAX_K, ObjectNotFound

__all__ = [
    "EmbeddingRows",
    "ExactSpace",
    "LRUCache",
    "LearnedSpace",
    "LearnedSpaces",
    "allowed_rows",
    "exact_neighbours",
    "training_rows",
]

PathLike = str | os.PathLike[str]
# Rows mapped per step: bounds the float64 temporaries of a transform over a large table.
_CHUNK = 65_536

K = TypeVar("K")
V = TypeVar("V")


class EmbeddingRows(Protocol):
    """The embeddings of one objects-table version (:class:`server.al_service.Embeddings` is one)."""

    version: int
    objids: np.ndarray
    x: np.ndarray

    def rows_of(self, objids: Any) -> np.ndarray: ...


def training_rows(latest: dict[int, str], label: str, emb: EmbeddingRows) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``emb`` holding a labelled object, and their 0/1 targets for ``label``.

    Labels of objects no longer in the table are ignored.
    """
    ids = np.fromiter(latest.keys(), dtype=np.int64, count=len(latest))
    rows = emb.rows_of(ids)
    y = np.fromiter((v == label for v in latest.values()), dtype=np.int8, count=len(latest))
    known = rows >= 0
    return rows[known], y[known]


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


@dataclass(frozen=True)
class LearnedSpace(ExactSpace):
    """Every object mapped by one learned metric; ``key`` is (label, kind, labels version, objects version,
    features: ``"embedding"`` or ``"embedding+extra"``).

    Attributes
    ----------
    metric : LearnedMetric
    """

    metric: LearnedMetric | None = None


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
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= MAX_K:
        raise ValueError(f"k must be an integer between 1 and {MAX_K}, got {k!r}")
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


class LearnedSpaces:
    """Learned spaces of a database's objects, fitted on demand and kept for the latest few keys.

    Parameters
    ----------
    db_path : path
        The database whose ``labels`` table holds the labels.
    max_cached : int
        Spaces kept (least recently used dropped first); each holds an (N, d) float32 matrix.
    """

    def __init__(self, db_path: PathLike, max_cached: int = 2) -> None:
        self._spaces: LRUCache[tuple[str, str, int, int, str], LearnedSpace] = LRUCache(max_cached)
        self.db_path = os.fspath(db_path)
        self.max_cached = max_cached
        self._lock = threading.Lock()

    def space(self, emb: EmbeddingRows, label: str, kind: str = "", extra: np.ndarray | None = None) -> LearnedSpace:
        """The learned space of ``label`` over ``emb``, fitted from the current labels unless cached.

        Parameters
        ----------
        emb : EmbeddingRows
        label, kind : str
            The class whose labels are learned and the metric kind (``""``: ``probe``).
        extra : ndarray, shape (N, F), optional
            Per-object features learned beside the embedding (``fit_metric``'s ``extra``), in ``emb``'s
            row order; the same matrix for every call on one objects version (the standardised
            morphology), since the cache key only records whether it was given.

        Raises
        ------
        TooFewLabels
            ``label`` has fewer than two positive or negative labels (a ``ValueError``; the message names
            the label and the counts).
        ValueError
            Empty label or unknown kind.
        """
        from ssald_index.scores import label_version  # imports scikit-learn: not at server start

        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"metric label must be a non-empty string, got {label!r}")
        label, kind = label.strip(), check_kind(kind)
        # The version is read before the labels: a label added in between gives a key that is already old.
        features = "embedding" if extra is None else "embedding+extra"
        key = (label, kind, label_version(self.db_path), int(emb.version), features)
        with self._lock:
            found = self._spaces.get(key)
            if found is not None:
                return found
            rows, y = training_rows(latest_labels(self.db_path), label, emb)
            metric = fit_metric(emb.x, rows, y, kind=kind, label=label, extra=extra)
            z = np.empty((len(emb.x), 0), np.float32)
            if len(emb.x):
                z = np.vstack(
                    [
                        metric.transform(emb.x[i : i + _CHUNK], None if extra is None else extra[i : i + _CHUNK])
                        for i in range(0, len(emb.x), _CHUNK)
                    ]
                )
            found = LearnedSpace(key, emb.objids, z, np.einsum("ij,ij->i", z, z), metric=metric)
            self._spaces.put(key, found)
            return found

    def neighbours(
        self,
        store: Any,
        emb: EmbeddingRows,
        objid: int,
        k: int,
        label: str,
        kind: str = "",
        filter: Filter | None = None,
        exclude_radius_arcsec: float = 0.0,
        extra: np.ndarray | None = None,
    ) -> list[dict[str, Any]]:
        """The ``k`` nearest neighbours of an object in the learned space of ``label``, itself excluded.

        The same contract as :meth:`ssald_index.store.ObjectStore.neighbours`, except that ``distance`` is
        the Euclidean distance in the learned space (not a cosine distance).

        Parameters
        ----------
        store : ObjectStore
            The served table: metadata of the neighbours, filter matches, sky exclusion.
        emb : EmbeddingRows
            Embeddings of the store's current version.
        objid, k, filter, exclude_radius_arcsec
            As for ``ObjectStore.neighbours``; the filter restricts the searched objects.
        label, kind : str
            The label whose learned metric is used and the metric kind (``""``: ``probe``).
        extra : ndarray, optional
            Features learned beside the embedding, as for :meth:`space`.

        Raises
        ------
        ObjectNotFound
            ``objid`` is not in the table.
        TooFewLabels
            Fewer than two positive or negative labels for ``label``.
        ValueError
            Bad ``k``, label, kind or filter.
        """
        return exact_neighbours(
            store, emb, objid, k, lambda: self.space(emb, label, kind, extra), filter, exclude_radius_arcsec
        )
