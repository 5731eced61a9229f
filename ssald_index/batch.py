"""Batch neighbour queries: many objids and sky positions in one call, one result per input, in order.

A position resolves to the catalogue object nearest to it within a match radius, exactly as a cone search
does (:func:`ssald_index.search.nearest_object`). One input's failure (an unknown objid, no object within
the radius, a position out of range) is that input's result, not the batch's: the caller gets every other
input's neighbours. Problems of the whole request (too many inputs, a bad radius, ``k``, filter or search
space) raise before the first result, or, for what only a query can find (a filter the SQL planner
rejects, too few labels for a learned metric), from the first query that meets them.

The results are produced lazily, one input at a time, so a caller that stops iterating (a cancelled RPC)
stops the work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ssald_index.errors import ObjectNotFound
from ssald_index.filters import MAX_RADIUS_ARCSEC
from ssald_index.search import StoreView, check_k, nearest_object

__all__ = ["MAX_BATCH_INPUTS", "BatchResult", "check_batch", "find_similar_batch"]

#: Most inputs (objids and positions together) of one batch: 10,000 queries of k <= 1000 stream in
#: well under a minute on a served table, and a client with more splits them into several calls.
MAX_BATCH_INPUTS = 10_000


@dataclass(frozen=True)
class BatchResult:
    """The answer for one input of a batch.

    Attributes
    ----------
    index : int
        The input's position: objids first (``0 .. len(objids) - 1``), then positions.
    objid : int or None
        The query object: the input objid, or the object matched to the position (None when none was).
    match : dict or None
        For a position input, the matched object's row (with ``separation_arcsec``).
    neighbours : list of dict
        Rows with their ``distance``, nearest first; empty when ``error`` is set.
    error : Exception or None
        Why this input has no neighbours: :class:`~ssald_index.errors.ObjectNotFound` (unknown objid, no
        object within the radius) or ``ValueError`` (a position out of range).
    """

    index: int
    objid: int | None
    match: dict[str, Any] | None = None
    neighbours: list[dict[str, Any]] = field(default_factory=list)
    error: Exception | None = None


def check_batch(n_objids: int, n_positions: int, radius_arcsec: float, k: int) -> None:
    """Raise ``ValueError`` naming what makes a batch request unanswerable as a whole.

    Parameters
    ----------
    n_objids, n_positions : int
        Number of inputs of each kind; together at least 1 and at most :data:`MAX_BATCH_INPUTS`.
    radius_arcsec : float
        Match radius of the positions, in ``(0, MAX_RADIUS_ARCSEC]`` when there are positions.
    k : int
        Neighbours per input, in ``[1, MAX_K]``.
    """
    n = n_objids + n_positions
    if n == 0:
        raise ValueError("a batch needs at least one objid or position")
    if n > MAX_BATCH_INPUTS:
        raise ValueError(
            f"a batch has at most {MAX_BATCH_INPUTS} inputs, got {n} ({n_objids} objids, {n_positions} positions); "
            "split it into several calls"
        )
    if n_positions and not 0.0 < radius_arcsec <= MAX_RADIUS_ARCSEC:
        raise ValueError(
            f"radius_arcsec must be in (0, {MAX_RADIUS_ARCSEC:g}] to match positions, got {radius_arcsec!r}"
        )
    check_k(k)


def find_similar_batch(
    store: StoreView,
    objids: Sequence[int],
    positions: Sequence[tuple[float, float]],
    radius_arcsec: float,
    k: int,
    neighbours_of: Callable[[int], list[dict[str, Any]]],
) -> Iterator[BatchResult]:
    """Neighbours of every input, one :class:`BatchResult` each, in input order (objids, then positions).

    The request is checked (:func:`check_batch`) when this is called, before any result.

    Parameters
    ----------
    store : StoreView
        The store whose objects the positions are matched to.
    objids : sequence of int
        Query objects.
    positions : sequence of (ra, dec)
        Query positions (ICRS degrees), each resolved to the nearest object within ``radius_arcsec``.
    radius_arcsec : float
        Match radius of the positions.
    k : int
        Neighbours per input (checked here; ``neighbours_of`` is what uses it).
    neighbours_of : callable
        ``neighbours_of(objid)`` -> rows with ``distance``: the query run for each resolved object (with
        its ``k``, filter, exclusions and space); it raises :class:`ObjectNotFound` for an unknown objid.

    Returns
    -------
    iterator of BatchResult
        Lazy: each input is answered when the iterator reaches it.

    Raises
    ------
    ValueError
        From :func:`check_batch`, at the call; any other error of ``neighbours_of`` than
        :class:`ObjectNotFound` (a bad filter, too few labels) from the iteration, ending it.
    """
    check_batch(len(objids), len(positions), radius_arcsec, k)
    return _results(store, objids, positions, radius_arcsec, neighbours_of)


def _results(
    store: StoreView,
    objids: Sequence[int],
    positions: Sequence[tuple[float, float]],
    radius_arcsec: float,
    neighbours_of: Callable[[int], list[dict[str, Any]]],
) -> Iterator[BatchResult]:
    for index, objid in enumerate(objids):
        yield _answer(index, int(objid), None, neighbours_of)
    for index, (ra, dec) in enumerate(positions, start=len(objids)):
        try:
            # Its only ValueError is the position's range: the radius was checked with the request.
            match = nearest_object(store, ra, dec, radius_arcsec)
        except (ObjectNotFound, ValueError) as exc:
            yield BatchResult(index, None, error=exc)
            continue
        yield _answer(index, int(match["objid"]), match, neighbours_of)


def _answer(
    index: int, objid: int, match: dict[str, Any] | None, neighbours_of: Callable[[int], list[dict[str, Any]]]
) -> BatchResult:
    try:
        rows = neighbours_of(objid)
    except ObjectNotFound as exc:  # an unknown objid (or a matched object that left the table meanwhile)
        return BatchResult(index, objid, match=match, error=exc)
    return BatchResult(index, objid, match=match, neighbours=rows)
