"""``ssald similar OBJID --server HOST:PORT``: print an object's nearest neighbours as a table.

:func:`format_neighbours` renders the table and is shared with the demo. Module import pulls in argparse
only; the gRPC client is imported when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clients.client import GalaxyObject, Neighbour

__all__ = ["COLUMNS", "add_parsers", "format_neighbours", "run_similar"]

COLUMNS = ("rank", "objid", "distance", "ra", "dec", "z", "spec_class", "bpt_class", "truth_class")
_NUMERIC = frozenset({"rank", "objid", "distance", "ra", "dec", "z"})
# ra/dec to 1e-5 deg (0.04 arcsec, below a pixel); distance and z to 4 decimals.
_FORMATS = {"distance": "{:.4f}", "ra": "{:.5f}", "dec": "{:+.5f}", "z": "{:.4f}"}
_MISSING = "-"
_CLASSES = ("spec_class", "bpt_class", "truth_class")


def _cell(name: str, value: object) -> str:
    if value is None or value == "":
        return _MISSING
    return _FORMATS.get(name, "{}").format(value)


def _describe(query: GalaxyObject | int) -> str:
    if isinstance(query, int):
        return f"neighbours of objid {query}"
    extras = [f"ra={_cell('ra', query.ra)}", f"dec={_cell('dec', query.dec)}", f"z={_cell('z', query.z)}"]
    extras += [f"{name}={_cell(name, getattr(query, name))}" for name in _CLASSES]
    return f"neighbours of objid {query.objid} ({', '.join(extras)})"


def format_neighbours(query: GalaxyObject | int, neighbours: Sequence[Neighbour]) -> str:
    """Render a query and its neighbours as an aligned text table.

    Parameters
    ----------
    query : GalaxyObject or int
        The query object (its coordinates and classes go in the header line) or just its objid.
    neighbours : sequence of Neighbour
        As returned by ``SsaldClient.find_similar``, nearest first.

    Returns
    -------
    str
        A header line, a column-name line and one line per neighbour (rank from 1), without a trailing
        newline. Numbers are right-aligned, text left-aligned, missing values shown as ``-``.
    """
    rows = [
        [str(rank), *(_cell(name, getattr(n, name)) for name in COLUMNS[1:])]
        for rank, n in enumerate(neighbours, start=1)
    ]
    widths = [max([len(name), *(len(row[i]) for row in rows)]) for i, name in enumerate(COLUMNS)]

    def line(cells: Sequence[str]) -> str:
        parts = [c.rjust(w) if name in _NUMERIC else c.ljust(w) for name, c, w in zip(COLUMNS, cells, widths)]
        return "  ".join(parts).rstrip()

    body = [line(COLUMNS), *(line(row) for row in rows)] if rows else ["(no neighbours)"]
    return "\n".join([_describe(query), *body])


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``similar`` subcommand to an ``ssald`` subparsers object."""
    parser = subparsers.add_parser(
        "similar",
        help="nearest neighbours of an object, from a running server",
        description="Print the k nearest neighbours of OBJID in embedding space, asked of `ssald serve`.",
        epilog="Exits 1 with a one-line error if the objid is unknown, k is out of range or the server "
        "cannot be reached in time.",
    )
    parser.add_argument("objid", type=int, help="objid of the query object")
    parser.add_argument("--server", required=True, metavar="HOST:PORT", help="address printed by `ssald serve`")
    parser.add_argument("-k", type=int, default=10, help="number of neighbours, 1..1000 (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per RPC (default: %(default)s)")
    parser.set_defaults(func=run_similar)


def run_similar(args: argparse.Namespace) -> int:
    """Handler of ``ssald similar``; returns the process exit code."""
    from clients.client import SsaldClient
    from clients.errors import SsaldError

    try:
        with SsaldClient(args.server, timeout=args.timeout) as client:
            neighbours = client.find_similar(args.objid, k=args.k)
            query = client.get_object(args.objid)
    except (SsaldError, ValueError) as exc:
        code = getattr(exc, "code", "ERROR")
        message = str(exc).replace("\n", " ")
        print(f"ssald similar: {code}: {message}", file=sys.stderr)
        return 1
    print(format_neighbours(query, neighbours))
    return 0
