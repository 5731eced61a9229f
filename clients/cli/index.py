"""``ssald index``: (re)build a table's ANN and scalar indexes and its anomaly scores.

Only argparse is imported at module import; LanceDB and scikit-learn load when the command runs.
"""

from __future__ import annotations

import argparse
import time

from clients.cli.args import add_db, add_k

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "run_index"]

HELP = "(re)build the ANN and scalar indexes and the anomaly scores of a database"
DESCRIPTION = (
    "Rebuild every index of the objects table from scratch (IVF_RQ on embeddings, BTree/Bitmap "
    "on objid and the filter columns), then recompute the density scores of every object."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``ssald index``; it runs :func:`run_index`."""
    add_db(parser, as_path=False)
    parser.add_argument(
        "--density", choices=("knn", "iforest", "lof", "none"), default="knn",
        help="anomaly score: k-th neighbour distance, IsolationForest, LOF, or none (default: %(default)s)",
    )  # fmt: skip
    add_k(parser, help="neighbour used by --density knn (default: %(default)s)")
    parser.add_argument("--partitions", type=int, default=None, help="IVF partitions (default sqrt(rows))")
    parser.add_argument(
        "--min-rows", type=int, default=None,
        help="build the ANN index only from this many rows on (default 50000; 0 always)",
    )  # fmt: skip
    parser.set_defaults(func=run_index)


def run_index(args: argparse.Namespace) -> int:
    """Handler of ``ssald index``."""
    from datetime import timedelta

    from ssald_index.ann import ANN_MIN_ROWS, AnnParams, build_indexes
    from ssald_index.density import update_density
    from ssald_index.store import ObjectStore

    start = time.perf_counter()
    store = ObjectStore.open(args.db)
    min_rows = ANN_MIN_ROWS if args.min_rows is None else args.min_rows
    scored = 0
    if args.density != "none":
        # Build first so that the kNN pass uses the ANN index, then rebuild to cover the rewritten rows.
        build_indexes(store.table, AnnParams(num_partitions=args.partitions), min_rows=min_rows)
        scored = update_density(store, method=args.density, k=args.k)
    # Compact before the final build: an IVF_RQ index that a later compaction remaps loses recall. Built over
    # one fragment, the indexes cover every row, so no optimize pass follows (it would only rebuild IVF_RQ).
    store.table.optimize(cleanup_older_than=timedelta(hours=1))
    seconds = build_indexes(store.table, AnnParams(num_partitions=args.partitions), min_rows=min_rows)
    n = store.count()
    ann = "IVF_RQ" if "embedding" in seconds else f"none (< {min_rows} rows: exact search)"
    print(
        f"indexed {n} objects: {len(seconds)} indexes (ANN {ann}), {scored} density scores "
        f"({args.density}), in {time.perf_counter() - start:.1f} s"
    )
    return 0
