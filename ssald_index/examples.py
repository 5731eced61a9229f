"""More like these, unlike those: a kNN query from several positive and negative example objects.

The query is Rocchio's relevance-feedback vector (Rocchio 1971; Manning, Raghavan & Schütze 2008, §9.1.1)
on the unit sphere of the embeddings::

    q = mean(unit positives) - negative_weight * mean(unit negatives),   then q / |q|

and the answer is the cosine kNN of ``q`` through the ANN index, with the filter and exclusions of any
other query and the examples themselves excluded. Why this and not a classifier (a logistic probe of
positives against negatives and random background, scoring every object or the kNN candidates of the
positives' mean): the query stays one kNN search answered by the index, so its cost does not grow with the
table and a filter is a prefilter as elsewhere; and on a rare class, the service's purpose, the negatives
help this query while a probe fitted to a handful of positives does no better than their mean (measured on
real Galaxy Zoo mergers: docs/BENCHMARKS.md, with the weight). A common class with many labels is the
active-learning classifier's job (``ssald_index.active``). Too large a weight cancels the query: the
misses a user rejects lie close to the positives' direction.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ssald_index.errors import ObjectNotFound
from ssald_index.filters import Filter
from ssald_index.search import StoreView, cone, search_vector

__all__ = [
    "MAX_EXAMPLES",
    "NEGATIVE_WEIGHT",
    "MAX_NEGATIVE_WEIGHT",
    "check_examples",
    "example_query",
    "example_vectors",
    "similar_to_examples",
]

#: Most example objects (positives and negatives together) of one query.
MAX_EXAMPLES = 1000
#: Default weight of the negatives' mean (Rocchio's gamma); the measured choice is in docs/BENCHMARKS.md.
NEGATIVE_WEIGHT = 0.5
#: Largest accepted negative weight.
MAX_NEGATIVE_WEIGHT = 10.0


def check_examples(positives: Iterable[int], negatives: Iterable[int] = ()) -> tuple[list[int], list[int]]:
    """The positive and negative objids, duplicates dropped in order, if they make a query.

    Raises
    ------
    ValueError
        No positive, more than :data:`MAX_EXAMPLES` distinct examples, or an objid that is both a positive
        and a negative (naming them).
    """
    pos = list(dict.fromkeys(int(o) for o in positives))
    neg = list(dict.fromkeys(int(o) for o in negatives))
    if not pos:
        raise ValueError("at least one positive example objid is needed (negatives alone give no direction)")
    if len(pos) + len(neg) > MAX_EXAMPLES:
        raise ValueError(
            f"{len(pos)} positive and {len(neg)} negative examples: at most {MAX_EXAMPLES} in all per query"
        )
    both = sorted(set(pos) & set(neg))
    if both:
        raise ValueError(f"objids {', '.join(map(str, both))} are given as both positive and negative examples")
    return pos, neg


def example_vectors(store: StoreView, objids: Sequence[int]) -> np.ndarray:
    """Embeddings of ``objids`` (float64, shape ``(len(objids), D)``, in that order).

    From the served in-memory copy when it holds them, else one ``objid IN (...)`` read of the table.

    Raises
    ------
    ObjectNotFound
        If any objid is not in the table (the message names every missing one).
    """
    ids = np.asarray(objids, dtype=np.int64)
    if ids.size == 0:
        return np.empty((0, store.dim))
    cached = store.cached_vectors(ids)
    if cached is not None:
        return np.asarray(cached, dtype=np.float64)
    table = store.read(["objid", "embedding"], where=f"objid IN ({', '.join(map(str, ids.tolist()))})")
    found = dict(zip(table.column("objid").to_pylist(), table.column("embedding").to_pylist()))
    missing = [int(o) for o in ids if int(o) not in found]
    if missing:
        raise ObjectNotFound(missing[0], f"example objids {', '.join(map(str, missing))} are not in the objects table")
    return np.array([found[int(o)] for o in ids], dtype=np.float64)


def example_query(
    positives: np.ndarray, negatives: np.ndarray | None = None, negative_weight: float = NEGATIVE_WEIGHT
) -> np.ndarray:
    """Rocchio's query vector: unit mean of the unit positives minus ``negative_weight`` times that of the negatives.

    Parameters
    ----------
    positives : ndarray, shape (P, D)
        Embeddings of the positive examples (any norm; each is normalised first, so every example counts
        the same), ``P >= 1``.
    negatives : ndarray, shape (N, D), optional
        Embeddings of the negative examples; ``N = 0`` or ``None`` gives the mean of the positives.
    negative_weight : float
        Weight of the negatives' mean, in ``[0, MAX_NEGATIVE_WEIGHT]``.

    Returns
    -------
    ndarray, shape (D,)
        The unit query vector (float64).

    Raises
    ------
    ValueError
        No positive, a weight out of range, a zero or non-finite example, or examples whose combination
        cancels to (nearly) zero.
    """
    if not (math.isfinite(negative_weight) and 0.0 <= negative_weight <= MAX_NEGATIVE_WEIGHT):
        raise ValueError(f"negative_weight must lie in [0, {MAX_NEGATIVE_WEIGHT:g}], got {negative_weight!r}")
    pos = np.atleast_2d(np.asarray(positives, dtype=np.float64))
    if pos.shape[0] == 0:
        raise ValueError("at least one positive example is needed")
    neg = np.empty((0, pos.shape[1])) if negatives is None else np.atleast_2d(np.asarray(negatives, np.float64))

    def unit(rows: np.ndarray, kind: str) -> np.ndarray:
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        bad = np.flatnonzero(~(np.isfinite(norms[:, 0]) & (norms[:, 0] > 0)))
        if bad.size:
            raise ValueError(f"{kind} example {bad[0]} has no direction (zero or non-finite embedding)")
        return rows / norms

    query = unit(pos, "positive").mean(axis=0)
    if neg.shape[0]:
        query = query - negative_weight * unit(neg, "negative").mean(axis=0)
    norm = np.linalg.norm(query)
    if not norm > 1e-6:
        raise ValueError(
            f"the examples cancel out: the positives' mean minus {negative_weight:g} x the negatives' mean has "
            f"norm {norm:.2g}; give fewer or other negatives, or a smaller negative_weight"
        )
    return query / norm


def similar_to_examples(
    store: StoreView,
    positives: Iterable[int],
    negatives: Iterable[int] = (),
    k: int = 10,
    filter: Filter | None = None,
    negative_weight: float = NEGATIVE_WEIGHT,
    exclude_radius_arcsec: float = 0.0,
    exclude: Iterable[int] = (),
) -> list[dict[str, Any]]:
    """The ``k`` objects nearest to :func:`example_query` of the examples; no example is among them.

    Parameters
    ----------
    store : StoreView
        The store to search.
    positives, negatives : iterable of int
        Objids of the examples: at least one positive; an objid may not be both.
    k : int
        Number of results, in ``[1, MAX_K]``.
    filter : Filter, optional
        Metadata prefilter, as for any kNN query.
    negative_weight : float
        Weight of the negatives' mean (:func:`example_query`).
    exclude_radius_arcsec : float
        Objects closer than this on the sky to any example are left out too (the other nucleus of a pair);
        0 excludes only the examples.
    exclude : iterable of int
        Further objids never returned (e.g. ones already shown).

    Returns
    -------
    list of dict
        Rows with their cosine ``distance`` to the query, nearest first.

    Raises
    ------
    ObjectNotFound
        An example objid is not in the table.
    ValueError
        As for :func:`check_examples` and :func:`example_query`, or a bad ``k``, filter or radius.
    """
    pos, neg = check_examples(positives, negatives)
    vectors = example_vectors(store, pos + neg)
    query = example_query(vectors[: len(pos)], vectors[len(pos) :], negative_weight)
    excluded = {*pos, *neg, *(int(o) for o in exclude)}
    if exclude_radius_arcsec:
        sky = store.read(["objid", "ra", "dec"], where=f"objid IN ({', '.join(map(str, pos + neg))})")
        for ra, dec in zip(sky.column("ra").to_pylist(), sky.column("dec").to_pylist()):
            excluded |= {int(row["objid"]) for row in cone(store, ra, dec, exclude_radius_arcsec)}
    return search_vector(store, query, k, exclude=excluded, filter=filter)
