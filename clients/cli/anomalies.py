"""``ssald anomalies --server HOST:PORT``: the most anomalous objects (highest stored density scores), as a table.

Takes the same metadata prefilters and ``--out FILE`` as ``ssald similar``. Module import pulls in argparse
only; the gRPC client is imported when the command runs.
"""

from __future__ import annotations

import argparse

from clients.cli.args import add_metadata_filters, add_server, add_timeout, ask_server, metadata_filters, write_out
from clients.cli.similar import MISSING

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "run_anomalies"]

HELP = "the most anomalous (lowest-density) objects, from a running server"
DESCRIPTION = "Print the N objects with the highest stored density scores that pass the filter."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``ssald anomalies``; it runs :func:`run_anomalies`."""
    add_server(parser)
    parser.add_argument("-n", type=int, default=20, help="number of objects, 1..1000 (default: %(default)s)")
    add_timeout(parser)
    add_metadata_filters(parser)
    parser.set_defaults(func=run_anomalies)


def run_anomalies(args: argparse.Namespace) -> int:
    """Handler of ``ssald anomalies``; returns the process exit code."""
    found = ask_server(args, "anomalies", lambda client: client.anomalies(args.n, **metadata_filters(args)))
    if found is None:
        return 1
    print(f"{'rank':>4}  {'objid':>19}  {'score':>8}  truth_class")
    for rank, obj in enumerate(found, start=1):
        print(f"{rank:>4}  {obj.objid:>19}  {obj.density_score:>8.4f}  {obj.truth_class or MISSING}")
    return write_out(args, found)
