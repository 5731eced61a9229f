"""Cross-match marks for candidate lists: which candidates a reference catalogue (e.g. GOTHIC) already has.

``ssald web --crossmatch FILE`` reads the catalogue once (any table astropy reads: CSV, FITS, VOTable, ECSV,
Parquet); each candidate then gets ``known`` (in the reference by objid, or by position within the match
radius), ``known_by``, ``reference_sep_arcsec`` (to the nearest reference position) and ``reference_id``.
Columns are found by name, case and ``_`` ignored: ``objid``/``obj_id``/``dr7objid``, ``ra``/``raj2000``,
``dec``/``dej2000``, and an id such as ``name``/``number``/``id``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["DEFAULT_RADIUS_ARCSEC", "Reference"]

#: Candidates within this distance of a reference position are marked known.
DEFAULT_RADIUS_ARCSEC = 2.0

_NAMES = {
    "objid": ("objid", "dr7objid", "sdssobjid", "dr8objid"),
    "ra": ("ra", "raj2000", "radeg", "ra_deg"),
    "dec": ("dec", "dej2000", "decj2000", "decdeg", "dec_deg"),
    "id": ("name", "number", "id", "system"),
}


def _pick(colnames: list[str], kind: str) -> str | None:
    folded = {name.lower().replace("_", "").replace(" ", ""): name for name in colnames}
    return next((folded[w.replace("_", "")] for w in _NAMES[kind] if w.replace("_", "") in folded), None)


@dataclass
class Reference:
    """A reference catalogue read for cross-matching.

    Attributes
    ----------
    name : str
        The file's name, shown in the page and the table files.
    objids : ndarray of int64 or None
        The objid column (-1 where missing), when it has one.
    coords : astropy.coordinates.SkyCoord or None
        The finite positions, when it has RA and Dec.
    ids : list of str
        The id of each row (its row number when it has no id column).
    coord_ids : list of str
        The id of each position in ``coords``.
    radius_arcsec : float
    """

    name: str
    objids: np.ndarray | None
    coords: Any
    ids: list[str]
    coord_ids: list[str]
    radius_arcsec: float = DEFAULT_RADIUS_ARCSEC

    @classmethod
    def read(cls, path: str | os.PathLike[str], radius_arcsec: float = DEFAULT_RADIUS_ARCSEC) -> Reference:
        """Read ``path``.

        Raises
        ------
        ValueError
            The file cannot be read (the message is one line), has neither an objid column nor RA/Dec
            columns, or the radius is not positive.
        """
        from astropy.coordinates import SkyCoord
        from astropy.table import Table

        if not radius_arcsec > 0:
            raise ValueError(f"cross-match radius must be positive arcsec, got {radius_arcsec!r}")
        try:
            table = Table.read(path, format="ascii.csv") if str(path).lower().endswith(".csv") else Table.read(path)
        except Exception as exc:  # astropy raises many types for unreadable files
            # One line: astropy follows "Format could not be identified" with a table of every format.
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ValueError(f"cannot read cross-match catalogue {os.fspath(path)!r}: {reason}") from None
        cols = {kind: _pick(table.colnames, kind) for kind in _NAMES}
        if cols["objid"] is None and (cols["ra"] is None or cols["dec"] is None):
            raise ValueError(
                f"cross-match catalogue {os.fspath(path)!r} has no objid and no RA/Dec columns "
                f"(columns: {', '.join(table.colnames)})"
            )
        objids = None
        if cols["objid"] is not None:
            raw = np.ma.filled(np.ma.asarray(table[cols["objid"]]).astype(object), None)
            objids = np.array([int(v) if str(v).strip().lstrip("-").isdigit() else -1 for v in raw], dtype=np.int64)
        ids = [str(v) for v in table[cols["id"]]] if cols["id"] else [str(i) for i in range(len(table))]
        coords, coord_ids = None, []
        if cols["ra"] is not None and cols["dec"] is not None:
            ra, dec = (np.ma.filled(np.ma.asarray(table[cols[c]], dtype=float), np.nan) for c in ("ra", "dec"))
            good = np.flatnonzero(np.isfinite(ra) & np.isfinite(dec))
            coords = SkyCoord(ra[good], dec[good], unit="deg") if len(good) else None
            coord_ids = [ids[i] for i in good]
        return cls(os.path.basename(os.fspath(path)), objids, coords, ids, coord_ids, radius_arcsec)

    def match(self, objids: list[int], ra: list[float | None], dec: list[float | None]) -> list[dict[str, Any]]:
        """For each candidate: ``known``, ``known_by`` (``objid``, ``position`` or ``""``),
        ``reference_sep_arcsec`` (to the nearest reference position; None without positions) and
        ``reference_id`` (``""`` when not known)."""
        from astropy.coordinates import SkyCoord

        n = len(objids)
        marks: list[dict[str, Any]] = [
            {"known": False, "known_by": "", "reference_sep_arcsec": None, "reference_id": ""} for _ in range(n)
        ]
        if self.objids is not None:
            row_of = {int(o): i for i, o in reversed(list(enumerate(self.objids.tolist()))) if o >= 0}
            for mark, objid in zip(marks, objids):
                if int(objid) in row_of:
                    mark.update(known=True, known_by="objid", reference_id=self.ids[row_of[int(objid)]])
        if self.coords is not None and n:
            given = np.array([r is not None and d is not None for r, d in zip(ra, dec)])
            cand = SkyCoord(
                [r if ok else 0.0 for r, ok in zip(ra, given)],
                [d if ok else 0.0 for d, ok in zip(dec, given)],
                unit="deg",
            )
            nearest, sep, _ = cand.match_to_catalog_sky(self.coords)
            for mark, ok, row, arcsec in zip(marks, given, nearest.tolist(), sep.arcsec.tolist()):
                if not ok:
                    continue
                mark["reference_sep_arcsec"] = arcsec
                if not mark["known"] and arcsec <= self.radius_arcsec:
                    mark.update(known=True, known_by="position", reference_id=self.coord_ids[row])
        return marks
