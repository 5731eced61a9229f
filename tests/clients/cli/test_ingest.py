"""``ssald ingest``'s flags build the ingest options, with the options' defaults (the command runs end to end in
tests/ingest/test_job.py)."""

from __future__ import annotations

import argparse

from clients.cli import build_parser
from clients.cli.ingest import ingest_input, ingest_options
from ingest.options import IngestInput, IngestOptions


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["ingest", "--model", "m.onnx", "--db", "db", *argv])


def test_cli_defaults_are_the_options_defaults() -> None:
    args = _args("--data", "survey")
    assert ingest_options(args) == IngestOptions()
    assert ingest_input(args) == IngestInput(args.data, column_map={})


def test_cli_flags_reach_the_options() -> None:
    args = _args("--frames", "a.fits", "--catalogue", "c.fits", "--bands", "g,r", "--column", "z=zs",
                 "--workers", "0", "--engine", "ray", "--no-morphology", "--fit", "crop", "--refresh")  # fmt: skip
    source, options = ingest_input(args), ingest_options(args)
    assert source.data is None and len(source.frames) == 1 and source.bands == ("g", "r")
    assert source.column_map == {"z": "zs"}
    assert (options.workers, options.engine, options.morphology, options.fit, options.refresh) == (
        0, "ray", False, "crop", True
    )  # fmt: skip
