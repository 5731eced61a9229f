"""``ssald candidates``: a ranked, filtered, cross-matched candidate list for one label, exported for TOPCAT.

Only argparse is imported at module import; LanceDB, scikit-learn and astropy load when the command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from clients.cli.args import add_classifier, add_db, add_label, add_out, add_redshift_range

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "run_candidates"]

HELP = "rank objects by classifier score for a label, filter, cross-match and export (CSV/FITS/VOTable)"
DESCRIPTION = (
    "Rank objects by the stored classifier score of --label (trained first when missing or "
    "stale), with their anomaly score and spectroscopy; keep those passing the BPT/redshift/SQL filters; "
    "mark those already in a reference catalogue (by objid, and by position when it has RA/Dec); export."
)

_SHOWN = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``ssald candidates``; it runs :func:`run_candidates`."""
    add_db(parser)
    add_label(parser, "label to rank for (default: %(default)s)")
    parser.add_argument("--top", type=int, default=100, help="number of candidates (default: %(default)s)")
    score = parser.add_argument_group("classifier scores")
    add_classifier(
        score, None,
        help="classifier; retrains when the stored scores come from another (default: stored, else logistic)",
    )  # fmt: skip
    score.add_argument("--retrain", action="store_true", help="retrain even when the stored scores are current")
    score.add_argument("--exclude-labelled", action="store_true", help="leave out objects that already have a label")
    filt = parser.add_argument_group("filters")
    filt.add_argument("--bpt-agn", action="store_true", help="require an AGN-like BPT class: Seyfert, LINER, composite")
    filt.add_argument("--bpt", default="", help="comma-separated accepted BPT classes (case-insensitive)")
    add_redshift_range(filt)
    filt.add_argument("--where", default=None, help='extra SQL over the objects columns, e.g. "mag_r < 17.7"')
    ref = parser.add_argument_group("cross-match")
    ref.add_argument("--reference", type=Path, default=None,
                     help="reference catalogue (CSV, FITS, VOTable, Parquet), e.g. GOTHIC double nuclei")  # fmt: skip
    ref.add_argument("--reference-objid-column", default=None, help="its objid column (default: found by name)")
    ref.add_argument("--reference-ra-column", default=None, help="its RA column in degrees (default: found by name)")
    ref.add_argument("--reference-dec-column", default=None, help="its Dec column in degrees (default: found by name)")
    ref.add_argument("--match-radius", type=float, default=2.0, help="position match radius, arcsec (default: 2)")
    out = parser.add_argument_group("output")
    add_out(out, "output file (.csv, .fits, .vot/.xml, .parquet), or the stem with --formats", required=True)
    out.add_argument("--formats", default=None, help="comma-separated formats to write, e.g. csv,fits,votable")
    out.add_argument(
        "--samp", action="store_true",
        help="send the VOTable written (needs one among the outputs) to TOPCAT/Aladin through the running SAMP hub",
    )  # fmt: skip
    parser.set_defaults(func=run_candidates)


def run_candidates(args: argparse.Namespace) -> int:
    """Handler of ``ssald candidates``."""
    import numpy as np

    from ssald_index.active import candidates
    from ssald_index.tables import format_for

    formats = [f.strip() for f in args.formats.split(",") if f.strip()] if args.formats else None
    if not formats:
        format_for(args.out)  # a bad suffix fails before any training
    if args.samp and "votable" not in (formats or [format_for(args.out)]):
        raise ValueError("--samp sends a VOTable: write one (--out NAME.vot, or votable among --formats)")
    reference = candidates.read_reference(args.reference) if args.reference is not None else None
    run, message = candidates.ensure_scores(args.db, args.label, args.classifier, force=args.retrain)
    print(message)
    bpt = [c for c in args.bpt.split(",") if c.strip()]
    filter = candidates.candidate_filter(args.bpt_agn, bpt, args.z_min, args.z_max, args.where)
    columns = candidates.find_candidates(args.db, args.label, args.top, filter, exclude_labelled=args.exclude_labelled)
    n = len(columns["objid"])
    summary = f"{n} candidates for {args.label!r}" + (f" (filter: {filter.sql()})" if filter else "")
    if reference is not None:
        ra = np.ma.filled(np.ma.asarray(columns["ra"], dtype=float), np.nan)
        dec = np.ma.filled(np.ma.asarray(columns["dec"], dtype=float), np.nan)
        match = candidates.crossmatch(
            columns["objid"], ra, dec, reference,
            objid_column=args.reference_objid_column, ra_column=args.reference_ra_column,
            dec_column=args.reference_dec_column, radius_arcsec=args.match_radius, name=str(args.reference),
        )  # fmt: skip
        columns.update(match.columns())
        print(match.note)
        by_objid = int(np.sum(match.known_by == "objid"))
        summary += f"; {int(match.known.sum())} already in {args.reference.name}"
        summary += f" ({by_objid} by objid, {int(match.known.sum()) - by_objid} by position)"
    written = candidates.export_candidates(columns, args.out, formats)
    print(summary)
    _print_top(columns)
    print("wrote " + ", ".join(str(p) for p in written))
    if args.samp:
        from clients.web.samp import send_table

        votable = next(Path(p) for p in written if format_for(p) == "votable")
        recipients = send_table(votable.resolve().as_uri(), f"ssald candidates {args.label}")
        print(f"sent {votable} to {len(recipients)} SAMP client(s)")
    return 0


def _print_top(columns: dict) -> None:
    shown = ["rank", "objid", "score", "density_score", "z", "bpt_class", "label"]
    shown += [c for c in ("known_by", "reference_id") if c in columns]
    rows = [[_cell(columns[c][i]) for c in shown] for i in range(min(_SHOWN, len(columns["objid"])))]
    widths = [max(len(c), *(len(r[j]) for r in rows)) if rows else len(c) for j, c in enumerate(shown)]
    print("  ".join(c.ljust(w) for c, w in zip(shown, widths)))
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)))


def _cell(value) -> str:
    import numpy as np

    if value is None or value is np.ma.masked:
        return "-"
    if isinstance(value, float | np.floating):
        return f"{value:.4f}"
    return str(value) if str(value) else "-"
