"""``python -m server serve --db DB ...``: ``ssald serve`` alone, without the other subcommands.

An entry point like ``ssald`` itself, so it may import the command module :mod:`clients.cli.serve`.
"""

from __future__ import annotations

import argparse
import sys

from clients.cli.serve import add_parsers


def main(argv: list[str] | None = None) -> int:
    """Parse ``serve ...`` and run it; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m server")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
