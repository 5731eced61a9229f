"""``ssald web --server HOST:PORT``: the HTTP API, the IVOA cone search and SAMP over a running server.

The app (:mod:`clients.web`) talks to ``ssald serve`` through the Python client, so it can run on a
laptop against a remote server. It listens on 127.0.0.1 unless told otherwise; beyond loopback it needs
a token (labelling then needs it too) or ``--insecure``. Only argparse loads at import time.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from clients.cli.args import add_server, add_timeout, connect, read_token

__all__ = [
    "DESCRIPTION",
    "HELP",
    "add_arguments",
    "add_web_flags",
    "run_web",
    "start_web",
    "web_options",
]

HELP = "HTTP API (JSON, CSV, VOTable, FITS, Parquet), IVOA cone search and SAMP over a running server"
DESCRIPTION = (
    "Serve the SSALD HTTP API over a running `ssald serve`: /api/... (OpenAPI reference at /docs), the IVOA "
    "Simple Cone Search at /scs for TOPCAT and Aladin, and SAMP sends. Prints 'web on http://HOST:PORT/' once "
    "ready and stops on SIGINT/SIGTERM."
)


def add_web_flags(parser: argparse.ArgumentParser) -> None:
    """``--max-upload-mb``, ``--crossmatch``: the flags the web app takes in ``ssald web`` and ``ssald serve --web``."""
    parser.add_argument(
        "--max-upload-mb", type=float, default=4.0,
        help="largest image upload, MB; larger ones get 413 (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--crossmatch", type=Path, default=None, metavar="FILE",
        help="reference catalogue (CSV, FITS, VOTable…; e.g. GOTHIC) that candidate lists are cross-matched "
        "against, by objid and by position",
    )  # fmt: skip
    parser.add_argument(
        "--crossmatch-radius", type=float, default=2.0, help="position match radius, arcsec (default: %(default)s)"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``ssald web``; it runs :func:`run_web`."""
    add_server(parser)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8080, help="port; 0 picks a free one (default: %(default)s)")
    parser.add_argument(
        "--insecure", action="store_true", help="allow listening beyond loopback without a token (read-only)"
    )
    add_timeout(parser, 30.0)
    add_web_flags(parser)
    parser.set_defaults(func=run_web)


def web_options(args: argparse.Namespace, exposed: bool, token: str | None) -> Any:
    """The :class:`clients.web.WebOptions` of the web flags: the cross-match catalogue read, the upload limit
    checked, so that a bad flag ends the command before anything starts.

    Raises
    ------
    ValueError
        The catalogue cannot be read or has no usable columns, or a limit or radius is not positive (the
        message is one line).
    """
    from clients.web import WebOptions
    from clients.web.crossmatch import Reference

    if not args.max_upload_mb > 0:
        raise ValueError(f"--max-upload-mb must be positive, got {args.max_upload_mb!r}")
    reference = None if args.crossmatch is None else Reference.read(args.crossmatch, args.crossmatch_radius)
    return WebOptions(
        max_upload_bytes=int(args.max_upload_mb * 1_000_000), exposed=exposed, token=token, reference=reference
    )


def start_web(client: Any, options: Any, host: str, port: int) -> Any:
    """Start the web app over ``client`` with ``options`` (:func:`web_options`) on ``host:port`` in a thread;
    prints its URL and returns the :class:`clients.web.WebServer` (stop it when done)."""
    from clients.web import WebServer, create_app

    web = WebServer(create_app(client, options), host=host, port=port)
    print(f"web on {web.start()}/", flush=True)
    return web


def run_web(args: argparse.Namespace) -> int:
    """Handler of ``ssald web``; returns the process exit code."""
    import sys

    from clients.web import check_exposure
    from server.signals import stop_signals

    token = read_token(args)  # the gRPC token (--token-file, $SSALD_TOKEN_FILE, $SSALD_TOKEN) guards labelling too
    # A bad flag (an address beyond loopback without a token, an unreadable catalogue) raises ValueError here,
    # before the server is called: the command line prints it as one line and exits 2.
    options = web_options(args, check_exposure(args.host, args.insecure, token), token)
    with connect(args) as client:
        try:
            web = start_web(client, options, args.host, args.port)
        except OSError as exc:
            print(f"ssald web: error: {exc}", file=sys.stderr)
            return 1
        with stop_signals() as wait:
            name = wait()
        web.stop()
    print(f"stopped ({name})", flush=True)
    return 0
