"""The ``ssald`` command line: one dispatcher over every package's subcommands.

This is the only module where the packages meet. Each package owns its
subcommands in a ``cli`` module that imports nothing heavy at import time, so
``ssald --help`` is instant and ``ssald serve`` never loads torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["COMMAND_MODULES", "build_parser", "main"]

# In the order a user meets them: make data, train, export, ingest, serve, query, all at once.
COMMAND_MODULES = (
    "ingest.cli",
    "encoders.cli",
    "ingest.quality_cmd",
    "ssald_index.cli",
    "ssald_index.al_cmd",
    "ssald_index.candidates_cmd",
    "server.cli",
    "server.gallery_cmd",
    "server.map_cmd",
    "clients.similar_cmd",
    "clients.label_cmd",
    "clients.demo",
)


def build_parser() -> argparse.ArgumentParser:
    """The full ``ssald`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="ssald",
        description="SSALD: self-supervised embeddings and similarity search for finding rare galaxies.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parsers(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``ssald`` subcommand; returns its exit code.

    Expected failures (bad input, missing files, an unreachable server) print one
    line naming the problem instead of a traceback.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, FileExistsError, KeyError, RuntimeError, ConnectionError) as err:
        message = str(err).strip("'\"") if isinstance(err, KeyError) else str(err)
        print(f"ssald {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
