"""The IVOA Simple Cone Search (SCS 1.03) endpoint: ``GET /scs?RA=&DEC=&SR=`` answers a VOTable.

TOPCAT's and Aladin's "Cone Search" dialogs, and ``pyvo.dal.SCSService``, query it with the URL
``http://HOST:PORT/scs?``. What the standard asks, and how this service answers:

- ``RA``, ``DEC``, ``SR``: ICRS decimal degrees; missing, unparsable or out of range is an error. ``SR``
  is at most :data:`MAX_SR` (the service's ``maxSR``); ``SR=0`` (or ``MAXREC=0``) is a metadata query: the
  columns, no rows.
- The table's ``objid`` is the one ``ID_MAIN`` column (a character string, as SCS requires), ``ra`` and
  ``dec`` (double) the ``POS_EQ_RA_MAIN`` and ``POS_EQ_DEC_MAIN`` columns (the UCD1 names of SCS 1.03).
- ``VERB``: 1 gives the identifier and position, 2 (the default) adds photometry, spectroscopy and the
  anomaly score, 3 gives every column.
- ``MAXREC`` (from DALI, which SCS 1.1 adopts): at most that many rows, nearest first (default and
  ceiling :data:`MAX_RECORDS`); when it cuts the result, an ``INFO name="QUERY_STATUS" value="OVERFLOW"``
  says so.
- Errors are a VOTable with an ``INFO name="Error"`` under the root ``VOTABLE`` (HTTP 200, the SCS 1.03
  error document, which pyvo and TOPCAT read as an error).

Parameter names are matched without regard to case, as DALI says.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from clients.client import InCone, ObjectInCone, SsaldClient
from clients.errors import SsaldError
from clients.tables import objects_table

__all__ = ["MAX_RECORDS", "MAX_SR", "VERB_COLUMNS", "MEDIA_TYPE", "ScsError", "cone_search_votable", "error_votable"]

#: Largest search radius in degrees (the gRPC ObjectsInCone limit of 3600 arcsec).
MAX_SR = 1.0
#: Most rows of one answer, and the default MAXREC (the gRPC ObjectsInCone limit).
MAX_RECORDS = 10_000
#: The media type of every answer.
MEDIA_TYPE = "text/xml;content=x-votable"

#: The columns of VERB=1 and VERB=2; VERB=3 has every column of the objects.
VERB_COLUMNS = {
    1: ("objid", "ra", "dec"),
    2: (
        "objid", "ra", "dec", "separation_arcsec", "mag_u", "mag_g", "mag_r", "mag_i", "mag_z", "specobjid", "z",
        "spec_class", "bpt_class", "density_score",
    ),
}  # fmt: skip

# SCS 1.03 speaks UCD1: these three are required; the others describe what they can.
_UCD = {
    "objid": "ID_MAIN",
    "ra": "POS_EQ_RA_MAIN",
    "dec": "POS_EQ_DEC_MAIN",
    "separation_arcsec": "POS_ANG_DIST_GENERAL",
    "z": "REDSHIFT_HC",
    "z_err": "REDSHIFT_HC_ERROR",
    **{f"mag_{b}": f"PHOT_SDSS_{b.upper()}" for b in "ugriz"},
}
_UNIT = {"ra": "deg", "dec": "deg", "separation_arcsec": "arcsec", **{f"mag_{b}": "mag" for b in "ugriz"}}
_DESCRIPTION = {
    "objid": "SDSS photometric objID (the table's key)",
    "ra": "right ascension, ICRS",
    "dec": "declination, ICRS",
    "separation_arcsec": "distance from the cone's centre",
    "specobjid": "SDSS specObjID of the spectrum",
    "z": "spectroscopic redshift",
    "density_score": "anomaly score: larger is lower density in the embedding space",
}


class ScsError(ValueError):
    """A cone-search request that cannot be answered; the message goes into the error VOTable."""


def _number(params: Mapping[str, str], name: str, low: float, high: float, default: float | None = None) -> float:
    text = params.get(name)
    if text is None or not text.strip():
        if default is not None:
            return default
        raise ScsError(f"{name} is required (decimal degrees)")
    try:
        value = float(text)
    except ValueError:
        raise ScsError(f"{name} must be a number, got {text!r}") from None
    if not (math.isfinite(value) and low <= value <= high):
        raise ScsError(f"{name} must be in [{low:g}, {high:g}], got {text!r}")
    return value


def _integer(params: Mapping[str, str], name: str, choices: range, default: int) -> int:
    text = params.get(name)
    if text is None or not text.strip():
        return default
    try:
        value = int(text)
    except ValueError:
        raise ScsError(f"{name} must be an integer, got {text!r}") from None
    if value not in choices:
        raise ScsError(f"{name} must be in [{choices.start}, {choices.stop - 1}], got {text!r}")
    return value


def _votable_bytes(votable: Any) -> bytes:
    buffer = io.BytesIO()
    votable.to_xml(buffer)
    return buffer.getvalue()


def error_votable(message: str) -> bytes:
    """The SCS 1.03 error document: a VOTable whose root holds ``INFO name="Error" value=MESSAGE``."""
    from astropy.io.votable.tree import Info, VOTableFile

    votable = VOTableFile()
    votable.infos.append(Info(name="Error", ID="Error", value=message))
    return _votable_bytes(votable)


def _results_votable(found: InCone, verb: int, limit: int, description: str) -> bytes:
    from astropy.io.votable import from_table
    from astropy.io.votable.tree import Info

    table = objects_table(found.objects, ObjectInCone)
    keep = VERB_COLUMNS.get(verb, table.colnames)
    table = table[[c for c in table.colnames if c in keep]]
    # ID_MAIN is a character string in SCS; bytes make it VOTable `char` rather than `unicodeChar`.
    table.replace_column("objid", np.array([str(o) for o in table["objid"]], dtype=bytes))
    for name in table.colnames:
        column = table[name]
        column.meta.update({"ucd": _UCD[name]} if name in _UCD else {})
        column.unit = _UNIT.get(name)
        column.description = _DESCRIPTION.get(name, name.replace("_", " "))
    votable = from_table(table)
    votable.description = description
    resource = votable.resources[0]
    resource.infos.append(Info(name="QUERY_STATUS", value="OK"))
    if found.n_found > len(found.objects) and len(found.objects) == limit:
        overflow = Info(name="QUERY_STATUS", value="OVERFLOW")
        overflow.content = f"{found.n_found} objects in the cone, {limit} returned"
        resource.infos.append(overflow)
    return _votable_bytes(votable)


def cone_search_votable(client: SsaldClient, params: Mapping[str, str], description: str) -> bytes:
    """The VOTable answer of one SCS request (the query parameters, any case), errors included.

    Parameters
    ----------
    client : SsaldClient
        The gRPC server that holds the table.
    params : mapping
        ``RA``, ``DEC``, ``SR`` and optionally ``VERB``, ``MAXREC``.
    description : str
        The VOTable's DESCRIPTION.
    """
    upper = {k.upper(): v for k, v in params.items()}
    try:
        ra = _number(upper, "RA", -360.0, 360.0) % 360.0
        dec = _number(upper, "DEC", -90.0, 90.0)
        sr = _number(upper, "SR", 0.0, MAX_SR)
        verb = _integer(upper, "VERB", range(1, 4), 2)
        limit = _integer(upper, "MAXREC", range(0, 2**31), MAX_RECORDS)
        if sr == 0.0 or limit == 0:  # a metadata query: the columns, no rows
            return _results_votable(InCone([], 0), verb, 0, description)
        limit = min(limit, MAX_RECORDS)
        found = client.objects_in_cone(ra, dec, sr * 3600.0, limit=limit)
        return _results_votable(found, verb, limit, description)
    except (ScsError, SsaldError) as exc:
        return error_votable(str(exc))
