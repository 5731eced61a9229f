"""``python -m server serve --db DB ...``: ``ssald serve`` alone, without the other subcommands.

An entry point like ``ssald`` itself, so it may import the command line (:mod:`clients.cli`).
"""

from __future__ import annotations

import argparse
import sys

from clients.cli import add_command


def main(argv: list[str] | None = None) -> int:
    """Parse ``serve ...`` and run it; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m server")
    add_command(parser.add_subparsers(dest="command", required=True), "serve")
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
