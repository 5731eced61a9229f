"""``ssald similar OBJID --server HOST:PORT``: the nearest neighbours of an object, as a table.

``ssald similar --batch FILE`` asks for many at once (one streamed call): FILE holds one input a line, an
objid or ``RA DEC`` in degrees (space- or comma-separated; blank lines and ``#`` comments skipped); each
input's table follows in file order, and an input that fails prints one line to stderr instead.
Takes the metadata prefilters (``--z-min``, ``--spec-class`` …) and ``--out FILE`` to also write the
result as Parquet, CSV, FITS or VOTable (:mod:`clients.tables`). :func:`format_neighbours` renders the
table and is shared with the demo. Module import pulls in argparse only; the gRPC client is imported
when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from clients.cli.args import (
    add_exclude_radius,
    add_k,
    add_metadata_filters,
    add_server,
    add_timeout,
    ask_server,
    metadata_filters,
    write_out,
)

if TYPE_CHECKING:
    from clients.client import GalaxyObject, Neighbour, SsaldClient

__all__ = [
    "COLUMNS",
    "DESCRIPTION",
    "EPILOG",
    "HELP",
    "MISSING",
    "add_arguments",
    "format_neighbours",
    "read_batch_file",
    "run_similar",
]

HELP = "nearest neighbours of an object, from a running server"
DESCRIPTION = (
    "Print the k nearest neighbours of OBJID in embedding space, asked of `ssald serve`; with --batch FILE, "
    "of every objid or 'RA DEC' line of FILE (one streamed call, at most 10,000 inputs)."
)
EPILOG = (
    "Exits 1 with a one-line error if the objid is unknown, k is out of range, the metric label has "
    "too few labels, the table has no morphology for --space or the server cannot be reached in time. "
    "With --batch, each failed input prints 'ssald similar: line N: CODE: message' and the exit code is 1."
)

COLUMNS = ("rank", "objid", "distance", "ra", "dec", "z", "spec_class", "bpt_class", "truth_class")
_NUMERIC = frozenset({"rank", "objid", "distance", "ra", "dec", "z"})
# ra/dec to 1e-5 deg (0.04 arcsec, below a pixel); distance and z to 4 decimals.
_FORMATS = {"distance": "{:.4f}", "ra": "{:.5f}", "dec": "{:+.5f}", "z": "{:.4f}"}
#: How a missing value is shown.
MISSING = "-"
_CLASSES = ("spec_class", "bpt_class", "truth_class")


def _cell(name: str, value: object) -> str:
    if value is None or value == "":
        return MISSING
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``ssald similar``; it runs :func:`run_similar`."""
    parser.add_argument("objid", type=int, nargs="?", help="objid of the query object (or give --batch)")
    add_server(parser)
    batch = parser.add_argument_group("batch")
    batch.add_argument(
        "--batch", default=None, metavar="FILE",
        help="many queries: one objid or 'RA DEC' (degrees) a line; '#' comments and blank lines skipped",
    )  # fmt: skip
    batch.add_argument(
        "--radius", type=float, default=3.0, metavar="ARCSEC",
        help="match radius of the RA DEC lines of --batch (default: %(default)s)",
    )  # fmt: skip
    add_k(parser, help="number of neighbours, 1..1000 (default: %(default)s)")
    add_timeout(parser)
    add_exclude_radius(parser, "arcsec around the query whose objects are left out")
    metric = parser.add_argument_group("learned metric (from the labels of one class)")
    metric.add_argument(
        "--metric-label", default="", metavar="LABEL",
        help="rank neighbours in a metric learned from LABEL's labels (distance: Euclidean there)",
    )  # fmt: skip
    metric.add_argument(
        "--metric-kind", default="", metavar="KIND",
        help="how the metric is learned: probe (default), nca or head; the server checks the name",
    )  # fmt: skip
    space = parser.add_argument_group("search space")
    space.add_argument(
        "--space",
        default="",
        metavar="SPACE",
        help="embedding (default: cosine), morphology (the standardised morph_* columns) or embedding+morphology "
        "(both; with --metric-label the metric learns from both); Euclidean in the morphology spaces",
    )
    space.add_argument(
        "--morphology-weight", type=float, default=None, metavar="W",
        help="weight of the morphology part of embedding+morphology, in (0, 10] (default: 1, equal weight)",
    )  # fmt: skip
    add_metadata_filters(parser)
    parser.set_defaults(func=run_similar)


def read_batch_file(path: str) -> list[tuple[int, int | tuple[float, float]]]:
    """The inputs of a ``--batch`` file: ``(line number, objid or (ra, dec))`` in file order.

    Raises
    ------
    ValueError
        A line that is neither an integer objid nor two numbers, naming the file and the line.
    """
    inputs: list[tuple[int, int | tuple[float, float]]] = []
    with open(path) as fh:
        for number, line in enumerate(fh, start=1):
            fields = line.split("#", 1)[0].replace(",", " ").split()
            try:
                if len(fields) == 1:
                    inputs.append((number, int(fields[0])))
                elif len(fields) == 2:
                    inputs.append((number, (float(fields[0]), float(fields[1]))))
                elif fields:
                    raise ValueError(f"{len(fields)} fields")
            except ValueError as exc:
                message = f"{path} line {number}: expected an objid or 'RA DEC', got {line.strip()!r} ({exc})"
                raise ValueError(message) from None
    return inputs


def _run_batch(args: argparse.Namespace, search: dict) -> int:
    try:
        inputs = read_batch_file(args.batch)
    except (OSError, ValueError) as exc:
        print(f"ssald similar: {exc}", file=sys.stderr)
        return 1
    # The call takes the objids first, then the positions: map each result back to its line.
    lines = [n for n, v in inputs if isinstance(v, int)] + [n for n, v in inputs if not isinstance(v, int)]
    objids = [v for _, v in inputs if isinstance(v, int)]
    positions = [v for _, v in inputs if not isinstance(v, int)]

    def ask(client: SsaldClient) -> int:
        failed = 0
        for result in client.find_similar_batch(objids, positions, radius_arcsec=args.radius, **search):
            if result.error is not None:
                failed += 1
                where = f"line {lines[result.index]}"
                print(f"ssald similar: {where}: {result.error.code}: {result.error}", file=sys.stderr)
            else:
                print(format_neighbours(result.match or result.objid, result.neighbours), end="\n\n")
        return failed

    failed = ask_server(args, "similar", ask)
    return 0 if failed == 0 else 1


def run_similar(args: argparse.Namespace) -> int:
    """Handler of ``ssald similar``; returns the process exit code."""
    search = dict(
        k=args.k, exclude_radius_arcsec=args.exclude_radius, metric_label=args.metric_label,
        metric_kind=args.metric_kind, space=args.space, morphology_weight=args.morphology_weight,
        **metadata_filters(args),
    )  # fmt: skip
    if (args.objid is None) == (args.batch is None):
        print("ssald similar: give an OBJID or --batch FILE (not both)", file=sys.stderr)
        return 1
    if args.batch is not None:
        if args.out:
            print("ssald similar: --out is for one query; --batch prints its tables", file=sys.stderr)
            return 1
        return _run_batch(args, search)

    def ask(client: SsaldClient) -> tuple[list[Neighbour], GalaxyObject]:
        return client.find_similar(args.objid, **search), client.get_object(args.objid)

    answer = ask_server(args, "similar", ask)
    if answer is None:
        return 1
    neighbours, query = answer
    print(format_neighbours(query, neighbours))
    return write_out(args, neighbours)
