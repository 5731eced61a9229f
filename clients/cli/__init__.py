"""The ``ssald`` command line: one module per subcommand, named as the user types it.

This package is the one place where every other package meets. The module of ``ssald NAME`` is
``clients.cli.NAME`` (``-`` spelt ``_``); it declares ``HELP`` (and ``DESCRIPTION``, ``EPILOG`` where it
has them) and ``add_arguments(parser)``, which adds the flags and sets ``func``, the handler. Command
modules import nothing heavy at import time (the work loads inside the handler), so ``ssald --help`` is
instant and ``ssald serve`` never loads torch. Flags that several commands share are declared in
:mod:`clients.cli.args`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["COMMANDS", "COMMAND_MODULES", "add_command", "build_parser", "main"]

#: In the order a user meets them: make data, ingest, train, export, check, index, find, serve, query, all at once.
COMMANDS = (
    "simulate", "ingest", "train", "export", "quality", "plot-run", "index", "dump", "al", "candidates", "serve",
    "gallery", "map", "similar", "anomalies", "label", "web", "demo",
)  # fmt: skip
#: The module of each command.
COMMAND_MODULES = tuple(f"clients.cli.{name.replace('-', '_')}" for name in COMMANDS)


def add_command(subparsers: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    """Add ``ssald NAME``'s parser, as its module declares it, to ``subparsers``; returns it."""
    module = importlib.import_module(COMMAND_MODULES[COMMANDS.index(name)])
    parser = subparsers.add_parser(
        name,
        help=module.HELP,
        description=getattr(module, "DESCRIPTION", None),
        epilog=getattr(module, "EPILOG", None),
    )
    module.add_arguments(parser)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The full ``ssald`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="ssald",
        description="SSALD: self-supervised embeddings and similarity search for finding rare galaxies.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        add_command(subparsers, name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``ssald`` subcommand; returns its exit code.

    Expected failures (bad input, missing or unreadable files, an unreachable server, a refused token)
    print one line naming the problem instead of a traceback.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (
        ValueError,
        FileNotFoundError,
        FileExistsError,
        PermissionError,
        KeyError,
        RuntimeError,
        ConnectionError,
    ) as err:
        message = str(err).strip("'\"") if isinstance(err, KeyError) else str(err)
        print(f"ssald {args.command}: error: {message}", file=sys.stderr)
        return 2
