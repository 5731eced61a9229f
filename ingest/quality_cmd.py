"""``ssald quality`` and ``ssald plot-run``: is the encoder learning? (label-free scores).

``quality --db DB`` scores the embeddings stored in a LanceDB ``objects`` table;
``quality --run RUN --data DIR`` embeds a survey's stamps with a training run's backbone
(or one kept checkpoint) and scores them; both print the report of
:func:`encoders.training.diagnostics.quality_report` as JSON (with kNN accuracy and Davies-Bouldin
when a label column is filled). ``plot-run RUN`` draws the curves of ``RUN/metrics.jsonl``
to a PNG. The work is in :mod:`ingest.quality` (stored embeddings) and :mod:`encoders.training.runs`
(a run's embeddings and plot). Only argparse and pathlib load at import time.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["add_parsers", "run_plot", "run_quality"]


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``quality`` and ``plot-run`` subcommands (each sets ``func``)."""
    p = subparsers.add_parser(
        "quality",
        help="label-free quality scores (RankMe, 2PCF, collapse) of embeddings",
        description="Score embeddings from a database (--db) or from a training run embedding a survey "
        "(--run with --data): per-dimension std, RankMe, the 2PCF score and, with labels, kNN accuracy "
        "and Davies-Bouldin. Prints JSON.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--db", type=Path, help="LanceDB database whose objects table holds embeddings")
    src.add_argument("--run", type=Path, help="training run directory or a checkpoint .pt file")
    p.add_argument("--data", type=Path, help="with --run: survey directory (stamps/ and catalogue.fits)")
    p.add_argument("--labels", default="truth_class", help="label column (default truth_class; 'none' to skip)")
    p.add_argument("--max-objects", type=int, default=20000, help="score at most this many (a seeded subset)")
    p.add_argument("-k", type=int, default=10, help="neighbours of the kNN vote (default 10)")
    p.add_argument("--out", type=Path, help="also write the report to this JSON file")
    p.set_defaults(func=run_quality)

    p = subparsers.add_parser(
        "plot-run",
        help="plot a training run's loss terms and diagnostics",
        description="Plot the VICReg terms and the per-epoch diagnostics of ``RUN/metrics.jsonl`` to a PNG. "
        "Panels: the three loss terms per epoch (weighted as in the loss); RankMe; the 2PCF score with its "
        "spread; the normalised per-dimension std (collapse); kNN accuracy when logged.",
    )
    p.add_argument("run", type=Path, help="run directory holding metrics.jsonl")
    p.add_argument("--out", type=Path, help="PNG to write (default RUN/metrics.png)")
    p.set_defaults(func=run_plot)


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


def run_plot(args: argparse.Namespace) -> int:
    """Handle ``plot-run``: write the PNG and print its path."""
    from encoders.training.runs import plot_run

    out = plot_run(args.run, args.out)
    print(f"wrote {out}")
    return 0
