"""The batch and multi-example calls of :class:`clients.client.SsaldClient`, and the request fields they share.

``find_similar_batch`` asks for the neighbours of many objids and sky positions in one streamed call, each
input's failure given back as a value; ``find_similar_to_examples`` finds objects like several positive
examples and unlike several negative ones.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import grpc

from clients.conversions import batch_result_from_proto, filter_message, make_request, neighbour_from_proto
from clients.errors import InvalidArgument, Unavailable, from_rpc_error
from clients.objects import BatchResult, Neighbour
from proto import ssald_pb2

__all__ = ["MultiQueryCalls", "search_fields"]


def _weight(morphology_weight: float | None) -> float:
    # On the wire 0 means "unset" (1.0): an explicit 0 or less must not become the default.
    if morphology_weight is None:
        return 0.0
    if not morphology_weight > 0:
        raise InvalidArgument(f"morphology_weight must lie in (0, 10], got {morphology_weight!r}", "INVALID_ARGUMENT")
    return float(morphology_weight)


def search_fields(
    exclude_radius_arcsec: float,
    metric_label: str,
    metric_kind: str,
    space: str,
    morphology_weight: float | None,
    filters: dict[str, Any],
) -> dict[str, Any]:
    """The request fields that FindSimilar, ConeSearch and FindSimilarBatch share: filter, sky exclusion,
    learned metric and search space (arguments as for :meth:`SsaldClient.find_similar`)."""
    return {
        "filter": filter_message(**filters),
        "exclude_radius_arcsec": exclude_radius_arcsec,
        "metric": make_request(ssald_pb2.LearnedMetric, label=metric_label or "", kind=metric_kind or ""),
        "space": space or "",
        "morphology_weight": _weight(morphology_weight),
    }


class MultiQueryCalls:
    """The batch and multi-example RPCs; mixed into :class:`clients.client.SsaldClient`, which provides
    ``_call`` (one RPC with the client's timeout and typed errors), ``_stub`` and ``timeout``."""

    _stub: Any
    timeout: float

    def _call(self, method: Any, request: Any) -> Any:
        raise NotImplementedError

    def find_similar_batch(
        self,
        objids: Sequence[int] | None = None,
        positions: Sequence[tuple[float, float]] | None = None,
        k: int = 10,
        radius_arcsec: float = 3.0,
        exclude_radius_arcsec: float = 0.0,
        metric_label: str = "",
        metric_kind: str = "",
        space: str = "",
        morphology_weight: float | None = None,
        timeout: float | None = None,
        **filters: Any,
    ) -> Iterator[BatchResult]:
        """Neighbours of many objects and sky positions in one streamed call, one result per input, in order.

        Parameters
        ----------
        objids : sequence of int, optional
            Query objects: inputs ``0 .. len(objids) - 1``.
        positions : sequence of (ra, dec), optional
            ICRS degrees: the inputs after the objids, each matched to the nearest object within
            ``radius_arcsec`` (as :meth:`cone_search` does). At most 10,000 inputs in all.
        k : int
            Neighbours per input, 1..1000.
        radius_arcsec : float
            Match radius of the positions.
        exclude_radius_arcsec, metric_label, metric_kind, space, morphology_weight, **filters
            As for :meth:`find_similar`, for every input.
        timeout : float, optional
            Seconds for the whole stream; ``None``: the client's timeout (give more for big batches).

        Returns
        -------
        iterator of BatchResult
            Lazy, in input order; a failed input (unknown objid, no object within the radius, a position out
            of range) is a result whose ``error`` holds the typed exception. Stopping the iteration early
            (``break``, or closing the iterator) cancels the call, and the server stops working on it.

        Raises
        ------
        InvalidArgument
            While iterating: no input, more than 10,000, a bad radius, ``k``, filter or space.
        FailedPrecondition, Unavailable, DeadlineExceeded
            As for :meth:`find_similar`, while iterating.
        """
        request = make_request(
            ssald_pb2.FindSimilarBatchRequest,
            objids=[int(o) for o in objids or ()],
            positions=[ssald_pb2.SkyPosition(ra=float(ra), dec=float(dec)) for ra, dec in positions or ()],
            radius_arcsec=radius_arcsec,
            k=k,
            **search_fields(exclude_radius_arcsec, metric_label, metric_kind, space, morphology_weight, filters),
        )
        try:
            call = self._stub.FindSimilarBatch(request, timeout=self.timeout if timeout is None else timeout)
        except ValueError as exc:  # grpc's answer on a closed channel
            raise Unavailable(f"{self!r} is closed: {exc}", "UNAVAILABLE") from None
        return _stream(call)

    def find_similar_to_examples(
        self,
        positives: Sequence[int],
        negatives: Sequence[int] = (),
        k: int = 10,
        negative_weight: float | None = None,
        exclude_objids: Sequence[int] = (),
        exclude_radius_arcsec: float = 0.0,
        **filters: Any,
    ) -> list[Neighbour]:
        """Objects like the ``positives`` and unlike the ``negatives``, nearest first; no example among them.

        The server searches around ``unit(mean of the positives - negative_weight x mean of the negatives)``
        (unit embeddings; Rocchio's relevance feedback), by cosine distance through its index.

        Parameters
        ----------
        positives : sequence of int
            Objids of at least one object you want more of.
        negatives : sequence of int
            Objids of objects you do not (e.g. wrong answers of an earlier query); none also a positive.
        k : int
            1..1000.
        negative_weight : float, optional
            Weight of the negatives, in [0, 10]; ``None``: the server's default (0.5).
        exclude_objids : sequence of int
            Never returned either (e.g. results already shown).
        exclude_radius_arcsec : float
            Objects this close on the sky to any example are left out too.
        **filters
            As for :meth:`find_similar`.

        Raises
        ------
        NotFound
            An example objid is not in the table (all missing ones are named).
        InvalidArgument
            No positive, more than 1000 examples, an objid both positive and negative, a weight out of
            range, examples that cancel out, bad ``k`` or filter.
        """
        request = make_request(
            ssald_pb2.FindSimilarToExamplesRequest,
            positive_objids=[int(o) for o in positives],
            negative_objids=[int(o) for o in negatives],
            k=k,
            filter=filter_message(**filters),
            exclude_radius_arcsec=exclude_radius_arcsec,
            exclude_objids=[int(o) for o in exclude_objids],
            **({} if negative_weight is None else {"negative_weight": negative_weight}),
        )
        reply = self._call(self._stub.FindSimilarToExamples, request)
        return [neighbour_from_proto(n) for n in reply.neighbours]


def _stream(call: Any) -> Iterator[BatchResult]:
    """The results of a streaming call, its failure as a typed exception; closing it early cancels the call."""
    try:
        for msg in call:
            yield batch_result_from_proto(msg)
    except grpc.RpcError as exc:
        raise from_rpc_error(exc) from None
    finally:
        call.cancel()  # a no-op once the stream has ended; stops the server when the caller stopped early
