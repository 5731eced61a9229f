"""SDSS 64-bit identifiers: the photometric ``objID`` and the spectroscopic ``specObjID``.

Both are bit-packed integers whose layouts are documented by SDSS
(https://www.sdss4.org/dr17/help/glossary/#objid and #specobjid):

``objID`` (photometric object)::

    bits  0-15  obj         object number within the field
    bits 16-27  field       field number
    bit     28  firstField  whether this is the first field of its run that holds the object
    bits 29-31  camcol      camera column, 1-6
    bits 32-47  run         imaging run
    bits 48-58  rerun       photometric reprocessing (301 for DR8+)
    bits 59-62  skyVersion  2 for the final (DR8+) sky solution
    bit     63  unused (0), so every objID is a non-negative int64

``specObjID`` (spectrum)::

    bits  0-9   unused (0)
    bits 10-23  run2d       spectroscopic reduction: an integer, or (N-5)*10000 + M*100 + P for vN_M_P
    bits 24-37  mjd - 50000 night of observation
    bits 38-49  fiberID     fibre on the plate
    bits 50-63  plate       plate number (kept below 8192 here so the value is a non-negative int64)

Every encoder validates its inputs and raises ``ValueError`` naming the field, its
value and the allowed range; decoders are exact inverses of the encoders.
"""

from __future__ import annotations

import operator

__all__ = ["decode_objid", "decode_specobjid", "encode_objid", "encode_specobjid"]

# (name, first bit, width) for each field, lowest bits first.
_OBJID_FIELDS: tuple[tuple[str, int, int], ...] = (
    ("obj", 0, 16),
    ("field", 16, 12),
    ("first_field", 28, 1),
    ("camcol", 29, 3),
    ("run", 32, 16),
    ("rerun", 48, 11),
    ("sky_version", 59, 4),
)
_SPECOBJID_FIELDS: tuple[tuple[str, int, int], ...] = (
    ("run2d", 10, 14),
    ("mjd_offset", 24, 14),
    ("fiber", 38, 12),
    ("plate", 50, 13),  # bit 63 (plate >= 8192) is left 0 to stay within int64
)
_MJD_BASE = 50000
_INT64_MAX = 2**63 - 1


def _check(name: str, value: int, low: int, high: int) -> int:
    """Return ``value`` as int, or raise ``ValueError`` if it is not an integer in ``[low, high]``."""
    try:
        if isinstance(value, bool):
            raise TypeError
        value = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")
    return value


def _pack(values: dict[str, int], fields: tuple[tuple[str, int, int], ...]) -> int:
    packed = 0
    for name, shift, _width in fields:
        packed |= values[name] << shift
    return packed


def _unpack(packed: int, fields: tuple[tuple[str, int, int], ...]) -> dict[str, int]:
    return {name: (packed >> shift) & ((1 << width) - 1) for name, shift, width in fields}


def encode_objid(
    run: int, rerun: int, camcol: int, field: int, obj: int, sky_version: int = 2, first_field: int = 0
) -> int:
    """Pack SDSS photometric identifiers into a 64-bit ``objID``.

    Parameters
    ----------
    run : int
        Imaging run, 0-65535.
    rerun : int
        Photometric rerun, 0-2047 (301 for DR8 and later).
    camcol : int
        Camera column, 1-6.
    field : int
        Field number within the run, 0-4095.
    obj : int
        Object number within the field, 0-65535.
    sky_version : int, optional
        Sky solution version, 0-15; 2 (the default) for DR8 and later.
    first_field : int, optional
        1 if this is the first field holding the object, else 0 (default).

    Returns
    -------
    int
        The objID, a non-negative integer below 2**63.

    Raises
    ------
    ValueError
        If any argument is not an integer within its range; the message names it.
    """
    values = {
        "obj": _check("obj", obj, 0, 2**16 - 1),
        "field": _check("field", field, 0, 2**12 - 1),
        "first_field": _check("first_field", first_field, 0, 1),
        "camcol": _check("camcol", camcol, 1, 6),
        "run": _check("run", run, 0, 2**16 - 1),
        "rerun": _check("rerun", rerun, 0, 2**11 - 1),
        "sky_version": _check("sky_version", sky_version, 0, 2**4 - 1),
    }
    return _pack(values, _OBJID_FIELDS)


def decode_objid(objid: int) -> dict[str, int]:
    """Unpack a 64-bit SDSS ``objID`` into its fields.

    Parameters
    ----------
    objid : int
        The objID (a non-negative integer below 2**63; NumPy integers are accepted).

    Returns
    -------
    dict
        ``{"run", "rerun", "camcol", "field", "obj", "sky_version", "first_field"}`` as ints.

    Raises
    ------
    ValueError
        If ``objid`` is not an integer in ``[0, 2**63 - 1]``.
    """
    objid = _check("objid", objid, 0, _INT64_MAX)
    return _unpack(objid, _OBJID_FIELDS)


def encode_specobjid(plate: int, fiber: int, mjd: int, run2d: int = 26) -> int:
    """Pack SDSS spectroscopic identifiers into a 64-bit ``specObjID``.

    Parameters
    ----------
    plate : int
        Plate number, 1-8191 (SDSS-I/II plates are 266-3000).
    fiber : int
        Fibre number on the plate, 1-4095 (1-640 for SDSS-I/II).
    mjd : int
        Modified Julian Date of the observation, 50000-66383.
    run2d : int, optional
        Integer code of the spectroscopic reduction, 0-16383 (26 for the SDSS-I/II
        legacy reduction, the default).

    Returns
    -------
    int
        The specObjID, a positive integer below 2**63 (0 is reserved for "no spectrum").

    Raises
    ------
    ValueError
        If any argument is not an integer within its range; the message names it.
    """
    values = {
        "plate": _check("plate", plate, 1, 2**13 - 1),
        "fiber": _check("fiber", fiber, 1, 2**12 - 1),
        "mjd_offset": _check("mjd", mjd, _MJD_BASE, _MJD_BASE + 2**14 - 1) - _MJD_BASE,
        "run2d": _check("run2d", run2d, 0, 2**14 - 1),
    }
    return _pack(values, _SPECOBJID_FIELDS)


def decode_specobjid(specobjid: int) -> dict[str, int]:
    """Unpack a 64-bit SDSS ``specObjID`` into ``{"plate", "fiber", "mjd", "run2d"}``.

    Parameters
    ----------
    specobjid : int
        The specObjID, a positive integer below 2**63.

    Returns
    -------
    dict
        The fields as ints, with ``mjd`` as the full Modified Julian Date.

    Raises
    ------
    ValueError
        If ``specobjid`` is not an integer in ``[1, 2**63 - 1]``.
    """
    specobjid = _check("specobjid", specobjid, 1, _INT64_MAX)
    fields = _unpack(specobjid, _SPECOBJID_FIELDS)
    return {
        "plate": fields["plate"],
        "fiber": fields["fiber"],
        "mjd": fields["mjd_offset"] + _MJD_BASE,
        "run2d": fields["run2d"],
    }
