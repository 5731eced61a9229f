"""``ssald anomalies --server HOST:PORT``: the most anomalous objects (highest stored density scores), as a table.

Takes the same metadata prefilters and ``--out FILE`` as ``ssald similar``. Module import pulls in argparse
only; the gRPC client is imported when the command runs.
"""

from __future__ import annotations

import argparse

from clients.cli.args import (
    add_metadata_filters,
    add_out,
    add_server,
    add_timeout,
    metadata_filters,
    print_rpc_error,
    write_out,
)
from clients.cli.similar import MISSING

__all__ = ["add_parsers", "run_anomalies"]


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``anomalies`` subcommand."""
    anomalies = subparsers.add_parser(
        "anomalies",
        help="the most anomalous (lowest-density) objects, from a running server",
        description="Print the N objects with the highest stored density scores that pass the filter.",
    )
    add_server(anomalies)
    anomalies.add_argument("-n", type=int, default=20, help="number of objects, 1..1000 (default: %(default)s)")
    add_timeout(anomalies)
    add_metadata_filters(anomalies)
    add_out(anomalies, "also write the result to .parquet/.csv/.fits/.vot", as_path=False)
    anomalies.set_defaults(func=run_anomalies)


def run_anomalies(args: argparse.Namespace) -> int:
    """Handler of ``ssald anomalies``; returns the process exit code."""
    from clients.client import SsaldClient
    from clients.errors import SsaldError

    try:
        with SsaldClient(args.server, timeout=args.timeout) as client:
            found = client.anomalies(args.n, **metadata_filters(args))
    except (SsaldError, ValueError) as exc:
        return print_rpc_error("anomalies", exc)
    print(f"{'rank':>4}  {'objid':>19}  {'score':>8}  truth_class")
    for rank, obj in enumerate(found, start=1):
        print(f"{rank:>4}  {obj.objid:>19}  {obj.density_score:>8.4f}  {obj.truth_class or MISSING}")
    return write_out(args, found)
