"""``ssald simulate``: the deterministic synthetic survey, stamps and catalogue (:mod:`ingest.synthetic`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from clients.cli.args import add_out, add_seed

__all__ = ["HELP", "add_arguments", "run_simulate"]

HELP = "generate the deterministic synthetic survey (stamps + catalogue)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``ssald simulate``; it runs :func:`run_simulate`."""
    add_out(parser, "output folder (stamps/ and catalogue.fits)", required=True)
    parser.add_argument("--n", type=int, default=5000, help="number of objects (default 5000)")
    add_seed(parser, help="random seed; the same seed gives the same survey")
    parser.add_argument("--size", type=int, default=64, help="stamp size in pixels (default 64)")
    parser.add_argument("--workers", type=int, default=None, help="rendering processes (default: up to 2)")
    parser.add_argument(
        "--gothic", type=Path, default=None,
        help="GOTHIC catalogue CSV to draw dual-nucleus redshifts and BPT classes from",
    )  # fmt: skip
    parser.add_argument("--overwrite", action="store_true", help="replace an existing survey in --out")
    parser.set_defaults(func=run_simulate)


def run_simulate(args: argparse.Namespace) -> int:
    """Handler of ``ssald simulate``: write the survey and print a one-line summary."""
    from ingest.synthetic import simulate

    summary = simulate(
        args.out, n=args.n, seed=args.seed, stamp_size=args.size, workers=args.workers, gothic_csv=args.gothic,
        overwrite=args.overwrite,
    )  # fmt: skip
    counts = ", ".join(f"{name} {count}" for name, count in summary.counts.items())
    print(f"simulated {summary.n} objects into {summary.out_dir} in {summary.seconds:.1f} s: {counts}")
    return 0
