"""Bearer-token authentication of the SSALD RPCs: a server interceptor.

A client sends ``authorization: Bearer <token>`` metadata (:class:`clients.client.SsaldClient` does when given
``token=``). :class:`TokenAuth` checks it before the call reaches a servicer:

- no ``authorization`` metadata, or a token that matches no configured token: ``UNAUTHENTICATED``;
- the read-only token on a write RPC: ``PERMISSION_DENIED``.

Tokens are compared with :func:`hmac.compare_digest` (constant time) and appear in no log line or status
message. Which RPCs need a token is the server's ``auth`` scope (:class:`server.options.Security`): the write
RPCs (:data:`WRITE_METHODS`), or every SSALD RPC and reflection; health checking is always open so that
orchestrators can probe a server without its secret.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Sequence
from typing import Any

import grpc

from server.replica import WRITE_METHODS as WRITE_RPC_NAMES
from server.wire import SSALD_SERVICE, handler_like

__all__ = ["WRITE_METHODS", "TokenAuth", "bearer_token"]

log = logging.getLogger(__name__)

#: Full method names (``/ssald.v1.Ssald/SubmitLabels``) of the RPCs that change what the server stores: the
#: writes a read-only replica refuses (:data:`server.replica.WRITE_METHODS`, the one classification of RPCs).
WRITE_METHODS: frozenset[str] = frozenset(f"/{SSALD_SERVICE.full_name}/{name}" for name in WRITE_RPC_NAMES)

_OPEN_PREFIXES = ("/grpc.health.v1.Health/",)


def bearer_token(metadata: Sequence[tuple[str, Any]] | None) -> str | None:
    """The token of the call's ``authorization: Bearer <token>`` metadata, ``None`` when there is none."""
    for key, value in metadata or ():
        if key.lower() == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def _same(presented: bytes, expected: str | None) -> bool:
    return expected is not None and hmac.compare_digest(presented, expected.encode())


class TokenAuth(grpc.ServerInterceptor):
    """Require a bearer token on the write RPCs, or on every SSALD RPC.

    Parameters
    ----------
    token : str
        The token of full rights.
    read_token : str, optional
        A token that grants the read RPCs only.
    scope : {"writes", "all"}
        What needs a token (see :class:`server.options.Security`).
    """

    def __init__(self, token: str, read_token: str | None = None, scope: str = "writes") -> None:
        self._token = token
        self._read_token = read_token
        self._scope = scope

    def __repr__(self) -> str:
        return f"TokenAuth(scope={self._scope!r}, read_token={'set' if self._read_token else 'unset'})"

    def needs_token(self, method: str) -> bool:
        """Whether a call of ``method`` (``/package.Service/Method``) must carry a token."""
        if method in WRITE_METHODS:
            return True
        return self._scope == "all" and not method.startswith(_OPEN_PREFIXES)

    def intercept_service(self, continuation, handler_call_details):  # noqa: D102 - grpc.ServerInterceptor
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not self.needs_token(method):
            return handler
        name = method.rsplit("/", 1)[-1]
        presented = bearer_token(handler_call_details.invocation_metadata)
        if presented is None:
            return _refusal(
                handler,
                grpc.StatusCode.UNAUTHENTICATED,
                f"{name} needs a bearer token: send metadata 'authorization: Bearer <token>' "
                "(SsaldClient(token=...), or --token-file / SSALD_TOKEN on the command line)",
            )
        presented_bytes = presented.encode()
        full, read = _same(presented_bytes, self._token), _same(presented_bytes, self._read_token)
        if not (full or read):
            return _refusal(handler, grpc.StatusCode.UNAUTHENTICATED, f"{name}: the bearer token is not valid")
        if not full and method in WRITE_METHODS:
            return _refusal(
                handler, grpc.StatusCode.PERMISSION_DENIED, f"{name} writes: the read-only token may not call it"
            )
        return handler


def _refusal(handler: grpc.RpcMethodHandler, code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    def refuse(request: Any, context: grpc.ServicerContext) -> Any:
        log.warning("%s from %s: %s", code.name, context.peer(), message)  # the message never holds a token
        context.abort(code, message)

    return handler_like(handler, refuse)
