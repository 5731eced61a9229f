"""``ssald quality``: is the encoder learning? Label-free scores of embeddings, printed as JSON.

``quality --db DB`` scores the embeddings stored in a LanceDB ``objects`` table (:mod:`ingest.quality`);
``quality --run RUN --data DIR`` embeds a survey's stamps with a training run's backbone (or one kept
checkpoint, :mod:`encoders.training.runs`) and scores them. The report is
:func:`encoders.training.diagnostics.quality_report`'s, with kNN accuracy and Davies-Bouldin when a label
column is filled. Only argparse and pathlib load at import time.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from clients.cli.args import add_db, add_k, add_out

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "run_quality"]

HELP = "label-free quality scores (RankMe, 2PCF, collapse) of embeddings"
DESCRIPTION = (
    "Score embeddings from a database (--db) or from a training run embedding a survey "
    "(--run with --data): per-dimension std, RankMe, the 2PCF score and, with labels, kNN accuracy "
    "and Davies-Bouldin. Prints JSON."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``ssald quality``; it runs :func:`run_quality`."""
    src = parser.add_mutually_exclusive_group(required=True)
    add_db(src, "LanceDB database whose objects table holds embeddings", required=False)
    src.add_argument("--run", type=Path, help="training run directory or a checkpoint .pt file")
    parser.add_argument("--data", type=Path, help="with --run: survey directory (stamps/ and catalogue.fits)")
    parser.add_argument("--labels", default="truth_class", help="label column (default truth_class; 'none' to skip)")
    parser.add_argument("--max-objects", type=int, default=20000, help="score at most this many (a seeded subset)")
    add_k(parser, help="neighbours of the kNN vote (default 10)")
    add_out(parser, "also write the report to this JSON file")
    parser.set_defaults(func=run_quality)


def run_quality(args: argparse.Namespace) -> int:
    """Handle ``quality``: print the JSON report; 2 on bad arguments."""
    from encoders.training.diagnostics import quality_report
    from encoders.training.runs import run_embeddings
    from ingest.quality import db_embeddings

    label_column = None if args.labels.lower() == "none" else args.labels
    if args.run is not None:
        if args.data is None:
            print("error: quality --run needs --data DIR (the stamps to embed)")
            return 2
        z, labels = run_embeddings(args.run, args.data, label_column, args.max_objects)
    else:
        z, labels = db_embeddings(args.db, label_column, args.max_objects)
    if len(z) < 3:
        print(f"error: need at least 3 embeddings to score, found {len(z)}")
        return 2
    report = quality_report(z, labels, k=args.k)
    text = json.dumps(report, indent=1)
    if args.out is not None:
        args.out.write_text(text + "\n")
    print(text)
    return 0
