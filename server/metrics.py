"""Request counts, latencies and status codes per RPC, in Prometheus' text format.

:class:`RpcMetrics` owns one ``prometheus_client.CollectorRegistry`` (one per server, so several servers in
one process never share or collide) and the server interceptor that fills it. The metric names and labels
are those of go-grpc-prometheus, which Grafana dashboards for gRPC services expect:

- ``grpc_server_started_total{grpc_type, grpc_service, grpc_method}``: RPCs that reached a handler;
- ``grpc_server_handled_total{grpc_type, grpc_service, grpc_method, grpc_code}``: RPCs finished, by status
  code name (``OK``, ``INVALID_ARGUMENT``, ``NOT_FOUND`` ...);
- ``grpc_server_handling_seconds{grpc_type, grpc_service, grpc_method}``: a histogram of handling time.

Unary-unary RPCs are counted (every ``ssald.v1.Ssald`` RPC and health ``Check``); streaming ones (health
``Watch``, reflection) pass through uncounted. A request whose bytes do not parse is counted with its
method and ``INVALID_ARGUMENT`` (:mod:`server.wire`); a call of an unknown method is not counted, so a
client cannot grow the label set. :meth:`RpcMetrics.serve_http` serves ``/metrics`` for Prometheus.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

__all__ = ["LATENCY_BUCKETS", "MetricsEndpoint", "RpcMetrics"]

#: Upper bounds (seconds) of the latency histogram: a cached lookup takes ~1 ms, a retrain seconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

_UNARY = "unary"


class MetricsEndpoint:
    """A running ``/metrics`` HTTP endpoint (:meth:`RpcMetrics.serve_http`); :meth:`close` stops it.

    Attributes
    ----------
    host : str
        The interface it is bound to.
    port : int
        The bound port (the one picked when 0 was asked for).
    """

    def __init__(self, httpd: Any, host: str) -> None:
        self._httpd = httpd
        self.host = host
        self.port: int = httpd.server_port

    @property
    def url(self) -> str:
        """``http://HOST:PORT/metrics``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and release the port."""
        self._httpd.shutdown()
        self._httpd.server_close()


class RpcMetrics:
    """The per-RPC metrics of one server, and the interceptor that records them.

    Parameters
    ----------
    registry : CollectorRegistry, optional
        Where the metrics live; a new registry of their own by default.
    buckets : tuple of float
        Latency histogram bounds in seconds (default :data:`LATENCY_BUCKETS`).
    """

    def __init__(self, registry: CollectorRegistry | None = None, buckets: tuple[float, ...] = LATENCY_BUCKETS):
        self.registry = registry if registry is not None else CollectorRegistry()
        method = ["grpc_type", "grpc_service", "grpc_method"]
        self.started = Counter("grpc_server_started", "RPCs started on the server.", method, registry=self.registry)
        self.handled = Counter(
            "grpc_server_handled",
            "RPCs completed on the server, by status code.",
            [*method, "grpc_code"],
            registry=self.registry,
        )
        self.handling_seconds = Histogram(
            "grpc_server_handling_seconds",
            "Time from the request reaching its handler to the handler's answer.",
            method,
            buckets=buckets,
            registry=self.registry,
        )
        self.interceptor = _MetricsInterceptor(self)

    def serve_http(self, host: str = "127.0.0.1", port: int = 0) -> MetricsEndpoint:
        """Serve ``/metrics`` (the text exposition format) over HTTP from a daemon thread.

        Parameters
        ----------
        host : str
            Interface to bind; the default keeps the endpoint on the machine.
        port : int
            Port; 0 picks a free one (see :attr:`MetricsEndpoint.port`).

        Raises
        ------
        OSError
            If the address cannot be bound.
        """
        httpd, _ = start_http_server(port, addr=host, registry=self.registry)
        return MetricsEndpoint(httpd, host)

    def wrap(self, full_method: str, behavior: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[..., Any]:
        """``behavior`` of the unary RPC ``/package.Service/Method``, counted and timed."""
        service, _, name = full_method.lstrip("/").rpartition("/")
        labels = (_UNARY, service, name)
        started = self.started.labels(*labels)
        seconds = self.handling_seconds.labels(*labels)
        handled = self.handled

        def counted(request: Any, context: grpc.ServicerContext) -> Any:
            started.inc()
            begin = time.perf_counter()
            failed = True
            try:
                response = behavior(request, context)
                failed = False
                return response
            finally:
                seconds.observe(time.perf_counter() - begin)
                code = context.code()
                # No code set: a normal return is OK; an exception that did not abort is UNKNOWN to the client.
                name = code.name if isinstance(code, grpc.StatusCode) else ("UNKNOWN" if failed else "OK")
                handled.labels(*labels, name).inc()

        return counted


class _MetricsInterceptor(grpc.ServerInterceptor):
    def __init__(self, metrics: RpcMetrics) -> None:
        self._metrics = metrics

    def intercept_service(self, continuation, handler_call_details):  # noqa: ANN001 - grpc's signature
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        return handler._replace(unary_unary=self._metrics.wrap(handler_call_details.method, handler.unary_unary))
