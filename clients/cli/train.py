"""``ssald train``: a VICReg stamp encoder from a folder of stamp files; the work is in :mod:`encoders.training`.

Only argparse and pathlib are imported here; torch and the rest load inside the handler, so
``ssald --help`` and the serving commands stay light. Multi-GPU (or multi-process CPU) training
runs the same command under torchrun::

    torchrun --nproc_per_node 4 -m clients.cli train --data survey --run-dir run
"""

from __future__ import annotations

import argparse
from pathlib import Path

from clients.cli.args import add_fit, add_no_progress, add_seed

__all__ = ["ARCHES", "DESCRIPTION", "HELP", "add_arguments", "catalogue_labels", "run_train", "stamp_files"]

HELP = "train the stamp encoder with VICReg"
DESCRIPTION = (
    "Train a ResNet stamp encoder with VICReg on the stamp files of DIR/stamps/, DIR/images/ "
    "or DIR itself (FITS, PNG/JPEG, NPY). Resumes automatically from RUN/checkpoint.pt."
)

#: Backbone presets: blocks per stage (widths are ``w, 2w, 4w, 8w`` for ``--width w``).
ARCHES = {"small": (1, 1, 1, 1), "resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``ssald train``; it runs :func:`run_train`."""
    data = parser.add_argument_group("data")
    data.add_argument(
        "--data", type=Path, required=True,
        help="folder of stamp files (FITS, PNG/JPEG, NPY): DATA/stamps/*, else DATA/images/*, else DATA/*",
    )  # fmt: skip
    data.add_argument(
        "--run", "--run-dir", dest="run", type=Path, required=True,
        help="run directory (config, metrics, checkpoint); spell it --run-dir under torchrun, whose --run-path "
        "would otherwise claim it",
    )  # fmt: skip
    data.add_argument("--max-stamps", type=int, default=None, help="use only the first M stamps (sorted)")
    data.add_argument("--stream", action="store_true", help="read stamps from disk each epoch instead of into RAM")
    data.add_argument(
        "--normalisation", choices=["lupton", "identity"], default=None,
        help="lupton (fluxes, default) or identity (images already stretched, e.g. PNG composites)",
    )  # fmt: skip
    add_fit(
        data,
        "none",
        help="bring the images to --stamp-size: central crop, k x k block mean, or resample (the central "
        "--fit-fraction of the side, area-averaged); recorded in the model, which ingest and serve then follow",
        fraction_help="resample: central square kept, as a fraction of the shorter side (default 0.5: Galaxy "
        "Zoo-style cutouts put the galaxy in the central third to half)",
    )
    data.add_argument(
        "--stamp-size", type=int, default=None,
        help="model stamp side in pixels (default: 64 with --fit, else the files')",
    )  # fmt: skip
    data.add_argument("--labels", default="truth_class", help="catalogue column for kNN diagnostics ('none': skip)")
    data.add_argument(
        "--catalogue", type=Path, default=None,
        help="catalogue with --labels (FITS/CSV/…; default DATA/catalogue.fits), rows matched to stamp files by "
        "--match-column",
    )  # fmt: skip
    data.add_argument(
        "--match-column", default=None,
        help="catalogue column naming each row's stamp file or objid, compared by file-name stem "
        "(default: 'file' when present, else 'objid')",
    )  # fmt: skip
    opt = parser.add_argument_group("optimisation (defaults: encoders.training.config.TrainConfig)")
    opt.add_argument("--epochs", type=int, default=None, help="total epochs (a resumed run continues to it)")
    opt.add_argument("--batch-size", type=int, default=None, help="stamps per step")
    opt.add_argument("--lr", type=float, default=None, help="peak AdamW learning rate")
    opt.add_argument("--weight-decay", type=float, default=None, help="weight decay")
    opt.add_argument("--optimizer", choices=["adamw", "lars"], default=None, help="adamw (default) or lars (paper)")
    opt.add_argument("--max-steps", type=int, default=None, help="stop after this many steps in total")
    add_seed(opt, None, help="seed of weights, shuffling and augmentation")
    arch = parser.add_argument_group("architecture")
    arch.add_argument("--arch", choices=sorted(ARCHES), default=None, help="backbone preset (default small)")
    arch.add_argument("--width", type=int, default=32, help="first-stage width of --arch (default 32)")
    arch.add_argument("--expander", type=int, nargs="+", default=None, help="expander widths, e.g. 2048 2048 2048")
    aug = parser.add_argument_group("augmentations (off unless given; see encoders.training.augment)")
    aug.add_argument(
        "--preset", choices=["survey", "composite"], default="survey",
        help="defaults for the input kind (encoders.training.config.PRESETS): survey (multi-band fluxes, default) or "
        "composite (8-bit colour JPEG/PNG: identity normalisation, colour jitter, rotations); flags override it",
    )  # fmt: skip
    aug.add_argument("--max-angle", type=float, default=None, help="arbitrary rotation range in degrees")
    aug.add_argument("--scale-range", type=float, nargs=2, default=None, help="size scaling range, e.g. 0.8 1.25")
    aug.add_argument("--blur", type=float, default=None, help="largest extra PSF sigma in pixels")
    aug.add_argument("--band-noise", type=float, default=None, help="largest per-band noise sigma")
    aug.add_argument("--max-ebv", type=float, default=None, help="largest reddening E(B-V)")
    aug.add_argument("--band-drop", type=float, default=None, help="probability of dropping one band")
    aug.add_argument("--crop-jitter", type=float, default=None, help="sub-pixel centre jitter of the affine (px)")
    aug.add_argument("--max-shift", type=int, default=None, help="largest integer shift in px (default 4)")
    aug.add_argument("--noise", type=float, default=None, help="largest Gaussian noise sigma (default 0.05)")
    aug.add_argument("--brightness", type=float, default=None, help="brightness jitter: factor exp(U(-b, b))")
    aug.add_argument("--colour", type=float, default=None, help="per-band gain jitter: factor exp(U(-c, c))")
    aug.add_argument("--grey-prob", type=float, default=None, help="probability of a grey view (bands averaged)")
    aug.add_argument(
        "--centre-prob", type=float, default=None,
        help="probability of training on a stamp's central half enlarged 2x (for --views full,centre exports)",
    )  # fmt: skip
    run = parser.add_argument_group("runtime")
    run.add_argument("--workers", type=int, default=None, help="DataLoader worker processes (augmentation)")
    run.add_argument("--keep-checkpoints", action="store_true", help="keep checkpoints/epoch_XXX.pt of every epoch")
    run.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    run.add_argument("--device", default=None, help="auto, cpu or cuda (default auto)")
    run.add_argument("--precision", choices=["auto", "bf16", "fp16", "fp32"], default=None, help="autocast precision")
    add_no_progress(run, help="hide progress bars")
    parser.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    """Handle ``train``: read (or stream) and normalise stamps, train, print a one-line summary."""
    import json
    import os
    import time

    import numpy as np

    from encoders.fit import DEFAULT_FIT_FRACTION, Fit
    from encoders.normalise import LuptonParams, normaliser
    from encoders.stamps import StampError
    from encoders.training.config import PRESETS
    from encoders.training.data import ArraySource, FileSource
    from encoders.training.train import METRICS_FILE, TrainConfig, train

    stamp_dir, paths = stamp_files(args.data)
    if args.max_stamps is not None:
        paths = paths[: args.max_stamps]
    if len(paths) < 2:
        print(f"error: need at least 2 stamps in {stamp_dir}/ (FITS, PNG/JPEG or NPY), found {len(paths)}")
        return 2
    try:
        fit = Fit(args.fit, DEFAULT_FIT_FRACTION if args.fit_fraction is None else args.fit_fraction)
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    size = args.stamp_size if args.stamp_size is not None or fit.mode == "none" else 64
    overrides = {
        "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "weight_decay": args.weight_decay,
        "optimizer": args.optimizer, "max_steps": args.max_steps, "seed": args.seed, "threads": args.threads,
        "device": args.device, "precision": args.precision, "num_workers": args.workers,
        "normalisation": args.normalisation, "max_angle": args.max_angle, "scale_range": args.scale_range,
        "max_ebv": args.max_ebv, "band_drop": args.band_drop, "centre_prob": args.centre_prob,
        "brightness": args.brightness, "colour": args.colour, "grey_prob": args.grey_prob,
        "crop_jitter": args.crop_jitter, "max_shift": args.max_shift,
        "noise_sigma": None if args.noise is None else (0.0, args.noise),
        "blur_sigma": None if args.blur is None else (0.0, args.blur),
        "band_noise": None if args.band_noise is None else (0.0, args.band_noise),
        "expander_dims": args.expander, "keep_checkpoints": args.keep_checkpoints or None,
    }  # fmt: skip
    if args.arch is not None:
        overrides["blocks"] = ARCHES[args.arch]
        overrides["widths"] = tuple(args.width * 2**i for i in range(4))
    overrides = {**PRESETS[args.preset], **{k: v for k, v in overrides.items() if v is not None}}
    main_rank = int(os.environ.get("RANK", "0")) == 0
    progress = not args.no_progress and main_rank
    t0 = time.perf_counter()
    try:
        params = LuptonParams()
        norm = normaliser(overrides.get("normalisation", "lupton"), params)
        source = FileSource(paths, norm, fit=fit, size=size)
        if size is not None and source.shape[-2:] != (size, size):
            print(
                f"error: stamps in {stamp_dir} are {source.shape[-2]}x{source.shape[-1]} pixels, not --stamp-size "
                f"{size}; give --fit to bring them to it"
            )
            return 2
        bands = source.bands
        if not args.stream:
            from tqdm.auto import tqdm

            stamps = np.empty((len(paths), *source.shape), np.float32)
            for start in tqdm(range(0, len(paths), 256), desc="read stamps", unit="batch", disable=not progress):
                stamps[start : start + 256] = source.get(range(start, min(start + 256, len(paths))))
            source = ArraySource(stamps)
    except StampError as exc:
        print(f"error: {exc}")
        return 2
    t_read = time.perf_counter() - t0
    try:
        labels = catalogue_labels(args.catalogue or args.data / "catalogue.fits", paths, args.labels, args.match_column)
    except (OSError, ValueError) as exc:
        if args.catalogue is not None:
            print(f"error: {exc}")
            return 2
        labels = None
    config = TrainConfig(
        bands=bands, stamp_size=source.shape[-1], lupton=params, fit=fit.mode, fit_fraction=fit.fraction, **overrides
    )
    t0 = time.perf_counter()
    run_dir = train(source, args.run, config, progress=progress, labels=labels)
    t_train = time.perf_counter() - t0
    if not main_rank:
        return 0
    lines = (run_dir / METRICS_FILE).read_text().splitlines()
    last = next((json.loads(line) for line in reversed(lines) if '"scope": "epoch"' in line), {})
    print(
        f"trained on {len(source)} stamps {'x'.join(map(str, source.shape))} "
        f"(read {t_read:.1f}s, train {t_train:.1f}s): step {last.get('step', 0)}, "
        f"epoch {last.get('epoch', 0) + 1}/{config.epochs}, loss {last.get('loss', float('nan')):.3f}, "
        f"rankme {last.get('rankme', float('nan')):.1f}, 2PCF {last.get('tpcf', float('nan')):.1f}, "
        f"{last.get('stamps_per_s', 0):.0f} stamps/s -> {run_dir}"
    )
    return 0


def stamp_files(data: Path) -> tuple[Path, list[Path]]:
    """The folder ``train`` reads and its stamp files, sorted by name.

    ``DATA/stamps/`` (what ``ssald simulate`` writes), else ``DATA/images/`` (image folders as they come, such
    as Galaxy Zoo's JPEGs beside a ``labels.csv``), else ``DATA`` itself; files are taken by their suffix
    (:data:`ingest.sources.STAMP_SUFFIXES`, the files ``ssald ingest`` reads), so catalogues beside them are
    ignored.
    """
    from encoders.stamps import stamp_folder
    from ingest.sources import find_stamps

    folder = stamp_folder(data)
    return folder, find_stamps(data) if folder.is_dir() else []


def _stem(name: str) -> str:
    """A stamp's name without folder and stamp suffix, as catalogues name it (``images/123.jpeg`` -> ``123``)."""
    from ingest.sources import STAMP_SUFFIXES

    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    for suffix in sorted(STAMP_SUFFIXES, key=len, reverse=True):
        if base.lower().endswith(suffix):
            return base[: -len(suffix)]
    return base


def catalogue_labels(catalogue: Path, paths: list[Path], column: str, match_column: str | None = None):
    """The ``column`` value of each stamp file's catalogue row (for the kNN diagnostics), or ``None``.

    Parameters
    ----------
    catalogue : Path
        FITS, CSV or any table astropy reads; ``None`` is returned when it does not exist.
    paths : list of Path
        The stamp files, in training order.
    column : str
        The label column; ``"none"`` returns ``None``.
    match_column : str, optional
        The column naming each row's stamp (default ``file`` when the catalogue has one, else ``objid``). Values
        are compared with the files' names without folder and suffix, so ``images/123.jpeg``, ``123.jpeg`` and
        objid ``123`` all match ``stamps/123.jpeg``.

    Raises
    ------
    ValueError
        If a named column is missing or a stamp file has no row (the message names the catalogue).
    """
    if column.lower() == "none" or not catalogue.exists():
        return None
    import numpy as np
    from astropy.table import Table

    cat = Table.read(catalogue, format="ascii.csv") if catalogue.suffix.lower() == ".csv" else Table.read(catalogue)
    key = match_column or ("file" if "file" in cat.colnames else "objid")
    missing = [c for c in (column, key) if c not in cat.colnames]
    if missing:
        raise ValueError(f"catalogue {catalogue} has no column {', '.join(missing)}; it has {', '.join(cat.colnames)}")
    by_stem = dict(zip((_stem(str(v)) for v in cat[key]), np.asarray(cat[column]).astype(str)))
    stems = [_stem(p.name) for p in paths]
    unmatched = [s for s in stems if s not in by_stem]
    if unmatched:
        raise ValueError(
            f"{len(unmatched)} of {len(stems)} stamps have no row in catalogue {catalogue} by column {key!r} "
            f"(first: {unmatched[0]})"
        )
    return [by_stem[s] for s in stems]
