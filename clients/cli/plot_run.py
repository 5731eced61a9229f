"""``ssald plot-run RUN``: the curves of a training run's ``RUN/metrics.jsonl`` to a PNG
(:func:`encoders.training.runs.plot_run`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from clients.cli.args import add_out

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "run_plot"]

HELP = "plot a training run's loss terms and diagnostics"
DESCRIPTION = (
    "Plot the VICReg terms and the per-epoch diagnostics of ``RUN/metrics.jsonl`` to a PNG. "
    "Panels: the three loss terms per epoch (weighted as in the loss); RankMe; the 2PCF score with its "
    "spread; the normalised per-dimension std (collapse); kNN accuracy when logged."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``ssald plot-run``; it runs :func:`run_plot`."""
    parser.add_argument("run", type=Path, help="run directory holding metrics.jsonl")
    add_out(parser, "PNG to write (default RUN/metrics.png)")
    parser.set_defaults(func=run_plot)


def run_plot(args: argparse.Namespace) -> int:
    """Handle ``plot-run``: write the PNG and print its path."""
    from encoders.training.runs import plot_run

    out = plot_run(args.run, args.out)
    print(f"wrote {out}")
    return 0
