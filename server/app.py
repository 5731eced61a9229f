"""Build and run the SSALD gRPC server.

:func:`create_server` builds a server that is not yet started (tests bind ``127.0.0.1:0`` and start it
themselves); :func:`serve` starts one, prints ``listening on HOST:PORT`` and runs until SIGINT/SIGTERM.

Every server also serves standard health checking (``grpc.health.v1``) and reflection. Health has two
entries:

- ``""`` (the process): ``SERVING`` while the server runs;
- ``"ssald.v1.Ssald"`` (readiness): ``SERVING`` once the ``objects`` table is open, ``NOT_SERVING``
  while the database has no table yet. A server started before ingest still starts; its RPCs answer
  ``UNAVAILABLE`` and each health check retries opening the table, so it becomes ready without a
  restart once ingest has written the table.

Both entries turn ``NOT_SERVING`` when :func:`serve` begins its graceful shutdown.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from proto import ssald_pb2
from server import wire
from server.handle import StoreHandle
from server.log_limits import limit_log_rate
from server.metrics import RpcMetrics
from server.service import SsaldServicer
from ssald_index.ann import SearchParams

__all__ = ["SERVICE_NAME", "create_server", "serve"]

log = logging.getLogger(__name__)

SERVICE_NAME: str = ssald_pb2.DESCRIPTOR.services_by_name["Ssald"].full_name


class _ReadinessHealth(health.HealthServicer):
    """Health servicer whose ``Check`` first retries opening the table, so readiness follows it."""

    def __init__(self, handle: StoreHandle) -> None:
        super().__init__()
        self._handle = handle

    def Check(self, request: health_pb2.HealthCheckRequest, context: grpc.ServicerContext):  # noqa: N802
        try:
            self._handle.try_open()
        except Exception:  # noqa: BLE001 - a broken table is NOT_SERVING, not a failed health check
            log.exception("cannot open the objects table")
        return super().Check(request, context)


def _load_embedder(model_path: str | os.PathLike[str]) -> Any:
    # Imported here so a server without --model never loads onnxruntime; the ONNX path never imports torch.
    from encoders.embedder import OnnxEmbedder

    return OnnxEmbedder(model_path)


def _warn_on_model_mismatch(
    model_path: str | os.PathLike[str], model_id: str | None, table_model_id: str | None
) -> None:
    if model_id and table_model_id and model_id != table_model_id:
        log.warning(
            "model %s has model_id %r but the table's embeddings come from %r: "
            "image queries would be embedded in a different space",
            os.fspath(model_path),
            model_id,
            table_model_id,
        )


def _build(
    db_path: str | os.PathLike[str],
    address: str,
    model_path: str | os.PathLike[str] | None,
    max_workers: int,
    search_params: SearchParams | None = None,
    refresh_s: float = 10.0,
    al_features: str = "embedding",
    metrics: RpcMetrics | None = None,
) -> tuple[grpc.Server, int, health.HealthServicer]:
    embedder = _load_embedder(model_path) if model_path is not None else None
    health_servicer: _ReadinessHealth

    def on_ready(store: Any) -> None:
        health_servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
        if embedder is not None:
            _warn_on_model_mismatch(model_path, getattr(embedder, "model_id", None), handle.model_id or None)

    handle = StoreHandle(db_path, on_ready=on_ready, search_params=search_params, refresh_s=refresh_s)
    health_servicer = _ReadinessHealth(handle)
    health_servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.NOT_SERVING)
    if not handle.try_open():
        log.warning("database %s has no objects table yet: answering UNAVAILABLE until it appears", db_path)

    interceptors = [metrics.interceptor] if metrics is not None else []
    # SO_REUSEPORT off: a second server on an explicit, busy port must fail rather than share it.
    options = [("grpc.so_reuseport", 0)]
    pool = futures.ThreadPoolExecutor(max_workers=max_workers)
    server = grpc.server(pool, options=options, interceptors=interceptors)
    wire.add_servicer(SsaldServicer(handle, embedder, al_features), server)  # undecodable: INVALID_ARGUMENT
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise OSError(f"cannot listen on {address!r}: {exc}") from exc
    if port == 0:
        raise OSError(f"cannot listen on {address!r}")
    return server, port, health_servicer


def create_server(
    db_path: str | os.PathLike[str],
    address: str = "127.0.0.1:0",
    model_path: str | os.PathLike[str] | None = None,
    max_workers: int = 8,
    search_params: SearchParams | None = None,
    refresh_s: float = 10.0,
    al_features: str = "embedding",
    metrics: RpcMetrics | None = None,
) -> tuple[grpc.Server, int]:
    """Build an SSALD server bound to ``address``, not yet started.

    Parameters
    ----------
    db_path : path
        LanceDB database directory. If it has no ``objects`` table yet the server is built anyway and
        answers ``UNAVAILABLE`` (health ``NOT_SERVING`` for ``ssald.v1.Ssald``) until the table appears.
    address : str
        ``HOST:PORT`` to bind; port 0 picks a free port.
    model_path : path, optional
        ONNX encoder, loaded with ``encoders.embedder.OnnxEmbedder`` for the image RPCs; a warning is
        logged if its model_id differs from the table's.
    max_workers : int
        Threads serving RPCs concurrently.
    search_params : SearchParams, optional
        ANN query parameters (default :class:`ssald_index.ann.SearchParams`).
    refresh_s : float
        Seconds between checks for a newer table version (new ingests, scores); 0 serves one version.
    al_features : {"embedding", "morphology", "embedding+morphology"}
        What the active-learning classifiers see (:class:`ssald_index.active.session.ActiveLearning`).
    metrics : RpcMetrics, optional
        Where to count and time every RPC (:mod:`server.metrics`); none are recorded without it.

    Returns
    -------
    server : grpc.Server
        Call ``server.start()``, and ``server.stop(grace)`` when done.
    port : int
        The bound port.

    Raises
    ------
    OSError
        If ``address`` cannot be bound.
    """
    server, port, _ = _build(db_path, address, model_path, max_workers, search_params, refresh_s, al_features, metrics)
    return server, port


def _format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def serve(
    db_path: str | os.PathLike[str],
    host: str = "127.0.0.1",
    port: int = 0,
    model_path: str | os.PathLike[str] | None = None,
    grace: float = 5.0,
    max_workers: int = 8,
    search_params: SearchParams | None = None,
    refresh_s: float = 10.0,
    al_features: str = "embedding",
    metrics_host: str = "127.0.0.1",
    metrics_port: int | None = None,
) -> None:
    """Run the server until SIGINT or SIGTERM, then stop gracefully.

    Prints exactly one line ``listening on HOST:PORT`` to stdout once the server accepts RPCs (scripts
    parse it to find a port picked with ``port=0``) and, after shutdown, one line ``stopped (SIGNAL)``.
    Call from the main thread (signal handlers can only be installed there).

    Parameters
    ----------
    db_path, model_path, max_workers, search_params, refresh_s, al_features
        As for :func:`create_server`.
    host : str
        Interface to bind; ``0.0.0.0`` for all.
    port : int
        Port; 0 picks a free one.
    grace : float
        Seconds in-flight RPCs get to finish after the signal; new RPCs are refused at once.
    metrics_host, metrics_port : str, int, optional
        Serve Prometheus metrics (:mod:`server.metrics`) at ``http://HOST:PORT/metrics``; none by default.

    The log is rate-limited (:func:`server.log_limits.limit_log_rate`): a message repeated by every
    request of a flood is written a few times a minute with a count of the rest.
    """
    from threadpoolctl import threadpool_limits

    # The server answers many small queries at once from several threads: BLAS threads inside each kNN
    # scan only contend and spin, and one per scan serves more queries a second (docs/BENCHMARKS.md).
    threadpool_limits(1, user_api="blas")
    limit_log_rate()
    metrics = RpcMetrics() if metrics_port is not None else None
    server, bound, health_servicer = _build(
        db_path, _format_address(host, port), model_path, max_workers, search_params, refresh_s, al_features, metrics
    )
    endpoint = metrics.serve_http(metrics_host, metrics_port) if metrics is not None else None
    if endpoint is not None:
        log.info("metrics at %s", endpoint.url)
    received: list[int] = []
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        received.append(signum)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        print(f"listening on {_format_address(host, bound)}", flush=True)
        stop.wait()
        health_servicer.enter_graceful_shutdown()
        server.stop(grace).wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if endpoint is not None:
            endpoint.close()
    print(f"stopped ({signal.Signals(received[0]).name})", flush=True)
