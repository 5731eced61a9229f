"""``ssald ingest``: embed stamps into the objects table; the work is in :mod:`ingest.job`.

The flags build an :class:`~ingest.options.IngestInput` and :class:`~ingest.options.IngestOptions`, whose
defaults they show (standard library only, so ``ssald --help`` stays light).
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from clients.cli.args import add_db, add_fit, add_model, add_no_progress
from ingest.options import ENGINES, MAX_NAN_FRACTION, IngestInput, IngestOptions

__all__ = ["HELP", "add_arguments", "ingest_input", "ingest_options", "run_ingest"]

HELP = "embed stamps with an ONNX model into the LanceDB objects table"

_DEFAULTS = IngestOptions()
_INPUT_DEFAULTS = {f.name: f.default for f in fields(IngestInput)}


def _column_map(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        target, sep, source = pair.partition("=")
        if not sep or not target.strip() or not source.strip():
            raise SystemExit(f"--column expects SCHEMA_COLUMN=CATALOGUE_COLUMN, got {pair!r}")
        out[target.strip()] = source.strip()
    return out


def ingest_input(args: argparse.Namespace) -> IngestInput:
    """The :class:`~ingest.options.IngestInput` that ``ssald ingest``'s arguments describe."""
    return IngestInput(
        args.data, catalogue=args.catalogue, bands=args.bands.split(",") if args.bands else None,
        band_pattern=args.band_pattern, frames=args.frames or (), cutout_size=args.cutout_size,
        column_map=_column_map(args.column), images_key=args.images_key, objid_key=args.objid_key,
    )  # fmt: skip


def ingest_options(args: argparse.Namespace) -> IngestOptions:
    """The :class:`~ingest.options.IngestOptions` that ``ssald ingest``'s arguments describe."""
    return IngestOptions(
        batch_size=args.batch_size, chunk_size=args.chunk_size, progress=not args.no_progress, workers=args.workers,
        intra_op_threads=args.threads, engine=args.engine, max_nan_fraction=args.max_nan_fraction, fit=args.fit,
        fit_fraction=args.fit_fraction, reembed=args.reembed, refresh=args.refresh, morphology=not args.no_morphology,
        providers=args.providers,
    )  # fmt: skip


def run_ingest(args: argparse.Namespace) -> int:
    """Handler of ``ssald ingest``: 1 when nothing was embedded, 2 with ``--strict`` and quarantined stamps,
    3 when the table holds another model's embeddings (without ``--reembed``)."""
    from ingest.job import ModelMismatch, ingest

    if args.data is None and not args.frames:
        raise SystemExit("ssald ingest: give --data, or --frames with --catalogue")
    try:
        summary = ingest(ingest_input(args), args.model, args.db, ingest_options(args))
    except ModelMismatch as exc:
        print(f"ssald ingest: {exc}")
        return 3
    print(summary.line())
    for reason, count in sorted(summary.reasons.items(), key=lambda kv: -kv[1])[:5]:
        print(f"  quarantined x{count}: {reason}")
    if summary.quarantined:
        print(f"  (every quarantined stamp and its reason is in the 'quarantine' table of {args.db})")
    if summary.removed_other_model:
        print(f"  removed {summary.removed_other_model} rows of another model that had no stamp in this input")
    if summary.ingested == 0 and summary.skipped == 0:
        return 1
    if args.strict and summary.quarantined:
        return 2
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``ssald ingest``; it runs :func:`run_ingest`."""
    parser.add_argument(
        "--data", type=Path, default=None, help="stamp folder (DATA/stamps/* or DATA/*) or HDF5/NPY file"
    )
    parser.add_argument("--catalogue", type=Path, default=None, help="catalogue (FITS/CSV/Parquet) joined on objid")
    add_model(parser, "ONNX model from `ssald export`", required=True)
    add_db(parser, "LanceDB database folder (created if missing)")
    parser.add_argument(
        "--batch-size", type=int, default=_DEFAULTS.batch_size,
        help="stamps per ONNX Runtime call (default: 256 on the CPU, 1024 on CUDA)",
    )  # fmt: skip
    parser.add_argument(
        "--providers",
        default=None,
        help="ONNX Runtime providers: auto, cpu, cuda or tensorrt (cuda fails when the GPU cannot start; "
        "default $SSALD_PROVIDERS, else auto)",
    )
    parser.add_argument(
        "--chunk-size", type=int, default=_DEFAULTS.chunk_size, help="stamps per table commit (default %(default)s)"
    )
    parser.add_argument(
        "--workers", type=int, default=None,
        help="decoding processes (default: cores - 1; 0 = a thread, on <= 2 CPU-only cores)",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime CPU threads (default: all cores)")
    parser.add_argument("--engine", choices=ENGINES, default=_DEFAULTS.engine, help="local processes or Ray Data")
    parser.add_argument(
        "--no-morphology", action="store_true",
        help="skip the non-parametric morphology (morph_* columns: asymmetry, Gini, M20, MID ...; on by default)",
    )  # fmt: skip
    g = parser.add_argument_group("stamp formats")
    g.add_argument("--bands", default=None, help="band names for PNG/JPEG (bluest plane first), NPY and arrays: g,r,z")
    g.add_argument("--band-pattern", default=None, help="per-band FITS file names, e.g. '{objid}_{band}.fits'")
    g.add_argument("--frames", type=Path, nargs="+", default=None, help="survey frames with WCS to cut stamps from")
    g.add_argument("--cutout-size", type=int, default=None, help="cutout side in pixels (default: the model's)")
    add_fit(
        g,
        None,
        help="bring stamps to the model's size: central crop, block mean, or resample (central --fit-fraction "
        "area-averaged); default: the model's contract (as its training stamps were fitted)",
        fraction_help="resample: central square kept, as a fraction of the shorter side (default: the model's, "
        "else 0.5)",
    )
    g.add_argument(
        "--images-key", default=_INPUT_DEFAULTS["images_key"],
        help="image dataset in HDF5/NPZ files (default %(default)s)",
    )  # fmt: skip
    g.add_argument(
        "--objid-key", default=_INPUT_DEFAULTS["objid_key"],
        help="objid dataset in HDF5/NPZ files (default %(default)s)",
    )  # fmt: skip
    g = parser.add_argument_group("catalogue, validation and safety")
    g.add_argument(
        "--column", action="append", default=[], metavar="SCHEMA=NAME", help="map a catalogue column: z=redshift"
    )
    g.add_argument(
        "--max-nan-fraction", type=float, default=MAX_NAN_FRACTION, help="quarantine stamps with more NaN pixels"
    )
    g.add_argument("--strict", action="store_true", help="exit with status 2 when any stamp was quarantined")
    g.add_argument(
        "--reembed", action="store_true", help="replace another model's embeddings in the table with this model's"
    )
    g.add_argument("--refresh", action="store_true", help="re-embed objids this model already embedded")
    add_no_progress(g)
    parser.set_defaults(func=run_ingest)
