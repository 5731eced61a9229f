"""``ssald serve``: the gRPC server over a database (:func:`server.app.serve`).

Only argparse is imported at module import, so ``ssald --help`` stays fast and ``ssald serve`` never
loads torch; the server, LanceDB and ONNX Runtime are imported when the command runs.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from clients.cli.args import add_db, add_features, add_model, add_token_file, read_secret, read_token
from clients.cli.web import add_web_flags, web_options

if TYPE_CHECKING:
    from server.options import ServerOptions
    from ssald_index.ann import SearchParams

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "run_serve", "search_params", "server_options"]

HELP = "serve similarity search over a database (gRPC)"
DESCRIPTION = (
    "Serve the ssald.v1.Ssald gRPC API, with health checking and reflection. Prints "
    "'listening on HOST:PORT' once ready and stops gracefully on SIGINT/SIGTERM. With a token (--token-file, "
    "$SSALD_TOKEN_FILE or $SSALD_TOKEN) writes need it; without one it refuses to listen beyond loopback "
    "unless given --insecure."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``ssald serve``; it runs :func:`run_serve`."""
    add_db(parser, "LanceDB database directory (written by `ssald ingest`)", as_path=False)
    add_model(parser, "ONNX encoder for image queries (optional)", as_path=False)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one (default: %(default)s)")
    parser.add_argument(
        "--grace", type=float, default=5.0,
        help="seconds in-flight RPCs get to finish at shutdown (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument("--workers", type=int, default=8, help="RPC worker threads (default: %(default)s)")
    parser.add_argument(
        "--nprobes", type=int, default=None, help="IVF partitions per query (default 1%% of ~sqrt(rows), >= 10)"
    )
    parser.add_argument(
        "--refine-factor", type=int, default=None, help="exact re-rank of refine_factor*k candidates (default 4)"
    )
    parser.add_argument(
        "--rerank", choices=("memory", "lance"), default=None,
        help="re-rank from embeddings kept in memory (4*D bytes per object, faster) or by Lance (default memory)",
    )  # fmt: skip
    parser.add_argument(
        "--scan",
        choices=("auto", "memory", "lance"),
        default=None,
        help="with --rerank memory, unfiltered queries scan the IVF partitions in the server's copy of the "
        "embeddings or ask Lance's index; auto: memory while a query's expected scan is at most 64M floats, "
        "e.g. at 1M and 10M rows with an index, not a large table without one (default auto; filtered queries "
        "always ask Lance)",
    )
    parser.add_argument(
        "--refresh", type=float, default=10.0,
        help="seconds between checks for new table versions; 0 serves one version (default: %(default)s)",
    )  # fmt: skip
    add_features(
        parser,
        "--al-features",
        help="what active-learning classifiers see: the embedding, the morph_* columns or both (default embedding)",
    )
    parser.add_argument(
        "--read-only", action="store_true",
        help="serve as a read-only replica of a database another `ssald serve` (the writer) takes labels for: "
        "SubmitLabels answers FAILED_PRECONDITION and nothing is written to the database",
    )  # fmt: skip
    parser.add_argument(
        "--web", type=int, default=None, metavar="PORT",
        help="also serve the HTTP API (`ssald web`) on 127.0.0.1:PORT in this process, with this server's token; "
        "0 picks a free port",
    )  # fmt: skip
    add_web_flags(parser)
    _add_security(parser.add_argument_group("security"))
    limits = parser.add_argument_group("limits")
    limits.add_argument(
        "--max-concurrent-rpcs", type=int, default=64,
        help="RPCs in flight (running or waiting for a worker); more are refused with RESOURCE_EXHAUSTED "
        "(default: %(default)s)",
    )  # fmt: skip
    limits.add_argument(
        "--max-request-mib", type=int, default=65,
        help="largest request in MiB, e.g. an uploaded stamp (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--metrics-port", type=int, default=None,
        help="serve Prometheus metrics (requests, latencies, status codes per RPC) at /metrics on this port",
    )  # fmt: skip
    parser.add_argument("--metrics-host", default="127.0.0.1", help="interface of the metrics (default: %(default)s)")
    parser.set_defaults(func=run_serve)


def _add_security(group: argparse._ActionsContainer) -> None:
    add_token_file(group, "file holding the token of full rights (default: $SSALD_TOKEN_FILE, else $SSALD_TOKEN)")
    add_token_file(
        group, "file holding a read-only token: reads, never writes (default: $SSALD_READ_TOKEN)", "--read-token-file"
    )
    group.add_argument(
        "--auth", choices=("writes", "all"), default="writes",
        help="what needs the token: the write RPCs, or every RPC (health checks stay open) (default: %(default)s)",
    )  # fmt: skip
    group.add_argument(
        "--insecure", action="store_true",
        help="listen beyond loopback without a token: anyone who reaches the port can write labels",
    )  # fmt: skip
    group.add_argument("--tls-cert", default=None, metavar="PEM", help="server certificate chain: serve TLS")
    group.add_argument("--tls-key", default=None, metavar="PEM", help="private key of --tls-cert")
    group.add_argument(
        "--tls-client-ca", default=None, metavar="PEM", help="require client certificates signed by these CAs"
    )


def run_serve(args: argparse.Namespace) -> int:
    """Handler of ``ssald serve``; returns the process exit code."""
    import logging
    import sys

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stops: list = []  # what --web started, to stop after the server
    try:
        options = server_options(args)  # a refused bind or a bad flag ends here, before LanceDB is imported
        if args.web is not None and options.security.tls:
            raise ValueError("--web with --tls-cert: run `ssald web --server HOST:PORT --ca-file PEM` beside it")
        # The web flags (the cross-match catalogue) are read before the server starts: a bad one ends here.
        web = None if args.web is None else web_options(args, exposed=False, token=None)
        from server.app import serve

        def start_web_app(address: str) -> None:
            # ssald serve --web PORT: the web app on loopback, through a client of this very server that holds
            # the server's own token (so labelling from the page is allowed exactly when the page is local).
            from clients.cli.web import start_web
            from clients.client import SsaldClient

            local = address.replace("0.0.0.0", "127.0.0.1").replace("[::]", "[::1]")
            client = SsaldClient(local, timeout=30.0, token=options.security.token)
            stops.append(client.close)
            stops.insert(0, start_web(client, web, "127.0.0.1", args.web).stop)

        serve(
            args.db, host=args.host, port=args.port, grace=args.grace, options=options,
            on_listening=start_web_app if args.web is not None else None,
            metrics_host=args.metrics_host, metrics_port=args.metrics_port,
        )  # fmt: skip
    except (OSError, ValueError) as exc:
        print(f"ssald serve: error: {exc}", file=sys.stderr)
        return 1
    finally:
        for stop in stops:
            stop()
    return 0


def search_params(args: argparse.Namespace) -> SearchParams:
    """The :class:`~ssald_index.ann.SearchParams` that ``ssald serve``'s flags describe (defaults where not given)."""
    from ssald_index.ann import SearchParams

    defaults = SearchParams()
    return SearchParams(
        nprobes=args.nprobes if args.nprobes is not None else defaults.nprobes,
        refine_factor=args.refine_factor if args.refine_factor is not None else defaults.refine_factor,
        rerank=args.rerank if args.rerank is not None else defaults.rerank,
        scan=args.scan if args.scan is not None else defaults.scan,
    )


def server_options(args: argparse.Namespace) -> ServerOptions:
    """The :class:`~server.options.ServerOptions` of ``ssald serve``'s flags, tokens read from their files or
    the environment.

    Raises
    ------
    OSError
        A token file cannot be read.
    ValueError
        Contradictory flags (``--auth all`` without a token, ``--tls-cert`` without ``--tls-key`` ...).
    server.options.InsecureBind
        ``--host`` lies beyond loopback without a token or ``--insecure``: checked before the server, LanceDB
        and the model are loaded.
    """
    from server.options import Limits, Security, ServerOptions

    security = Security(
        token=read_token(args),
        read_token=read_secret(args.read_token_file, "SSALD_READ_TOKEN", "read token"),
        auth=args.auth,
        insecure=args.insecure,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_client_ca=args.tls_client_ca,
    )
    security.check_bind(args.host)
    limits = Limits(max_concurrent_rpcs=args.max_concurrent_rpcs, max_receive_bytes=args.max_request_mib * 2**20)
    return ServerOptions(
        model_path=args.model,
        max_workers=args.workers,
        search_params=search_params(args),
        refresh_s=args.refresh,
        al_features=args.al_features,
        security=security,
        limits=limits,
        read_only=args.read_only,
    )
