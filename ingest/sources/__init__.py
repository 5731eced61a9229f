"""Where stamps come from: one module per input kind behind the :class:`~ingest.sources.base.Source` protocol.

Discovery (:func:`discover`) is cheap and runs once in the main process; it returns picklable
:class:`Item` records, one subclass per kind. Loading (:func:`load_item`) reads one object's pixels and
runs in worker processes (or Ray tasks).

Modules
-------
base
    The :class:`Source` protocol, the :class:`Item` record and the objid/position helpers they share.
files
    A folder of per-object files (FITS cubes, ``.npy``, PNG/JPEG).
bands
    A folder of per-band FITS files matched by a pattern (``{objid}_{band}.fits``).
arrays
    An HDF5/NPZ/NPY array file of stamps.
cutouts
    Survey frames with a WCS, cut at catalogue positions.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from encoders.stamps import Stamp, StampError
from ingest.sources.arrays import ArrayFile, ArrayItem, array_run, load_rows
from ingest.sources.bands import BandFiles, BandItem
from ingest.sources.base import (
    ARRAY_SUFFIXES,
    STAMP_SUFFIXES,
    Item,
    Source,
    checked_objid,
    file_stem,
    objid_from_name,
    radec_from_iau,
)
from ingest.sources.cutouts import CutoutItem, FrameCutouts
from ingest.sources.files import FileItem, StampFiles, find_stamps

__all__ = [
    "ARRAY_SUFFIXES",
    "SOURCES",
    "STAMP_SUFFIXES",
    "ArrayFile",
    "ArrayItem",
    "BandFiles",
    "BandItem",
    "CutoutItem",
    "FileItem",
    "FrameCutouts",
    "Item",
    "Source",
    "StampFiles",
    "array_run",
    "discover",
    "find_stamps",
    "load_item",
    "load_rows",
    "objid_from_name",
    "open_source",
    "radec_from_iau",
]

#: Every input kind; :func:`load_item` dispatches on their ``item_type``.
SOURCES: tuple[type[Source], ...] = (StampFiles, BandFiles, ArrayFile, FrameCutouts)


def open_source(
    data: str | os.PathLike[str] | None,
    *,
    bands: Sequence[str],
    band_pattern: str | None = None,
    frames: Sequence[str | os.PathLike[str]] = (),
    catalogue: Any = None,
    cutout_size: int = 64,
    images_key: str = "images",
    objid_key: str = "objid",
) -> Source:
    """The :class:`Source` an input describes.

    Parameters
    ----------
    data : path or None
        A folder of stamps, a folder of per-band files (with ``band_pattern``), or an
        HDF5/NPZ/NPY array file. Ignored when ``frames`` are given.
    bands : sequence of str
        Band order of the cubes (the model's); per-band files and frames are stacked in it.
    band_pattern : str, optional
        Per-band file names, e.g. ``"{objid}_{band}.fits"``.
    frames : sequence of path
        Survey frames with a WCS; one cutout per catalogue row is made from them.
    catalogue : ingest.catalogue.Catalogue, optional
        Needed for cutouts (RA/Dec of every object).
    cutout_size : int
        Cutout side in pixels.
    images_key, objid_key : str
        Dataset names in HDF5/NPZ files (``objid_key`` also names the ``.npy`` beside an array).

    Raises
    ------
    FileNotFoundError
        If a per-band folder does not exist.
    """
    if frames:
        return FrameCutouts(tuple(Path(f) for f in frames), catalogue, tuple(bands), cutout_size)
    path = Path(data if data is not None else ".")
    if path.is_file() and path.name.lower().endswith(ARRAY_SUFFIXES):
        return ArrayFile(path, images_key, objid_key)
    if band_pattern:
        if not path.is_dir():
            raise FileNotFoundError(f"stamp directory {os.fspath(path)!r} does not exist")
        folder = path / "stamps" if (path / "stamps").is_dir() else path
        return BandFiles(folder, band_pattern, tuple(bands))
    return StampFiles(path)


def discover(data: str | os.PathLike[str] | None, **options: Any) -> list[Item]:
    """List the objects of an input without reading their pixels (arguments as for :func:`open_source`).

    Returns
    -------
    list of Item
    """
    return open_source(data, **options).discover()


def load_item(item: Item, bands: Sequence[str] | None = None, images_key: str = "images") -> tuple[int, Stamp]:
    """Read one object's cube and objid.

    Parameters
    ----------
    item : Item
        From :func:`discover`.
    bands : sequence of str, optional
        Band names given by the user for formats that carry none (PNG/JPEG, NPY, arrays).
    images_key : str
        Dataset name of the images in HDF5/NPZ files.

    Returns
    -------
    (int, Stamp)

    Raises
    ------
    StampError
        If the pixels cannot be read, or no objid can be found, or the one found is not an integer in
        ``OBJID_MIN .. OBJID_MAX`` (:func:`~ingest.sources.base.checked_objid`); the message names the source.
    """
    kind = next((s for s in SOURCES if isinstance(item, s.item_type)), None)
    if kind is None:
        raise ValueError(f"unknown item kind {type(item).__name__} for {item.source}")
    if item.problem is not None:
        raise StampError(f"{item.source}: {item.problem}")
    stamp = kind.load(item, bands, images_key)
    if "OBJID" in stamp.header:
        objid = checked_objid(stamp.header["OBJID"], f"{item.source}: OBJID header value")
    elif item.objid is not None:
        objid = item.objid
    else:
        stem = file_stem(Path(item.source))
        if stem.isdigit():
            objid = checked_objid(stem, f"{item.source}: file name")
        elif radec_from_iau(stem) is not None:
            objid = objid_from_name(stem)
        else:
            problem = "no OBJID header key, and the file name is neither an objid nor an IAU name"
            raise StampError(f"{item.source}: {problem}")
    if item.ra is not None and "RA" not in stamp.header:
        stamp.header.update(RA=item.ra, DEC=item.dec)
    return objid, stamp
