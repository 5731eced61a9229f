"""``ssald simulate`` and ``ssald ingest``: argument parsing only; the work is in synthetic.py and job.py."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parsers"]


def _simulate(args: argparse.Namespace) -> int:
    from ingest.synthetic import simulate

    summary = simulate(
        args.out,
        n=args.n,
        seed=args.seed,
        stamp_size=args.size,
        workers=args.workers,
        gothic_csv=args.gothic,
        overwrite=args.overwrite,
    )
    counts = ", ".join(f"{name} {count}" for name, count in summary.counts.items())
    print(f"simulated {summary.n} objects into {summary.out_dir} in {summary.seconds:.1f} s: {counts}")
    return 0


def _ingest(args: argparse.Namespace) -> int:
    from ingest.job import ingest

    summary = ingest(
        args.data,
        model=args.model,
        db=args.db,
        catalogue=args.catalogue,
        batch_size=args.batch_size,
        chunk_size=args.chunk_size,
    )
    print(summary.line())
    for reason, count in list(summary.reasons.items())[:5]:
        print(f"  quarantined x{count}: {reason}")
    if summary.quarantined:
        print(f"  (every quarantined stamp and its reason is in the 'quarantine' table of {args.db})")
    return 0 if summary.ingested else 1


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``simulate`` and ``ingest`` subcommands."""
    p = subparsers.add_parser("simulate", help="generate the deterministic synthetic survey (stamps + catalogue)")
    p.add_argument("--out", type=Path, required=True, help="output folder (stamps/ and catalogue.fits)")
    p.add_argument("--n", type=int, default=5000, help="number of objects (default 5000)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same survey")
    p.add_argument("--size", type=int, default=64, help="stamp size in pixels (default 64)")
    p.add_argument("--workers", type=int, default=None, help="rendering processes (default: up to 2)")
    p.add_argument(
        "--gothic",
        type=Path,
        default=None,
        help="GOTHIC catalogue CSV to draw dual-nucleus redshifts and BPT classes from",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing survey in --out")
    p.set_defaults(func=_simulate)

    p = subparsers.add_parser("ingest", help="embed stamps with an ONNX model into the LanceDB objects table")
    p.add_argument("--data", type=Path, required=True, help="folder of stamps (DATA/stamps/*.fits or DATA/*.fits)")
    p.add_argument("--catalogue", type=Path, default=None, help="catalogue (FITS/CSV/Parquet) joined on objid")
    p.add_argument("--model", type=Path, required=True, help="ONNX model from `ssald export`")
    p.add_argument("--db", type=Path, required=True, help="LanceDB database folder (created if missing)")
    p.add_argument("--batch-size", type=int, default=256, help="stamps per ONNX Runtime call (default 256)")
    p.add_argument("--chunk-size", type=int, default=2048, help="stamps per table commit (default 2048)")
    p.set_defaults(func=_ingest)
