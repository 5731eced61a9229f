"""``python -m server serve --db DB ...``: the server without the top-level ``ssald`` command."""

from __future__ import annotations

import argparse
import sys

from server.cli import add_parsers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
