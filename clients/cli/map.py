"""``ssald map --db DB --out map.png [--thumbnails]``: the 2-D map, optionally with a stamp mosaic.

Clusters and map coordinates come from :mod:`ssald_index.maps`; ``--thumbnails`` adds a panel of Lupton RGB
stamps (:func:`encoders.stamps.render.rgb_stamp`) of the objects nearest to a regular grid over the map, so it
needs the stamp files named in the table's ``source`` column. Only argparse loads at import time.
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

from clients.cli.args import add_db, add_out

if TYPE_CHECKING:
    import numpy as np

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "grid_sample", "run_map"]

HELP = "draw the 2-D map of the embedding space (fitting clusters and the map first if needed)"
DESCRIPTION = (
    "Fit MiniBatchKMeans clusters and a 2-D projection (UMAP or PCA) on a sample, store them as "
    "the cluster/map_x/map_y columns, and draw the map coloured by a column."
)


def grid_sample(x: np.ndarray, y: np.ndarray, grid: int) -> list[tuple[int, int, int]]:
    """For each cell of a ``grid`` x ``grid`` lattice over the points, the index of the point nearest to
    the cell centre, if the cell holds any: ``(row, col, index)`` triples."""
    import numpy as np

    if len(x) == 0:
        return []
    xs = np.linspace(x.min(), x.max(), grid + 1)
    ys = np.linspace(y.min(), y.max(), grid + 1)
    col = np.clip(np.searchsorted(xs, x, side="right") - 1, 0, grid - 1)
    row = np.clip(np.searchsorted(ys, y, side="right") - 1, 0, grid - 1)
    picks = []
    for r in range(grid):
        for c in range(grid):
            inside = np.flatnonzero((row == r) & (col == c))
            if len(inside):
                cx, cy = (xs[c] + xs[c + 1]) / 2, (ys[r] + ys[r + 1]) / 2
                best = inside[np.argmin((x[inside] - cx) ** 2 + (y[inside] - cy) ** 2)]
                picks.append((r, c, int(best)))
    return picks


def _mosaic(store: Any, grid: int) -> Any:
    from encoders.stamps.render import rgb_stamp

    t = store.table.search().where("map_x IS NOT NULL").select(["map_x", "map_y", "source"]).limit(None).to_arrow()
    x, y = t.column("map_x").to_numpy(), t.column("map_y").to_numpy()
    sources = t.column("source").to_pylist()

    def draw(ax: Any) -> None:
        for r, c, i in grid_sample(x, y, grid):
            try:
                image = rgb_stamp(sources[i])
            except (OSError, ValueError):  # a moved or unreadable stamp leaves its cell empty
                continue
            ax.imshow(image, extent=(c, c + 1, r, r + 1), origin="lower")
        ax.set_xlim(0, grid)
        ax.set_ylim(0, grid)
        ax.set_axis_off()
        ax.set_title(f"stamps nearest to a {grid}x{grid} grid over the map")

    return draw


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``ssald map``; it runs :func:`run_map`."""
    add_db(parser, as_path=False)
    add_out(parser, "output PNG", required=True, as_path=False)
    parser.add_argument(
        "--color", default="cluster", help="column to colour by, e.g. truth_class (default: %(default)s)"
    )
    parser.add_argument("--fit", action="store_true", help="refit clusters and map even if they are stored")
    parser.add_argument("--projection", choices=("umap", "pca"), default="umap", help="(default: %(default)s)")
    parser.add_argument("--clusters", type=int, default=20, help="number of clusters (default: %(default)s)")
    parser.add_argument("--thumbnails", action="store_true", help="add a mosaic of Lupton RGB stamps across the map")
    parser.add_argument("--grid", type=int, default=10, help="mosaic cells per side (default: %(default)s)")
    parser.set_defaults(func=run_map)


def run_map(args: argparse.Namespace) -> int:
    """Handler of ``ssald map``."""
    from ssald_index.maps import plot_map, update_maps
    from ssald_index.store import ObjectStore

    start = time.perf_counter()
    store = ObjectStore.open(args.db)
    fitted = 0
    if args.fit or store.table.count_rows("map_x IS NOT NULL") == 0:
        fitted = update_maps(store, n_clusters=args.clusters, projection=args.projection)
    extra = _mosaic(store, args.grid) if args.thumbnails else None
    path = plot_map(store, args.out, color=args.color, extra_panel=extra)
    print(f"wrote {path} ({fitted} objects mapped, coloured by {args.color}) in {time.perf_counter() - start:.1f} s")
    return 0
