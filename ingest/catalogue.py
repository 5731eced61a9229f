"""Read object catalogues (FITS, CSV, Parquet…) and map their columns onto the objects schema.

SDSS PhotoObj/SpecObj names (``objID``, ``specObjID``, ``zErr``, ``class``, ``subClass``…)
are recognised case-insensitively; other names can be mapped explicitly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from astropy.table import Table

from ssald_index.schema import objects_schema

__all__ = ["ALIASES", "BPT_CODES", "NAME_COLUMNS", "Catalogue", "read_catalogue"]

# Schema column -> accepted catalogue names (lower case), in order of preference.
ALIASES: dict[str, tuple[str, ...]] = {
    "objid": ("objid", "obj_id", "obj id", "objid_sdss"),
    "ra": ("ra", "ra_deg", "raj2000"),
    "dec": ("dec", "dec_deg", "dej2000", "decj2000"),
    "specobjid": ("specobjid", "spec_objid"),
    # A plain "z" is the redshift only when the catalogue has no plain u, g, r, i magnitudes beside it
    # (SpecObj); next to them (PhotoObj, GOTHIC) it is the z-band magnitude. See _resolve.
    "z": ("redshift", "z_spec", "specz", "z"),
    "z_err": ("z_err", "zerr", "redshift_err"),
    "spec_class": ("spec_class", "class"),
    "spec_subclass": ("spec_subclass", "subclass"),
    "bpt_class": ("bpt_class", "bpt", "bptclass", "class (from bpt)"),
    "truth_class": ("truth_class",),
    **{f"mag_{b}": (f"mag_{b}", b, f"modelmag_{b}", f"petromag_{b}", f"cmodelmag_{b}") for b in "ugriz"},
}

#: Columns holding IAU names (``J001240.06-000210.4``), used for objids when there is no objid column.
NAME_COLUMNS = ("iauname", "iau_name", "name", "file")

#: SDSS galSpecExtra ``bptclass`` codes (Brinchmann et al. 2004) -> the names used in the objects table.
BPT_CODES = {1: "star-forming", 2: "star-forming (low S/N)", 3: "composite", 4: "AGN", 5: "LINER (low S/N)"}

_MISSING_STRINGS = {"", "...", "null", "none", "nan", "--"}
#: Bad objid rows a catalogue error names before it only counts the rest.
_MAX_NAMED = 5


@dataclass(frozen=True)
class Catalogue:
    """Catalogue rows keyed by objid, with schema column names.

    Attributes
    ----------
    path : str
        Where the catalogue was read from.
    columns : dict[str, numpy.ndarray]
        Schema-named columns, all of the same length; missing values are ``None``.
    index : dict[int, int]
        objid -> row number.
    """

    path: str
    columns: dict[str, np.ndarray]
    index: dict[int, int]

    def __len__(self) -> int:
        return len(self.index)

    def row(self, objid: int) -> dict[str, Any] | None:
        """Schema-named values for ``objid``, or ``None`` when the catalogue has no such row."""
        i = self.index.get(int(objid))
        if i is None:
            return None
        return {name: col[i] for name, col in self.columns.items()}


def _clean(name: str, values: np.ndarray) -> np.ndarray:
    """Turn one catalogue column into Python values with ``None`` for missing ones."""
    mask = np.ma.getmaskarray(values) if np.ma.isMaskedArray(values) else np.zeros(len(values), bool)
    data = np.ma.getdata(values)
    out = np.empty(len(data), dtype=object)
    for i, (v, m) in enumerate(zip(data.tolist(), mask)):
        if m:
            out[i] = None
        elif isinstance(v, bytes):
            v = v.decode().strip()
            out[i] = None if v.lower() in _MISSING_STRINGS else v
        elif isinstance(v, str):
            v = v.strip()
            out[i] = None if v.lower() in _MISSING_STRINGS else v
        elif isinstance(v, float) and not np.isfinite(v):
            out[i] = None
        elif name == "bpt_class" and isinstance(v, (int, np.integer)):
            out[i] = BPT_CODES.get(int(v))  # -1 (unclassifiable) and unknown codes -> None
        elif name == "specobjid" and v == 0:
            out[i] = None  # SDSS writes 0 for "no spectrum"
        else:
            out[i] = v
    return out


_FIELD_TYPES = {f.name: f.type for f in objects_schema(1) if f.name != "embedding"}


def _coerce(target: str, source: str, values: np.ndarray, catalogue: str) -> np.ndarray:
    """Convert cleaned values to the schema type of ``target`` (numbers to text for string columns, e.g.
    ``--column truth_class=ring`` with 0/1 values); a value that cannot be converted is an error naming it."""
    kind = _FIELD_TYPES.get(target)
    if kind is None:
        return values
    if pa.types.is_string(kind):
        convert = str
    elif pa.types.is_floating(kind):
        convert = float
    elif pa.types.is_integer(kind):
        convert = int
    else:
        return values
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        if v is None:
            out[i] = None
            continue
        try:
            out[i] = convert(v)
        except (TypeError, ValueError):
            raise ValueError(
                f"catalogue {catalogue!r}, row {i}: column {source!r} (mapped to {target}) holds {v!r}, "
                f"which is not a {kind}"
            ) from None
    return out


def _resolve(colnames: list[str], column_map: Mapping[str, str], name: str) -> dict[str, str | None]:
    """Schema column -> catalogue column (or None), from explicit mappings first, then aliases."""
    by_lower = {c.lower(): c for c in colnames}
    plain_mags = all(b in by_lower for b in "ugri")
    resolved: dict[str, str | None] = {}
    for target, aliases in ALIASES.items():
        explicit = column_map.get(target)
        if explicit is not None and explicit not in colnames:
            raise ValueError(f"catalogue {name!r} has no column {explicit!r} (mapped to {target!r})")
        if target == "z" and plain_mags:
            aliases = tuple(a for a in aliases if a != "z")
        if target == "mag_z" and not plain_mags:
            aliases = tuple(a for a in aliases if a != "z")
        resolved[target] = explicit or next((by_lower[a] for a in aliases if a in by_lower), None)
    return resolved


def _checked_objids(values: np.ndarray, source: str, catalogue: str) -> np.ndarray:
    """The objid column as Python ints, each checked (:func:`ingest.sources.base.checked_objid`): no float,
    boolean, missing or out-of-range value becomes an objid by a cast (1.5 would be 1). An error names the
    first bad rows and counts the rest."""
    from ingest.sources.base import discovered_objid

    checked = [discovered_objid(v, f"row {i}: column {source!r} value") for i, v in enumerate(values)]
    bad = [problem for _, problem in checked if problem is not None]
    if bad:
        more = f" (and {len(bad) - _MAX_NAMED} more rows)" if len(bad) > _MAX_NAMED else ""
        raise ValueError(f"catalogue {catalogue!r}: {'; '.join(bad[:_MAX_NAMED])}{more}")
    return np.asarray([objid for objid, _ in checked], dtype=object)


def _objids_from_names(table: Table, columns: dict[str, np.ndarray]) -> None:
    """Objids (and RA/Dec) from an IAU-name column, as :func:`ingest.sources.load_item` derives them for files."""
    from ingest.sources import objid_from_name, radec_from_iau

    by_lower = {c.lower(): c for c in table.colnames}
    name_col = next((by_lower[a] for a in NAME_COLUMNS if a in by_lower), None)
    if name_col is None:
        return
    names = [str(v).strip() for v in table[name_col]]
    names = [n.rsplit(".", 1)[0] if n.lower().endswith((".png", ".jpg", ".jpeg", ".fits")) else n for n in names]
    coords = [radec_from_iau(n) for n in names]
    if not all(coords):
        return
    columns["objid"] = np.asarray([objid_from_name(n) for n in names], dtype=object)
    columns.setdefault("ra", np.asarray([c[0] for c in coords], dtype=object))
    columns.setdefault("dec", np.asarray([c[1] for c in coords], dtype=object))


def read_catalogue(path: str | os.PathLike[str], column_map: Mapping[str, str] | None = None) -> Catalogue:
    """Read a catalogue and map its columns onto the objects schema.

    Parameters
    ----------
    path : path
        FITS, CSV, ECSV, VOTable or Parquet file (format from the extension, via astropy).
    column_map : mapping, optional
        Extra ``{schema_column: catalogue_column}`` pairs that take precedence over the aliases.

    Returns
    -------
    Catalogue

    Raises
    ------
    ValueError
        If the file has no objid column (nor a column of IAU names to derive objids from, see
        :func:`ingest.sources.objid_from_name`) or an objid appears twice.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"catalogue {os.fspath(path)!r} does not exist")
    fmt = {".csv": "ascii.csv", ".parquet": "parquet", ".pq": "parquet"}.get(path.suffix.lower())
    table = Table.read(path, format=fmt) if fmt else Table.read(path)
    columns: dict[str, np.ndarray] = {}
    for target, source in _resolve(table.colnames, column_map or {}, path.name).items():
        if source is not None:
            values = _clean(target, table[source])
            columns[target] = (
                _checked_objids(values, source, path.name)
                if target == "objid"
                else _coerce(target, source, values, path.name)
            )
    if "objid" not in columns:
        _objids_from_names(table, columns)
    if "objid" not in columns:
        raise ValueError(
            f"catalogue {path.name!r} has no objid column (looked for {', '.join(ALIASES['objid'])}; "
            f"columns are {', '.join(table.colnames)}); map one with --column objid=NAME"
        )
    objids = [int(v) for v in columns["objid"]]
    index: dict[int, int] = {}
    for i, objid in enumerate(objids):
        if objid in index:
            raise ValueError(f"catalogue {path.name!r} lists objid {objid} twice (rows {index[objid]} and {i})")
        index[objid] = i
    columns["objid"] = np.asarray(objids, dtype=object)
    return Catalogue(path=os.fspath(path), columns=columns, index=index)
