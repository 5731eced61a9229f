"""``ssald plot-run RUN``: the curves of a training run's ``RUN/metrics.jsonl`` to a PNG
(:func:`encoders.training.runs.plot_run`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from clients.cli.args import add_out

__all__ = ["add_parsers", "run_plot"]


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``plot-run`` subcommand."""
    p = subparsers.add_parser(
        "plot-run",
        help="plot a training run's loss terms and diagnostics",
        description="Plot the VICReg terms and the per-epoch diagnostics of ``RUN/metrics.jsonl`` to a PNG. "
        "Panels: the three loss terms per epoch (weighted as in the loss); RankMe; the 2PCF score with its "
        "spread; the normalised per-dimension std (collapse); kNN accuracy when logged.",
    )
    p.add_argument("run", type=Path, help="run directory holding metrics.jsonl")
    add_out(p, "PNG to write (default RUN/metrics.png)")
    p.set_defaults(func=run_plot)


def run_plot(args: argparse.Namespace) -> int:
    """Handle ``plot-run``: write the PNG and print its path."""
    from encoders.training.runs import plot_run

    out = plot_run(args.run, args.out)
    print(f"wrote {out}")
    return 0
