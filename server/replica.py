"""Read-only replicas: ``ssald serve --read-only`` answers every RPC that would write with ``FAILED_PRECONDITION``.

Several servers may serve one database: one writer (the only server that takes labels) and any number of
read-only replicas on other machines over the same dataset. A replica never writes to the database: it only
opens and reads tables, so :class:`ReadOnlyInterceptor` refuses the RPCs in :data:`WRITE_METHODS` before they
reach the servicer. It fails closed: an RPC of ``ssald.v1.Ssald`` that is in neither :data:`READ_METHODS` nor
:data:`WRITE_METHODS` (one added to the proto but not yet classified here) is refused too.

``FAILED_PRECONDITION`` rather than ``PERMISSION_DENIED``: the caller is not at fault and may send the same
request, unchanged, to the writer; ``PERMISSION_DENIED`` and ``UNAUTHENTICATED`` speak about the caller's
credentials.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from server.wire import SSALD_SERVICE, handler_like

__all__ = ["READ_METHODS", "WRITE_METHODS", "ReadOnlyInterceptor", "refusal_message"]

#: RPCs of ``ssald.v1.Ssald`` that write to the database (the ``labels`` table, stored scores).
WRITE_METHODS: frozenset[str] = frozenset({"SubmitLabels"})
#: RPCs of ``ssald.v1.Ssald`` that only read, served by a replica as by the writer.
READ_METHODS: frozenset[str] = frozenset(
    {
        "FindSimilar",
        "GetObject",
        "Stats",
        "SearchVector",
        "FindSimilarToImage",
        "ConeSearch",
        "Anomalies",
        "NextToLabel",
        "Candidates",
        "GetStamp",
        "ObjectsInCone",
        "FindSimilarBatch",
        "FindSimilarToExamples",
        "MapPoints",
    }
)


def refusal_message(method: str) -> str:
    """The status message of RPC ``method`` (a write, or one not known to only read) sent to a read-only replica."""
    what = "writes to the database" if method in WRITE_METHODS else "is not known to only read"
    return (
        f"this server is a read-only replica (ssald serve --read-only): {method} {what}; "
        "send labels and other writes to the writer"
    )


class ReadOnlyInterceptor(grpc.ServerInterceptor):
    """Refuse, with ``FAILED_PRECONDITION``, every ``ssald.v1.Ssald`` RPC not in :data:`READ_METHODS`.

    Health checking, reflection and the read RPCs pass through unchanged.
    """

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        service, _, method = handler_call_details.method.lstrip("/").rpartition("/")
        if handler is None or service != SSALD_SERVICE.full_name or method in READ_METHODS:
            return handler
        message = refusal_message(method)

        def refuse(request: Any, context: grpc.ServicerContext) -> Any:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, message)

        return handler_like(handler, refuse)
