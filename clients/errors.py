"""Typed exceptions for failed SSALD RPCs.

Each also derives from the built-in exception a Python caller would expect, so ``except KeyError``
catches an unknown objid and ``except TimeoutError`` a deadline. ``str(exc)`` is the server's message;
``exc.code`` is the gRPC status code name.
"""

from __future__ import annotations

import grpc

__all__ = [
    "SsaldError",
    "NotFound",
    "InvalidArgument",
    "Unavailable",
    "DeadlineExceeded",
    "FailedPrecondition",
    "Unauthenticated",
    "PermissionDenied",
    "ResourceExhausted",
    "from_rpc_error",
    "from_status",
]


class SsaldError(Exception):
    """An SSALD RPC failed; ``code`` is the gRPC status code name (e.g. ``"INTERNAL"``)."""

    def __init__(self, message: str, code: str = "UNKNOWN") -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return self.message


class NotFound(SsaldError, KeyError):
    """``NOT_FOUND``: no object with that objid."""


class InvalidArgument(SsaldError, ValueError):
    """``INVALID_ARGUMENT``: a malformed request, e.g. k outside [1, 1000]."""


class Unavailable(SsaldError, ConnectionError):
    """``UNAVAILABLE``: the server cannot be reached, or its table is not ready yet."""


class DeadlineExceeded(SsaldError, TimeoutError):
    """``DEADLINE_EXCEEDED``: no answer within the client's timeout."""


class FailedPrecondition(SsaldError, RuntimeError):
    """``FAILED_PRECONDITION``: the server lacks what the call needs (a model, a classifier, enough labels)."""


class Unauthenticated(SsaldError, PermissionError):
    """``UNAUTHENTICATED``: the call needs a bearer token and carried none, or a wrong one."""


class PermissionDenied(SsaldError, PermissionError):
    """``PERMISSION_DENIED``: the token is valid but does not grant this call (a read-only token on a write)."""


class ResourceExhausted(SsaldError):
    """``RESOURCE_EXHAUSTED``: the server is at its limit of calls in flight, or a message is over the size
    limit; retry later, or send less."""


_BY_CODE: dict[grpc.StatusCode, type[SsaldError]] = {
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
}


def from_rpc_error(error: grpc.RpcError) -> SsaldError:
    """The typed exception for a failed call (``SsaldError`` for codes without their own class)."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = error.details() if hasattr(error, "details") else None
    message = details or f"RPC failed with {code.name}"
    return _BY_CODE.get(code, SsaldError)(message, code.name)


def from_status(code_name: str, message: str) -> SsaldError:
    """The typed exception for a status given by name (e.g. a batch input's ``"NOT_FOUND"``), not raised."""
    code = getattr(grpc.StatusCode, code_name, grpc.StatusCode.UNKNOWN)
    return _BY_CODE.get(code, SsaldError)(message or f"failed with {code_name}", code.name)
