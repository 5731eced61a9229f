"""SQL filters over the ``objects`` table: metadata prefilters and sky-position (cone) boxes.

:class:`Filter` turns the metadata prefilters of a query (redshift range, spectroscopic and BPT classes,
magnitude ranges, a free SQL where-expression) into one LanceDB ``WHERE`` clause; it is applied as a
*prefilter*, so a filtered kNN still returns the ``k`` asked for when that many rows match.
:func:`cone_where` is the index-friendly box around a sky position; exact separations come from astropy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from ssald_index.schema import MAGNITUDE_COLUMNS

__all__ = ["Filter", "cone_where", "angular_separation_arcsec", "sql_string", "run_filtered", "MAX_RADIUS_ARCSEC"]

# A cone larger than a degree is not a "nearest object" question; it would also scan many rows.
MAX_RADIUS_ARCSEC = 3600.0


def sql_string(value: str) -> str:
    """``value`` as a quoted SQL string literal (single quotes doubled), safe inside a ``WHERE`` clause."""
    return "'" + str(value).replace("'", "''") + "'"


def _finite_or_none(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"filter bound {name} must be finite, got {value!r}")
    return value


@dataclass(frozen=True)
class Filter:
    """Metadata prefilter of a query; an empty filter matches every row.

    Parameters
    ----------
    z_min, z_max : float, optional
        Inclusive spectroscopic-redshift range (rows without z never match a z bound).
    spec_class, bpt_class : sequence of str
        Accepted classes (any of them); empty accepts all.
    magnitudes : mapping of str to (float or None, float or None)
        Inclusive ranges per magnitude column, e.g. ``{"mag_r": (14.0, 17.5)}``.
    where : str, optional
        A LanceDB SQL expression over the ``objects`` columns, AND-ed with the rest.
    """

    z_min: float | None = None
    z_max: float | None = None
    spec_class: Sequence[str] = ()
    bpt_class: Sequence[str] = ()
    magnitudes: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    where: str | None = None

    def clauses(self) -> list[str]:
        """The SQL conditions, one per constraint."""
        out: list[str] = []
        z_min, z_max = _finite_or_none("z_min", self.z_min), _finite_or_none("z_max", self.z_max)
        if z_min is not None and z_max is not None and z_min > z_max:
            raise ValueError(f"empty redshift range: z_min {z_min} > z_max {z_max}")
        if z_min is not None:
            out.append(f"z >= {z_min!r}")
        if z_max is not None:
            out.append(f"z <= {z_max!r}")
        for column, values in (("spec_class", self.spec_class), ("bpt_class", self.bpt_class)):
            if values:
                out.append(f"{column} IN ({', '.join(sql_string(v) for v in values)})")
        for column, (lo, hi) in self.magnitudes.items():
            if column not in MAGNITUDE_COLUMNS:
                raise ValueError(f"unknown magnitude column {column!r}; expected one of {', '.join(MAGNITUDE_COLUMNS)}")
            lo, hi = _finite_or_none(f"{column} min", lo), _finite_or_none(f"{column} max", hi)
            if lo is not None and hi is not None and lo > hi:
                raise ValueError(f"empty {column} range: {lo} > {hi}")
            if lo is not None:
                out.append(f"{column} >= {lo!r}")
            if hi is not None:
                out.append(f"{column} <= {hi!r}")
        if self.where is not None and self.where.strip():
            out.append(f"({self.where})")
        return out

    def sql(self) -> str | None:
        """The whole condition, or ``None`` when the filter is empty."""
        clauses = self.clauses()
        return " AND ".join(clauses) if clauses else None

    def __bool__(self) -> bool:
        return bool(self.clauses())


def _check_position(ra: float, dec: float, radius_arcsec: float) -> None:
    if not (math.isfinite(ra) and 0.0 <= ra < 360.0):
        raise ValueError(f"ra must be in [0, 360) degrees, got {ra!r}")
    if not (math.isfinite(dec) and -90.0 <= dec <= 90.0):
        raise ValueError(f"dec must be in [-90, 90] degrees, got {dec!r}")
    if not (math.isfinite(radius_arcsec) and 0.0 < radius_arcsec <= MAX_RADIUS_ARCSEC):
        raise ValueError(f"radius must be in (0, {MAX_RADIUS_ARCSEC:g}] arcsec, got {radius_arcsec!r}")


def cone_where(ra: float, dec: float, radius_arcsec: float) -> str:
    """An ra/dec box containing the cone, as SQL (served by the ra/dec BTree indexes).

    The box is a superset of the cone; filter its rows with :func:`angular_separation_arcsec`.
    Handles the RA wrap at 0/360 and cones that reach a pole.
    """
    _check_position(ra, dec, radius_arcsec)
    r = radius_arcsec / 3600.0
    lo_dec, hi_dec = max(dec - r, -90.0), min(dec + r, 90.0)
    clause = f"dec >= {lo_dec!r} AND dec <= {hi_dec!r}"
    cos_edge = math.cos(math.radians(max(abs(lo_dec), abs(hi_dec))))
    if cos_edge <= 1e-9 or r / cos_edge >= 180.0:
        return clause
    half = min(r / cos_edge * 1.0001, 180.0)
    lo, hi = ra - half, ra + half
    if lo < 0.0:
        ras = f"(ra >= {lo + 360.0!r} OR ra <= {hi!r})"
    elif hi >= 360.0:
        ras = f"(ra >= {lo!r} OR ra <= {hi - 360.0!r})"
    else:
        ras = f"ra >= {lo!r} AND ra <= {hi!r}"
    return f"{clause} AND {ras}"


def angular_separation_arcsec(ra: float, dec: float, ras: np.ndarray, decs: np.ndarray) -> np.ndarray:
    """Great-circle separations (arcsec) from (ra, dec) to each (ras, decs), via astropy (Vincenty)."""
    from astropy import units as u
    from astropy.coordinates import angular_separation

    sep = angular_separation(
        ra * u.deg, dec * u.deg, np.asarray(ras, dtype=np.float64) * u.deg, np.asarray(decs, dtype=np.float64) * u.deg
    )
    return np.atleast_1d(sep.to_value(u.arcsec))


def run_filtered(query: Any, user_where: str | None) -> pa.Table:
    """Run a LanceDB query (or a callable returning an Arrow table), naming the user's filter if it is bad.

    Lance reports a malformed ``WHERE`` as a ``ValueError`` about its SQL; with ``user_where`` the error
    names the filter the user wrote instead.
    """
    try:
        return query() if callable(query) else query.to_arrow()
    except ValueError as exc:
        if user_where:
            raise ValueError(f"bad filter {user_where!r}: {exc}") from None
        raise
