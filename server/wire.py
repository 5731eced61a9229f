"""Registering a servicer so that undecodable requests answer ``INVALID_ARGUMENT``, cheaply and quietly.

grpcio parses a request with the method's ``request_deserializer`` before any handler runs. The generated
``add_<Service>Servicer_to_server`` passes ``Message.FromString``; when the bytes do not parse it raises,
and grpcio logs the traceback and answers ``INTERNAL`` ("Exception deserializing request!"): a client's
mistake reported as a server fault, a traceback in the log per request, and in grpcio 1.85 ~16 KB of
memory kept per request (docs/BENCHMARKS.md, "Service hardening (issue 15)").

:func:`add_servicer` registers the same servicer through handlers built from the service descriptor (no
method listed by hand): each deserializer catches ``google.protobuf.message.DecodeError`` and returns an
:class:`Undecodable` marker instead, and each behaviour answers that marker with ``INVALID_ARGUMENT``
("request is not a valid ssald.v1.FindSimilarRequest") before the servicer sees it, through
``context.abort``, which grpcio answers without logging.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import DecodeError

from proto import ssald_pb2

__all__ = ["SSALD_SERVICE", "Undecodable", "add_servicer", "checked_deserializer", "handler_like", "method_handlers"]

#: The ``ssald.v1.Ssald`` service, as the proto declares it.
SSALD_SERVICE: ServiceDescriptor = ssald_pb2.DESCRIPTOR.services_by_name["Ssald"]


@dataclass(frozen=True)
class Undecodable:
    """A request whose bytes do not parse as the method's request message (what the deserializer returns).

    Attributes
    ----------
    message_type : str
        Full name of the expected message, e.g. ``ssald.v1.FindSimilarRequest``.
    n_bytes : int
        Size of the bytes received.
    """

    message_type: str
    n_bytes: int

    def status_message(self) -> str:
        """The ``INVALID_ARGUMENT`` message: the expected type and the size received, never the bytes."""
        return f"request is not a valid {self.message_type}: {self.n_bytes} bytes that do not parse as it"


def checked_deserializer(message_class: type) -> Callable[[bytes], Any]:
    """A ``request_deserializer`` that returns :class:`Undecodable` instead of raising on bad bytes.

    Parameters
    ----------
    message_class : type
        A generated message class (``ssald_pb2.FindSimilarRequest``).
    """
    parse = message_class.FromString
    name = message_class.DESCRIPTOR.full_name

    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except DecodeError:
            return Undecodable(name, len(data))

    return deserialize


# The handler factory for each (request_streaming, response_streaming) of a method.
_FACTORIES: dict[tuple[bool, bool], Callable[..., grpc.RpcMethodHandler]] = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def handler_like(
    handler: grpc.RpcMethodHandler, behaviour: Callable[[Any, grpc.ServicerContext], Any]
) -> grpc.RpcMethodHandler:
    """A method handler of ``handler``'s kind (unary or streaming each way) and (de)serialisers that runs
    ``behaviour(request, context)`` instead: how an interceptor answers a call in the servicer's place."""
    factory = _FACTORIES[(handler.request_streaming, handler.response_streaming)]
    return factory(
        behaviour, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
    )


def _refusing_undecodable(behavior: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[..., Any]:
    @functools.wraps(behavior)
    def handle(request: Any, context: grpc.ServicerContext) -> Any:
        if isinstance(request, Undecodable):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.status_message())
        return behavior(request, context)

    return handle


def _handler(method: MethodDescriptor, behavior: Callable[..., Any]) -> grpc.RpcMethodHandler:
    if method.client_streaming:
        raise ValueError(f"{method.full_name} streams requests: only unary requests can be checked here")
    request = checked_deserializer(message_factory.GetMessageClass(method.input_type))
    response = message_factory.GetMessageClass(method.output_type).SerializeToString
    make = _FACTORIES[(False, method.server_streaming)]
    return make(_refusing_undecodable(behavior), request_deserializer=request, response_serializer=response)


def method_handlers(servicer: Any, service: ServiceDescriptor = SSALD_SERVICE) -> dict[str, grpc.RpcMethodHandler]:
    """Handlers of every method of ``service``, by method name, that refuse undecodable requests.

    Parameters
    ----------
    servicer : object
        Has one method ``Name(request, context)`` per RPC of ``service``.
    service : ServiceDescriptor
        The service, from the generated module (default ``ssald.v1.Ssald``).

    Raises
    ------
    ValueError
        If a method streams its requests (each message would need its own check; ``ssald.v1`` has none).
    """
    return {method.name: _handler(method, getattr(servicer, method.name)) for method in service.methods}


def add_servicer(servicer: Any, server: grpc.Server, service: ServiceDescriptor = SSALD_SERVICE) -> None:
    """Register ``servicer`` on ``server`` as the generated ``add_SsaldServicer_to_server`` does, checked.

    Requests that do not parse answer ``INVALID_ARGUMENT`` (:class:`Undecodable`) instead of ``INTERNAL``.
    """
    handlers = method_handlers(servicer, service)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
    server.add_registered_method_handlers(service.full_name, handlers)
