"""``ssald gallery OBJID --db DB --out gallery.png``: the query stamp and its neighbours as Lupton RGB images.

Stamps are drawn by :func:`encoders.stamps.render.rgb_stamp` (numpy/astropy only, never torch). Only
argparse and pathlib load at import time.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from clients.cli.args import add_db, add_exclude_radius, add_k, add_out

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "run_gallery", "write_gallery"]

HELP = "PNG of an object's stamp and its nearest neighbours' stamps"
DESCRIPTION = "Read the stamps named in the table's `source` column and draw them as Lupton RGB images."


def write_gallery(query: dict[str, Any], neighbours: list[dict[str, Any]], out: str | Path) -> Path:
    """Draw the query and its neighbours (rows with ``source``, ``distance``) into one PNG."""
    import matplotlib

    from encoders.stamps.render import rgb_stamp

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [query, *neighbours]
    cols = min(len(panels), 6)
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.5 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, (ax, row) in enumerate(zip(axes.ravel(), panels)):
        ax.imshow(rgb_stamp(row["source"]), origin="lower")
        head = "query" if i == 0 else f"#{i}  d={row['distance']:.3f}"
        label = row.get("truth_class") or row.get("spec_class") or ""
        ax.set_title(f"{head}\n{row['objid']}\n{label}", fontsize=7)
    out = Path(out)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``ssald gallery``; it runs :func:`run_gallery`."""
    parser.add_argument("objid", type=int, help="objid of the query object")
    add_db(parser, as_path=False)
    add_out(parser, "output PNG", required=True, as_path=False)
    add_k(parser, 11)
    add_exclude_radius(parser, "arcsec around the query left out")
    parser.set_defaults(func=run_gallery)


def run_gallery(args: argparse.Namespace) -> int:
    """Handler of ``ssald gallery``."""
    from ssald_index.store import ObjectStore

    start = time.perf_counter()
    store = ObjectStore.open(args.db)
    query = store.get(args.objid)
    neighbours = store.neighbours(args.objid, args.k, exclude_radius_arcsec=args.exclude_radius)
    path = write_gallery(query, neighbours, args.out)
    print(f"wrote {path}: objid {args.objid} and {len(neighbours)} neighbours in {time.perf_counter() - start:.1f} s")
    return 0
