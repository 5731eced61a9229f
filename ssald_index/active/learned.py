"""Learned-metric spaces of a database: fitted on the latest labels of one class, kept per version.

This is the path of ``FindSimilar`` with a ``metric``. For a target label L the labelled objects follow
the ``labels`` table's convention (:mod:`ssald_index.active.labels`): positive when an object's latest
label is L, negative when it is anything else (``not_L`` for a "no"). :class:`LearnedSpaces` fits a
:class:`~ssald_index.metric.LearnedMetric` on them, maps every object into its space once and keeps the
result, keyed by (label, kind, labels-table version, objects-table version): a new label or a new ingest
gives a new key, so a search never uses a stale space. Searches are exact
(:func:`ssald_index.metric_search.exact_neighbours`).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from ssald_index.active.labels import latest_labels
from ssald_index.filters import Filter
from ssald_index.metric import LearnedMetric, check_kind, fit_metric
from ssald_index.metric_search import EmbeddingRows, ExactSpace, LRUCache, exact_neighbours

__all__ = ["LearnedSpace", "LearnedSpaces", "training_rows"]

PathLike = str | os.PathLike[str]
# Rows mapped per step: bounds the float64 temporaries of a transform over a large table.
_CHUNK = 65_536


def training_rows(latest: dict[int, str], label: str, emb: EmbeddingRows) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``emb`` holding a labelled object, and their 0/1 targets for ``label``.

    Labels of objects no longer in the table are ignored.
    """
    ids = np.fromiter(latest.keys(), dtype=np.int64, count=len(latest))
    rows = emb.rows_of(ids)
    y = np.fromiter((v == label for v in latest.values()), dtype=np.int8, count=len(latest))
    known = rows >= 0
    return rows[known], y[known]


@dataclass(frozen=True)
class LearnedSpace(ExactSpace):
    """Every object mapped by one learned metric.

    ``key`` is (label, kind, labels version, objects version, features: ``"embedding"`` or
    ``"embedding+extra"``).

    Attributes
    ----------
    metric : LearnedMetric
        The fitted map.
    """

    metric: LearnedMetric | None = None


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
        from ssald_index.active.scores import label_version  # imports scikit-learn: not at server start

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
