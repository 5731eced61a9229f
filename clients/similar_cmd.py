"""``ssald similar OBJID --server HOST:PORT`` and ``ssald anomalies --server HOST:PORT``: tables of results.

Both take the metadata prefilters (``--z-min``, ``--spec-class`` …) and ``--out FILE`` to also write the
result as Parquet, CSV, FITS or VOTable (:mod:`clients.tables`).

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

__all__ = ["COLUMNS", "add_parsers", "format_neighbours", "run_similar", "run_anomalies"]

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


def _add_filters(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("metadata prefilter")
    group.add_argument("--z-min", type=float, default=None, help="minimum spectroscopic redshift")
    group.add_argument("--z-max", type=float, default=None, help="maximum spectroscopic redshift")
    group.add_argument("--spec-class", action="append", default=[], help="accepted spec_class (repeatable)")
    group.add_argument("--bpt-class", action="append", default=[], help="accepted bpt_class (repeatable)")
    group.add_argument("--where", default=None, help='SQL over the objects columns, e.g. "mag_r < 17"')
    parser.add_argument("--out", default=None, help="also write the result to .parquet/.csv/.fits/.vot")


def _filters(args: argparse.Namespace) -> dict:
    return {
        "z_min": args.z_min,
        "z_max": args.z_max,
        "spec_class": args.spec_class,
        "bpt_class": args.bpt_class,
        "where": args.where,
    }


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``similar`` subcommand to an ``ssald`` subparsers object."""
    parser = subparsers.add_parser(
        "similar",
        help="nearest neighbours of an object, from a running server",
        description="Print the k nearest neighbours of OBJID in embedding space, asked of `ssald serve`.",
        epilog="Exits 1 with a one-line error if the objid is unknown, k is out of range, the metric label has "
        "too few labels, the table has no morphology for --space or the server cannot be reached in time.",
    )
    parser.add_argument("objid", type=int, help="objid of the query object")
    parser.add_argument("--server", required=True, metavar="HOST:PORT", help="address printed by `ssald serve`")
    parser.add_argument("-k", type=int, default=10, help="number of neighbours, 1..1000 (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per RPC (default: %(default)s)")
    parser.add_argument(
        "--exclude-radius", type=float, default=0.0, help="arcsec around the query whose objects are left out"
    )
    metric = parser.add_argument_group("learned metric (from the labels of one class)")
    metric.add_argument(
        "--metric-label",
        default="",
        metavar="LABEL",
        help="rank neighbours in a metric learned from LABEL's labels (distance: Euclidean there)",
    )
    metric.add_argument(
        "--metric-kind",
        default="",
        metavar="KIND",
        help="how the metric is learned: probe (default), nca or head; the server checks the name",
    )
    space = parser.add_argument_group("search space")
    space.add_argument(
        "--space",
        default="",
        metavar="SPACE",
        help="embedding (default: cosine), morphology (the standardised morph_* columns) or embedding+morphology "
        "(both; with --metric-label the metric learns from both); Euclidean in the morphology spaces",
    )
    space.add_argument(
        "--morphology-weight",
        type=float,
        default=None,
        metavar="W",
        help="weight of the morphology part of embedding+morphology, in (0, 10] (default: 1, equal weight)",
    )
    _add_filters(parser)
    parser.set_defaults(func=run_similar)

    anomalies = subparsers.add_parser(
        "anomalies",
        help="the most anomalous (lowest-density) objects, from a running server",
        description="Print the N objects with the highest stored density scores that pass the filter.",
    )
    anomalies.add_argument("--server", required=True, metavar="HOST:PORT", help="address printed by `ssald serve`")
    anomalies.add_argument("-n", type=int, default=20, help="number of objects, 1..1000 (default: %(default)s)")
    anomalies.add_argument("--timeout", type=float, default=10.0, help="seconds per RPC (default: %(default)s)")
    _add_filters(anomalies)
    anomalies.set_defaults(func=run_anomalies)


def run_similar(args: argparse.Namespace) -> int:
    """Handler of ``ssald similar``; returns the process exit code."""
    from clients.client import SsaldClient
    from clients.errors import SsaldError

    try:
        with SsaldClient(args.server, timeout=args.timeout) as client:
            neighbours = client.find_similar(
                args.objid,
                k=args.k,
                exclude_radius_arcsec=args.exclude_radius,
                metric_label=args.metric_label,
                metric_kind=args.metric_kind,
                space=args.space,
                morphology_weight=args.morphology_weight,
                **_filters(args),
            )
            query = client.get_object(args.objid)
    except (SsaldError, ValueError) as exc:
        code = getattr(exc, "code", "ERROR")
        message = str(exc).replace("\n", " ")
        print(f"ssald similar: {code}: {message}", file=sys.stderr)
        return 1
    print(format_neighbours(query, neighbours))
    return _write(args, neighbours)


def _write(args: argparse.Namespace, objects: Sequence) -> int:
    if args.out and objects:
        from clients.tables import write_objects

        write_objects(objects, args.out)
        print(f"wrote {len(objects)} rows to {args.out}")
    return 0


def run_anomalies(args: argparse.Namespace) -> int:
    """Handler of ``ssald anomalies``; returns the process exit code."""
    from clients.client import SsaldClient
    from clients.errors import SsaldError

    try:
        with SsaldClient(args.server, timeout=args.timeout) as client:
            found = client.anomalies(args.n, **_filters(args))
    except (SsaldError, ValueError) as exc:
        message = str(exc).replace("\n", " ")
        print(f"ssald anomalies: {getattr(exc, 'code', 'ERROR')}: {message}", file=sys.stderr)
        return 1
    print(f"{'rank':>4}  {'objid':>19}  {'score':>8}  truth_class")
    for rank, obj in enumerate(found, start=1):
        print(f"{rank:>4}  {obj.objid:>19}  {obj.density_score:>8.4f}  {obj.truth_class or _MISSING}")
    return _write(args, found)
