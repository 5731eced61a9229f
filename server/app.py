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

Who may call and how much is accepted come from :class:`server.options.ServerOptions`: with a token, the
write RPCs (or all of them) need it (:class:`server.auth.TokenAuth`); a server without a token refuses to
listen beyond loopback unless told ``insecure``; TLS (and client certificates) when given a certificate.
With ``read_only`` the server is a replica (:mod:`server.replica`): it answers the RPCs that write with
``FAILED_PRECONDITION`` and, like every server, follows the writer's new table versions every ``refresh_s``.
Message sizes are limited both ways, and RPCs in flight beyond ``max_concurrent_rpcs`` are answered
``RESOURCE_EXHAUSTED`` at once instead of queueing without bound.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from proto import ssald_pb2
from server import wire
from server.auth import TokenAuth
from server.handle import StoreHandle
from server.log_limits import limit_log_rate
from server.metrics import RpcMetrics
from server.options import Security, ServerOptions, is_loopback
from server.replica import WRITE_METHODS as REPLICA_REFUSES
from server.replica import ReadOnlyInterceptor
from server.service import SsaldServicer
from server.signals import stop_signals

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


def _read_pem(path: str | os.PathLike[str], what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise OSError(f"cannot read the {what} {os.fspath(path)!r}: {exc.strerror or exc}") from None


def _credentials(security: Security) -> grpc.ServerCredentials:
    client_ca = _read_pem(security.tls_client_ca, "TLS client CA") if security.tls_client_ca is not None else None
    pair = (_read_pem(security.tls_key, "TLS private key"), _read_pem(security.tls_cert, "TLS certificate"))
    return grpc.ssl_server_credentials([pair], root_certificates=client_ca, require_client_auth=client_ca is not None)


def _listen(server: grpc.Server, address: str, security: Security) -> int:
    if security.token is not None and not security.tls and not is_loopback(address.rsplit(":", 1)[0]):
        log.warning("listening on %s without TLS: bearer tokens cross the network in clear text", address)
    credentials = _credentials(security) if security.tls else None
    try:
        if credentials is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, credentials)
    except RuntimeError as exc:
        raise OSError(f"cannot listen on {address!r}: {exc}") from exc
    if port == 0:
        raise OSError(f"cannot listen on {address!r}")
    return port


def _build(
    db_path: str | os.PathLike[str], address: str, options: ServerOptions
) -> tuple[grpc.Server, int, health.HealthServicer]:
    security, limits = options.security, options.limits
    security.check_bind(address.rsplit(":", 1)[0])  # before anything is loaded
    embedder = _load_embedder(options.model_path) if options.model_path is not None else None
    health_servicer: _ReadinessHealth

    def on_ready(store: Any) -> None:
        health_servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
        if embedder is not None:
            model_id = getattr(embedder, "model_id", None)
            _warn_on_model_mismatch(options.model_path, model_id, handle.model_id or None)

    handle = StoreHandle(db_path, on_ready=on_ready, search_params=options.search_params, refresh_s=options.refresh_s)
    health_servicer = _ReadinessHealth(handle)
    health_servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.NOT_SERVING)
    if not handle.try_open():
        log.warning("database %s has no objects table yet: answering UNAVAILABLE until it appears", db_path)

    interceptors: list[grpc.ServerInterceptor] = [] if options.metrics is None else [options.metrics.interceptor]
    if security.token is not None:
        interceptors.append(TokenAuth(security.token, security.read_token, security.auth))
    if options.read_only:
        log.info("read-only replica: refusing %s with FAILED_PRECONDITION", ", ".join(sorted(REPLICA_REFUSES)))
        interceptors.append(ReadOnlyInterceptor())
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=options.max_workers),
        interceptors=interceptors,
        # SO_REUSEPORT off: a second server on an explicit, busy port must fail rather than share it.
        options=[("grpc.so_reuseport", 0), *limits.channel_options()],
        maximum_concurrent_rpcs=limits.max_concurrent_rpcs,
    )
    # Undecodable requests answer INVALID_ARGUMENT (server.wire), not grpcio's logged INTERNAL.
    wire.add_servicer(SsaldServicer(handle, embedder, options.al_features), server)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    return server, _listen(server, address, security), health_servicer


def create_server(
    db_path: str | os.PathLike[str],
    address: str = "127.0.0.1:0",
    options: ServerOptions | None = None,
    **fields: Any,
) -> tuple[grpc.Server, int]:
    """Build an SSALD server bound to ``address``, not yet started.

    Parameters
    ----------
    db_path : path
        LanceDB database directory. If it has no ``objects`` table yet the server is built anyway and
        answers ``UNAVAILABLE`` (health ``NOT_SERVING`` for ``ssald.v1.Ssald``) until the table appears.
    address : str
        ``HOST:PORT`` to bind; port 0 picks a free port.
    options : ServerOptions, optional
        The model, workers, search parameters, security and limits (default :class:`ServerOptions`).
    **fields
        Fields of :class:`ServerOptions` that replace those of ``options`` (``model_path=...``,
        ``max_workers=...``, ``security=Security(token=...)``).

    Returns
    -------
    server : grpc.Server
        Call ``server.start()``, and ``server.stop(grace)`` when done.
    port : int
        The bound port.

    Raises
    ------
    OSError
        If ``address`` cannot be bound, or a TLS file cannot be read.
    InsecureBind
        ``address`` lies beyond loopback and neither a token nor ``insecure`` is configured.
    """
    server, port, _ = _build(db_path, address, dataclasses.replace(options or ServerOptions(), **fields))
    return server, port


def _format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def serve(
    db_path: str | os.PathLike[str],
    host: str = "127.0.0.1",
    port: int = 0,
    grace: float = 5.0,
    options: ServerOptions | None = None,
    on_listening: Callable[[str], Any] | None = None,
    metrics_host: str = "127.0.0.1",
    metrics_port: int | None = None,
    **fields: Any,
) -> None:
    """Run the server until SIGINT or SIGTERM, then stop gracefully.

    Prints exactly one line ``listening on HOST:PORT`` to stdout once the server accepts RPCs (scripts
    parse it to find a port picked with ``port=0``) and, after shutdown, one line ``stopped (SIGNAL)``.
    Call from the main thread (signal handlers can only be installed there).

    Parameters
    ----------
    db_path, options, **fields
        As for :func:`create_server`.
    host : str
        Interface to bind; ``0.0.0.0`` for all (then a token, or ``Security(insecure=True)``, is required).
    port : int
        Port; 0 picks a free one.
    grace : float
        Seconds in-flight RPCs get to finish after the signal; new RPCs are refused at once.
    on_listening : callable, optional
        Called with ``HOST:PORT`` once the server accepts RPCs (``ssald serve --web`` starts its web app there).
    metrics_host, metrics_port : str, int, optional
        Serve Prometheus metrics (:mod:`server.metrics`) at ``http://HOST:PORT/metrics``; none by default.

    The log is rate-limited (:func:`server.log_limits.limit_log_rate`): a message repeated by every
    request of a flood is written a few times a minute with a count of the rest, written when each interval
    ends and, for the last one, when the server stops.
    """
    from threadpoolctl import threadpool_limits

    options = dataclasses.replace(options or ServerOptions(), **fields)
    # The server answers many small queries at once from several threads: BLAS threads inside each kNN
    # scan only contend and spin, and one per scan serves more queries a second (docs/BENCHMARKS.md).
    threadpool_limits(1, user_api="blas")
    log_filters = limit_log_rate()
    if metrics_port is not None and options.metrics is None:
        options = dataclasses.replace(options, metrics=RpcMetrics())
    server, bound, health_servicer = _build(db_path, _format_address(host, port), options)
    endpoint = options.metrics.serve_http(metrics_host, metrics_port) if metrics_port is not None else None
    if endpoint is not None:
        log.info("metrics at %s", endpoint.url)
    try:
        with stop_signals() as wait:
            server.start()
            print(f"listening on {_format_address(host, bound)}", flush=True)
            if on_listening is not None:
                on_listening(_format_address(host, bound))
            name = wait()
            health_servicer.enter_graceful_shutdown()
            server.stop(grace).wait()
    finally:
        if endpoint is not None:
            endpoint.close()
        for log_filter in log_filters:  # the counts of floods whose interval has not ended yet
            log_filter.flush(everything=True)
    print(f"stopped ({name})", flush=True)
