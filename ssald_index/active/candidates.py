"""Candidate lists: classifier score, anomaly score and spectroscopy per object, cross-matched and exported.

:func:`find_candidates` ranks objects by the stored classifier score of a label
(:mod:`ssald_index.active.scores`) after metadata filters (AGN-like BPT classes, a redshift range, free SQL).
:func:`crossmatch` marks the candidates already in a reference catalogue, by objid and, when the reference
has RA/Dec, by sky position (astropy ``match_to_catalog_sky``). :func:`export_candidates` writes the list
for TOPCAT and friends through :func:`ssald_index.tables.write_table`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ssald_index.active.scores import ScoreRun, is_stale, latest_run, retrain, top_candidates
from ssald_index.filters import Filter, check_where, sql_string
from ssald_index.schema import MAGNITUDE_COLUMNS
from ssald_index.tables import format_for, write_table

__all__ = [
    "AGN_BPT_CLASSES",
    "DEFAULT_MATCH_RADIUS_ARCSEC",
    "CANDIDATE_COLUMNS",
    "Crossmatch",
    "ensure_scores",
    "candidate_filter",
    "find_candidates",
    "read_reference",
    "crossmatch",
    "export_candidates",
]

#: BPT classes of AGN-like narrow-line ratios, as the synthetic survey and GOTHIC spell them.
AGN_BPT_CLASSES = ("Seyfert", "LINER", "composite")
DEFAULT_MATCH_RADIUS_ARCSEC = 2.0

#: Columns of a candidate list taken from the objects table and scores, in output order.
CANDIDATE_COLUMNS = (
    "objid",
    "score",
    "density_score",
    "label",
    "ra",
    "dec",
    *MAGNITUDE_COLUMNS,
    "specobjid",
    "z",
    "z_err",
    "spec_class",
    "spec_subclass",
    "bpt_class",
    "truth_class",
)
_INT_COLUMNS = {"objid", "specobjid"}
_STR_COLUMNS = {"label", "spec_class", "spec_subclass", "bpt_class", "truth_class"}

_OBJID_NAMES = ("objid", "sdssobjid", "bestobjid")
_RA_NAMES = ("ra", "radeg", "raj2000", "raicrs")
_DEC_NAMES = ("dec", "decdeg", "dej2000", "decj2000", "deicrs", "decicrs")
_ID_NAMES = ("systemnumber", "system", "number", "id", "name")


def ensure_scores(
    db_path: str | os.PathLike[str], label: str, classifier: str | None = None, force: bool = False, cv: bool = True
) -> tuple[ScoreRun, str]:
    """Stored scores for ``label``, trained now when missing, stale, of another classifier, or ``force``.

    ``cv`` asks a retrain for cross-validated metrics (:func:`ssald_index.active.scores.retrain`).

    Returns
    -------
    (ScoreRun, str)
        The run behind the scores and one line saying what was done.
    """
    run = latest_run(db_path, label)
    reason = None
    if force:
        reason = "retraining as asked"
    elif run is None:
        reason = f"no stored scores for {label!r}: training"
    elif classifier is not None and classifier != run.classifier:
        reason = f"stored scores come from a {run.classifier} classifier: training {classifier}"
    elif is_stale(db_path, label):
        reason = "labels, embedding model or objects changed since the stored scores: retraining"
    if reason is None:
        return run, f"using stored {run.classifier} scores for {label!r} ({_describe(run)})"
    run = retrain(
        db_path,
        label,
        classifier=classifier or (run.classifier if run else "logistic"),
        cv=cv,
        features=run.features if run else "embedding",  # a retrain keeps what the stored classifier saw
    )
    return run, f"{reason}; trained {run.classifier} for {label!r} ({_describe(run)})"


def _describe(run: ScoreRun) -> str:
    auc = run.metrics.get("cv_roc_auc")
    metric = f", CV ROC AUC {auc:.3f}" if auc is not None else ""
    return (
        f"{run.n_positive} positive / {run.n_negative} negative labels, labels v{run.label_version}, "
        f"model {run.model_id}, {run.n_objects} objects{metric}, trained {run.trained_at:%Y-%m-%d %H:%M} UTC"
    )


def candidate_filter(
    bpt_agn: bool = False,
    bpt: Sequence[str] = (),
    z_min: float | None = None,
    z_max: float | None = None,
    where: str | None = None,
) -> Filter:
    """A :class:`Filter` for candidate lists; BPT classes match case-insensitively.

    Parameters
    ----------
    bpt_agn : bool
        Require an AGN-like BPT class (:data:`AGN_BPT_CLASSES`).
    bpt : sequence of str
        Accepted BPT classes (any of them); combined with ``bpt_agn`` as a union.
    z_min, z_max : float, optional
        Inclusive spectroscopic redshift range.
    where : str, optional
        Extra SQL over the ``objects`` columns.
    """
    classes = sorted({c.strip().lower() for c in [*(AGN_BPT_CLASSES if bpt_agn else ()), *bpt] if c.strip()})
    clauses = [f"lower(bpt_class) IN ({', '.join(sql_string(c) for c in classes)})"] if classes else []
    if where and where.strip():
        clauses.append(f"({check_where(where)})")
    return Filter(z_min=z_min, z_max=z_max, where=" AND ".join(clauses) or None)


def find_candidates(
    db_path: str | os.PathLike[str], label: str, n: int, filter: Filter | None = None, exclude_labelled: bool = False
) -> dict[str, np.ndarray]:
    """The ``n`` best candidates for ``label`` from the stored scores, as named columns (``rank`` first).

    Nulls are masked (``numpy.ma``); strings are ``''`` when missing. See
    :func:`ssald_index.active.scores.top_candidates` for the ranking and filter semantics.
    """
    rows = top_candidates(db_path, label, n, filter=filter, exclude_labelled=exclude_labelled)
    columns: dict[str, np.ndarray] = {"rank": np.arange(1, len(rows) + 1, dtype=np.int64)}
    for name in CANDIDATE_COLUMNS:
        values = [r.get(name) for r in rows]
        if name in _STR_COLUMNS:
            columns[name] = np.array(["" if v is None else str(v) for v in values], dtype=str)
            continue
        dtype = np.int64 if name in _INT_COLUMNS else np.float64
        mask = np.array([v is None for v in values], dtype=bool)
        data = np.array([0 if v is None else v for v in values], dtype=dtype)
        columns[name] = np.ma.array(data, mask=mask) if mask.any() else data
    return columns


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-()]", "", name).lower()


def _find_column(colnames: Sequence[str], wanted: tuple[str, ...], given: str | None, what: str) -> str | None:
    if given is not None:
        if given not in colnames:
            raise ValueError(f"reference catalogue has no {what} column {given!r} (columns: {', '.join(colnames)})")
        return given
    by_norm = {_norm(c): c for c in colnames}
    return next((by_norm[w] for w in wanted if w in by_norm), None)


def read_reference(path: str | os.PathLike[str]) -> Any:
    """A reference catalogue (CSV, FITS, VOTable, Parquet, ECSV…) as an astropy Table."""
    from astropy.table import Table

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"reference catalogue {os.fspath(path)!r} does not exist")
    suffix = path.suffix.lower()
    fmt = {".csv": "ascii.csv", ".vot": "votable", ".xml": "votable", ".parquet": "parquet"}.get(suffix)
    try:
        return Table.read(path, format=fmt) if fmt else Table.read(path)
    except Exception as exc:  # astropy raises many types for unreadable files
        raise ValueError(f"cannot read reference catalogue {os.fspath(path)!r}: {exc}") from None


@dataclass
class Crossmatch:
    """Which candidates a reference catalogue already holds, and how they were matched.

    Attributes
    ----------
    known : ndarray of bool
    known_by : ndarray of str
        ``"objid"``, ``"position"`` or ``""``.
    separation_arcsec : ndarray of float
        Distance to the matched reference row (objid matches) or the nearest reference position; NaN when
        the reference has no positions.
    reference_row : ndarray of int
        0-based row of the matched reference entry, -1 when none.
    reference_id : ndarray of str
        The matched entry's id (e.g. GOTHIC system ``Number``) when the reference has an id column.
    objid_column, ra_column, dec_column, id_column : str or None
        The reference columns used.
    note : str
        How the match was done, e.g. that positions were not available.
    """

    known: np.ndarray
    known_by: np.ndarray
    separation_arcsec: np.ndarray
    reference_row: np.ndarray
    reference_id: np.ndarray
    objid_column: str | None
    ra_column: str | None
    dec_column: str | None
    id_column: str | None
    note: str

    def columns(self) -> dict[str, np.ndarray]:
        """The columns added to a candidate list."""
        return {
            "known": self.known,
            "known_by": self.known_by,
            "reference_sep_arcsec": np.ma.masked_invalid(self.separation_arcsec),
            "reference_row": self.reference_row,
            "reference_id": self.reference_id,
        }


def _degrees(column: Any) -> np.ndarray:
    import astropy.units as u

    unit = getattr(column, "unit", None)
    values = np.ma.filled(np.ma.asarray(column, dtype=np.float64), np.nan)
    return (values * unit).to_value(u.deg) if unit is not None else values


def _objid_values(column: Any) -> np.ndarray:
    """Reference objids as int64, -1 where missing or not an integer."""
    out = np.full(len(column), -1, dtype=np.int64)
    for i, v in enumerate(np.ma.filled(np.ma.asarray(column).astype(object), None)):
        try:
            out[i] = int(str(v).strip())
        except ValueError:
            continue
    return out


def crossmatch(
    objids: np.ndarray,
    ra: np.ndarray,
    dec: np.ndarray,
    reference: Any,
    objid_column: str | None = None,
    ra_column: str | None = None,
    dec_column: str | None = None,
    id_column: str | None = None,
    radius_arcsec: float = DEFAULT_MATCH_RADIUS_ARCSEC,
    name: str = "reference",
) -> Crossmatch:
    """Match candidates to ``reference`` by objid, then the rest by sky position.

    Columns are found by name when not given, ignoring case, spaces and underscores (``obj ID``, ``objID``,
    ``objid``; ``RA``, ``RAJ2000``; ``Dec``, ``DEJ2000``; an id such as ``Number``). Positions are degrees
    unless the column carries a unit.

    Parameters
    ----------
    objids, ra, dec : ndarray
        The candidates (ra/dec in degrees; NaN where unknown).
    reference : astropy.table.Table
        The reference catalogue (:func:`read_reference`).
    objid_column, ra_column, dec_column, id_column : str, optional
        Reference column names, found automatically when omitted.
    radius_arcsec : float
        A candidate within this distance of a reference position is known.
    name : str
        How to call the reference in messages.

    Raises
    ------
    ValueError
        If the reference has neither an objid column nor RA/Dec columns, or the radius is not positive.
    """
    if not np.isfinite(radius_arcsec) or radius_arcsec <= 0:
        raise ValueError(f"match radius must be a positive number of arcsec, got {radius_arcsec!r}")
    colnames = list(reference.colnames)
    objid_col = _find_column(colnames, _OBJID_NAMES, objid_column, "objid")
    ra_col = _find_column(colnames, _RA_NAMES, ra_column, "RA")
    dec_col = _find_column(colnames, _DEC_NAMES, dec_column, "Dec")
    id_col = _find_column(colnames, _ID_NAMES, id_column, "id")
    has_position = ra_col is not None and dec_col is not None
    if objid_col is None and not has_position:
        raise ValueError(
            f"{name} has no objid column and no RA/Dec columns to match on (columns: {', '.join(colnames)}); "
            "name them with --reference-objid-column or --reference-ra-column/--reference-dec-column"
        )
    n = len(objids)
    row = np.full(n, -1, dtype=np.int64)
    known_by = np.full(n, "", dtype="<U8")
    sep = np.full(n, np.nan)
    if objid_col is not None:
        ref_ids = _objid_values(reference[objid_col])
        first = {}
        for i, o in enumerate(ref_ids.tolist()):
            if o >= 0:
                first.setdefault(o, i)
        row = np.array([first.get(int(o), -1) for o in objids], dtype=np.int64)
        known_by[row >= 0] = "objid"
    notes = []
    if has_position:
        from astropy.coordinates import SkyCoord

        ref_ra, ref_dec = _degrees(reference[ra_col]), _degrees(reference[dec_col])
        good_ref = np.flatnonzero(np.isfinite(ref_ra) & np.isfinite(ref_dec))
        good = np.isfinite(ra) & np.isfinite(dec)
        if len(good_ref) and good.any():
            ref = SkyCoord(ref_ra[good_ref], ref_dec[good_ref], unit="deg")
            cand = SkyCoord(np.where(good, ra, 0.0), np.where(good, dec, 0.0), unit="deg")
            nearest, d2d, _ = cand.match_to_catalog_sky(ref)
            nearest_sep = np.where(good, d2d.arcsec, np.nan)
            by_objid = row >= 0
            # objid matches: the distance to that very entry; the rest: to the nearest reference position.
            to_row = np.where(by_objid, row, 0)
            matched_sep = SkyCoord(ref_ra[to_row], ref_dec[to_row], unit="deg").separation(cand).arcsec
            sep = np.where(by_objid & good, matched_sep, nearest_sep)
            close = ~by_objid & good & (nearest_sep <= radius_arcsec)
            row[close] = good_ref[nearest[close]]
            known_by[close] = "position"
        notes.append(f"matched by sky position within {radius_arcsec:g} arcsec ({ra_col}, {dec_col})")
    else:
        notes.append(f"{name} has no RA/Dec columns: position matching not possible")
    if objid_col is not None:
        notes.insert(0, f"matched by objid (column {objid_col!r})")
    else:
        notes.insert(0, f"{name} has no objid column: objid matching not possible")
    known = row >= 0
    if id_col is not None:
        values = reference[id_col]
        ids = np.array([str(values[r]) if r >= 0 else "" for r in row], dtype=str)
    else:
        ids = np.full(n, "", dtype=str)
    return Crossmatch(known, known_by, sep, row, ids, objid_col, ra_col, dec_col, id_col, "; ".join(notes))


def export_candidates(
    columns: dict[str, np.ndarray], out: str | os.PathLike[str], formats: Sequence[str] | None = None
) -> list[Path]:
    """Write the candidate list to ``out`` (format from its suffix) or to ``out`` with each of ``formats``.

    Parameters
    ----------
    columns : dict
        Named equal-length columns (:func:`find_candidates`, plus :meth:`Crossmatch.columns`).
    out : path
        Output file, or the stem shared by every format when ``formats`` is given.
    formats : sequence of {"csv", "fits", "votable", "parquet"}, optional

    Returns
    -------
    list of Path
        The files written.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not formats:
        format_for(out)
        return [write_table(columns, out)]
    suffixes = {"csv": ".csv", "fits": ".fits", "votable": ".vot", "parquet": ".parquet"}
    unknown = [f for f in formats if f not in suffixes]
    if unknown:
        raise ValueError(f"unknown export format(s) {', '.join(unknown)}; expected some of {', '.join(suffixes)}")
    stem = out.with_suffix("") if out.suffix.lower() in (*suffixes.values(), ".xml") else out
    return [write_table(columns, stem.with_name(stem.name + suffixes[f]), f) for f in formats]
