"""SQL filters over the ``objects`` table: metadata prefilters and sky-position (cone) boxes.

:class:`Filter` turns the metadata prefilters of a query (redshift range, spectroscopic and BPT classes,
magnitude ranges, a free SQL where-expression) into one LanceDB ``WHERE`` clause; it is applied as a
*prefilter*, so a filtered kNN still returns the ``k`` asked for when that many rows match.
:func:`cone_where` is the index-friendly box around a sky position; exact separations come from astropy.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from ssald_index.schema import MAGNITUDE_COLUMNS

__all__ = [
    "Filter",
    "check_where",
    "cone_where",
    "angular_separation_arcsec",
    "sql_string",
    "run_filtered",
    "MAX_RADIUS_ARCSEC",
    "MAX_WHERE_CHARS",
    "MAX_WHERE_DEPTH",
    "MAX_WHERE_TERMS",
    "MAX_WHERE_OPERATORS",
    "MAX_QUOTED_CHARS",
]

# A cone larger than a degree is not a "nearest object" question; it would also scan many rows.
MAX_RADIUS_ARCSEC = 3600.0

# Bounds on a user's ``where`` (documented on ``Filter.where`` in proto/ssald.proto). The Lance/DataFusion
# planner recurses once per operator: a chain of ~700 terms overflows its stack (SIGSEGV, the whole server)
# and ~500 cost seconds of CPU. These bounds keep every filter a person writes (tens of terms, a few levels
# of parentheses, an IN list of 255 SDSS objids) and keep the planner far from that depth.
MAX_WHERE_CHARS = 8192
MAX_WHERE_DEPTH = 16  # nesting of parentheses and brackets
MAX_WHERE_TERMS = 256  # operands: column names, function names, numbers, strings, NULL/TRUE/FALSE
MAX_WHERE_OPERATORS = 128  # arithmetic, comparison and logical operators (AND, OR, NOT, IN, LIKE, IS, ...)
# Error messages quote at most this much of a filter, so a status message stays small.
MAX_QUOTED_CHARS = 200

_KEYWORD_OPERATORS = frozenset({"and", "or", "not", "in", "is", "like", "ilike", "between", "similar"})
_SYMBOL_OPERATORS = tuple(":: <= >= <> != == || = < > + - * / % & | ^ ~ !".split())  # longest first
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_CLOSING = {")": "(", "]": "["}


def sql_string(value: str) -> str:
    """``value`` as a quoted SQL string literal (single quotes doubled), safe inside a ``WHERE`` clause."""
    return "'" + str(value).replace("'", "''") + "'"


def quote_excerpt(text: str, limit: int = MAX_QUOTED_CHARS) -> str:
    """``text`` quoted for an error message, cut to its first ``limit`` characters (and its length said)."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


def _quoted_end(where: str, start: int) -> int:
    """Index just past the literal or quoted identifier opening at ``start`` (doubled quotes escape)."""
    quote, i = where[start], start + 1
    while True:
        i = where.find(quote, i)
        if i < 0:
            raise ValueError(f"filter where has an unterminated {quote} quote at character {start}")
        if where.startswith(quote * 2, i):
            i += 2
            continue
        return i + 1


def check_where(where: str) -> str:
    """Check that a user's SQL ``where`` is one bounded, balanced expression; return it stripped.

    The check runs before the expression is wrapped in parentheses and AND-ed with the other clauses, and
    before it reaches the Lance planner: it tokenizes the text (string literals with doubled quotes,
    ``"..."`` and backtick identifiers, numbers, words, operators) and rejects

    - more than :data:`MAX_WHERE_CHARS` characters, :data:`MAX_WHERE_TERMS` operands,
      :data:`MAX_WHERE_OPERATORS` operators or :data:`MAX_WHERE_DEPTH` levels of parentheses;
    - a parenthesis (or bracket) that closes below depth 0 or is never closed, so ``true)) OR ((true``
      cannot escape the parentheses it is wrapped in;
    - comments (``--``, ``/* */``), which could hide a parenthesis, and ``;``;
    - placeholders (``$1``, ``:name``, ``?``, ``@x``), which make the Lance planner panic;
    - unterminated quotes and prefixed strings (``E'...'``).

    Characters inside string literals and quoted identifiers are never inspected, so
    ``source LIKE '%(?)$1%'`` is allowed. Whether the expression is valid SQL over the ``objects`` columns is
    decided by Lance when it runs; a bad one is reported by :func:`run_filtered`.

    Raises
    ------
    ValueError
        Naming the rule broken, the measured value and the limit, with at most :data:`MAX_QUOTED_CHARS`
        characters of the filter.
    """
    try:
        _check_where(where)
    except ValueError as exc:
        raise ValueError(f"{exc}: {quote_excerpt(where)}") from None
    return where.strip()


def _check_where(where: str) -> None:
    if len(where) > MAX_WHERE_CHARS:
        raise ValueError(f"filter where has {len(where)} characters; at most {MAX_WHERE_CHARS} are allowed")
    stack: list[str] = []
    terms = operators = depth = 0
    i, n = 0, len(where)
    while i < n:
        c = where[i]
        if c.isspace():
            i += 1
            continue
        if c in "'\"`":
            i, terms = _quoted_end(where, i), terms + 1
        elif match := _WORD.match(where, i):
            i = match.end()
            if i < n and where[i] in "'\"`":
                raise ValueError(f"filter where has a prefixed string ({match.group()}{where[i]}...), not supported")
            if match.group().lower() in _KEYWORD_OPERATORS:
                operators += 1
            else:
                terms += 1
        elif match := _NUMBER.match(where, i):
            i, terms = match.end(), terms + 1
        elif c in "([":
            stack.append(c)
            i, depth = i + 1, max(depth, len(stack))
        elif c in ")]":
            if not stack or stack.pop() != _CLOSING[c]:
                raise ValueError(f"filter where closes a {c!r} at character {i} that it did not open")
            i += 1
        elif where.startswith(("--", "/*"), i):
            raise ValueError(f"filter where has a comment at character {i}; comments are not allowed")
        elif c in "$?:@" and not where.startswith("::", i):
            raise ValueError(
                f"filter where has a placeholder ({c}) at character {i}; placeholders ($1, :name, ?) are not "
                "supported, write the value itself"
            )
        elif c in ",.":
            i += 1
        elif op := next((o for o in _SYMBOL_OPERATORS if where.startswith(o, i)), None):
            i, operators = i + len(op), operators + 1
        else:
            raise ValueError(f"filter where has an unexpected character {c!r} at character {i}")
    for what, value, limit in (
        ("levels of brackets", depth, MAX_WHERE_DEPTH),
        ("terms (operands)", terms, MAX_WHERE_TERMS),
        ("operators", operators, MAX_WHERE_OPERATORS),
    ):
        if value > limit:
            raise ValueError(f"filter where has {value} {what}; at most {limit} are allowed")
    if stack:
        raise ValueError(f"filter where leaves {len(stack)} bracket(s) open ({''.join(stack)!r} never closed)")
    if terms == 0:
        raise ValueError("filter where has no operand")


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
        A LanceDB SQL expression over the ``objects`` columns, AND-ed with the rest; checked by
        :func:`check_where` (bounded, balanced, no placeholders or comments) when the filter is made.

    Raises
    ------
    ValueError
        If ``where`` fails :func:`check_where`.
    """

    z_min: float | None = None
    z_max: float | None = None
    spec_class: Sequence[str] = ()
    bpt_class: Sequence[str] = ()
    magnitudes: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    where: str | None = None

    def __post_init__(self) -> None:
        if self.where is not None and self.where.strip():
            object.__setattr__(self, "where", check_where(self.where))

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
            raise ValueError(f"bad filter {quote_excerpt(user_where)}: {exc}") from None
        raise
