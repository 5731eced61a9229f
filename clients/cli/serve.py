"""``ssald serve``: the gRPC server over a database (:func:`server.app.serve`).

Only argparse is imported at module import, so ``ssald --help`` stays fast and ``ssald serve`` never
loads torch; the server, LanceDB and ONNX Runtime are imported when the command runs.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from clients.cli.args import add_db, add_features, add_model

if TYPE_CHECKING:
    from ssald_index.ann import SearchParams

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "run_serve", "search_params"]

HELP = "serve similarity search over a database (gRPC)"
DESCRIPTION = (
    "Serve the ssald.v1.Ssald gRPC API, with health checking and reflection. Prints "
    "'listening on HOST:PORT' once ready and stops gracefully on SIGINT/SIGTERM."
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
        "--metrics-port", type=int, default=None,
        help="serve Prometheus metrics (requests, latencies, status codes per RPC) at /metrics on this port",
    )  # fmt: skip
    parser.add_argument("--metrics-host", default="127.0.0.1", help="interface of the metrics (default: %(default)s)")
    parser.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    """Handler of ``ssald serve``; returns the process exit code."""
    import logging
    import sys

    from server.app import serve

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        serve(
            args.db, host=args.host, port=args.port, model_path=args.model, grace=args.grace,
            max_workers=args.workers, search_params=search_params(args), refresh_s=args.refresh,
            al_features=args.al_features, metrics_host=args.metrics_host, metrics_port=args.metrics_port,
        )  # fmt: skip
    except OSError as exc:
        print(f"ssald serve: error: {exc}", file=sys.stderr)
        return 1
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
