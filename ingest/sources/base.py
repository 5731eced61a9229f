"""What every input kind shares: the :class:`Item` record, the :class:`Source` protocol and object names.

Kept apart from the package's ``__init__`` so that each kind's module can import it without a cycle.
"""

from __future__ import annotations

import hashlib
import numbers
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np

from encoders.stamps import StampError
from ssald_index.schema import OBJID_MAX, OBJID_MIN

if TYPE_CHECKING:
    from encoders.stamps import Stamp

__all__ = [
    "ARRAY_SUFFIXES",
    "OBJID_MAX",
    "OBJID_MIN",
    "STAMP_SUFFIXES",
    "Item",
    "Source",
    "checked_objid",
    "discovered_objid",
    "file_stem",
    "objid_from_name",
    "radec_from_iau",
]

STAMP_SUFFIXES = (".fits", ".fit", ".fits.gz", ".fits.fz", ".npy", ".png", ".jpg", ".jpeg")
ARRAY_SUFFIXES = (".h5", ".hdf5", ".npz", ".npy")
_DECIMAL = re.compile(r"^[+-]?[0-9]+$")
_IAU = re.compile(r"^J?(\d{2})(\d{2})(\d{2}(?:\.\d+)?)([+-])(\d{2})(\d{2})(\d{2}(?:\.\d+)?)$")


@dataclass(frozen=True, kw_only=True)
class Item:
    """One object to load; each input kind extends it with where its pixels are.

    Items are cheap and picklable: :meth:`Source.discover` makes them in the main process, and
    :func:`ingest.sources.load_item` reads them in worker processes or Ray tasks.

    Attributes
    ----------
    kind : str
        The input kind (class attribute): ``"file"``, ``"bands"``, ``"array"`` or ``"cutout"``.
    source : str
        Human-readable origin, written to the ``source`` column and the quarantine table.
    objid : int or None
        Known at discovery (array, per-band with ``{objid}``, cutout, numeric file name), else ``None``.
    ra, dec : float or None
        Coordinates known at discovery (IAU name, catalogue for cutouts).
    problem : str or None
        Why this entry cannot be ingested, when discovery already knows (a directory with a stamp's name,
        an objid that is not one): it is still an item, so that ingest quarantines it with this reason
        (:func:`ingest.sources.load_item` raises it) instead of skipping it unseen. The reason names the
        entry.
    """

    kind: ClassVar[str] = ""
    source: str
    objid: int | None
    ra: float | None = None
    dec: float | None = None
    problem: str | None = None


class Source(Protocol):
    """One input kind: list its objects cheaply, then read one object's pixels.

    ``discover`` runs once, in the main process, and touches no pixels (headers at most); ``load`` is a
    static method so that workers need only the item, never the source object.
    """

    item_type: ClassVar[type[Item]]

    def discover(self) -> list[Item]:
        """The input's objects, in a stable order."""
        ...

    @staticmethod
    def load(item: Item, bands: tuple[str, ...] | None = None, images_key: str = "images") -> Stamp:
        """The pixels of one of this kind's items; raises :class:`~encoders.stamps.StampError` naming it."""
        ...


def radec_from_iau(name: str) -> tuple[float, float] | None:
    """RA, Dec in degrees from an IAU name ``JHHMMSS.ss+DDMMSS.s`` (``None`` if it is not one)."""
    m = _IAU.match(name)
    if m is None:
        return None
    hh, mm, ss, sign, dd, dm, ds = m.groups()
    ra = 15.0 * (int(hh) + int(mm) / 60 + float(ss) / 3600)
    dec = int(dd) + int(dm) / 60 + float(ds) / 3600
    return ra, -dec if sign == "-" else dec


def checked_objid(value: object, where: str) -> int:
    """``value`` as an objid, if it is an integer in ``OBJID_MIN .. OBJID_MAX``.

    Integers (Python or NumPy) and decimal digit strings are accepted; floats and booleans are not, even
    when they equal an integer (a FITS header value ``1.5`` or ``T`` is not an objid).

    Parameters
    ----------
    value : object
        The candidate, e.g. a FITS ``OBJID`` header value or a file name's stem.
    where : str
        Where it came from, for the message (e.g. ``"/data/x.fits: OBJID header"``).

    Returns
    -------
    int

    Raises
    ------
    StampError
        If ``value`` is not such an integer; the message names ``where`` and the value.
    """
    if isinstance(value, str) and _DECIMAL.match(value.strip()):
        number: int | None = int(value.strip())
    elif isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        number = int(value)
    else:
        number = None
    if number is None or not OBJID_MIN <= number <= OBJID_MAX:
        shown = "T" if value is True else "F" if value is False else repr(value)
        raise StampError(f"{where} {shown} is not an objid (an integer in {OBJID_MIN}..2**63-1)")
    return number


def discovered_objid(value: object, where: str) -> tuple[int | None, str | None]:
    """``(objid, None)`` when ``value`` is an objid (:func:`checked_objid`), else ``(None, why)`` for
    :attr:`Item.problem`: how discovery turns a user's objid (a file name, an array entry) into an item."""
    try:
        return checked_objid(value, where), None
    except StampError as err:
        return None, str(err)


def objid_from_name(name: str) -> int:
    """A stable positive int64 objid for an object known only by name (e.g. an IAU name).

    The first 8 bytes of the name's SHA-256 with the sign bit cleared: the same name
    always gives the same objid, on every machine.
    """
    return int.from_bytes(hashlib.sha256(name.strip().encode()).digest()[:8], "big") & (2**63 - 1)


def file_stem(path: Path) -> str:
    """A stamp file's name without its (possibly double, e.g. ``.fits.gz``) stamp suffix."""
    name = path.name
    for suffix in sorted(STAMP_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem
