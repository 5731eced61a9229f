"""``ssald dump``: (objid, embedding) of every object to Parquet, CSV, FITS or VOTable
(:func:`ssald_index.tables.dump_embeddings`)."""

from __future__ import annotations

import argparse
import time

from clients.cli.args import add_db, add_out

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "run_dump"]

HELP = "write (objid, embedding) of every object to Parquet, CSV, FITS or VOTable"
DESCRIPTION = "Export the embeddings for TOPCAT or other tools; the format follows the suffix of --out."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``ssald dump``; it runs :func:`run_dump`."""
    add_db(parser, as_path=False)
    add_out(parser, "output file: .parquet, .csv, .fits, .vot or .xml", required=True, as_path=False)
    parser.set_defaults(func=run_dump)


def run_dump(args: argparse.Namespace) -> int:
    """Handler of ``ssald dump``."""
    from ssald_index.store import ObjectStore
    from ssald_index.tables import dump_embeddings

    start = time.perf_counter()
    n = dump_embeddings(ObjectStore.open(args.db), args.out)
    print(f"wrote {n} (objid, embedding) rows to {args.out} in {time.perf_counter() - start:.1f} s")
    return 0
