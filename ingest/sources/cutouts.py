"""Survey frames with a WCS, cut into ``size x size`` stamps centred on catalogue RA/Dec
(:class:`astropy.nddata.Cutout2D`); each band comes from the first frame of that band that covers the object.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from encoders.stamps import Stamp, StampError
from encoders.stamps.fits import bands_from_header
from ingest.sources.base import Item

__all__ = ["CutoutItem", "FrameCutouts", "read_frame"]


@dataclass(frozen=True, kw_only=True)
class CutoutItem(Item):
    """A ``size x size`` cutout at (``ra``, ``dec``): ``(band, frame path, plane)`` per band (``""`` where no
    frame covers the object)."""

    kind: ClassVar[str] = "cutout"
    planes: tuple[tuple[str, str, int], ...]
    size: int


@lru_cache(maxsize=32)
def read_frame(path: str, plane: int) -> tuple[np.ndarray, Any]:
    """One plane of a frame as float32 and its celestial WCS (cached: every cutout of a frame reuses it)."""
    from astropy.io import fits
    from astropy.wcs import WCS, FITSFixedWarning

    with fits.open(path, memmap=False) as hdul:
        hdu = next(h for h in hdul if getattr(h, "data", None) is not None)
        data = np.asarray(hdu.data, dtype=np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)  # astropy reports header fixes it made itself
            wcs = WCS(hdu.header).celestial
    return (data[plane] if data.ndim == 3 else data), wcs


def _frame_bands(frames: Sequence[Path]) -> dict[str, list[tuple[str, int]]]:
    """band -> [(frame path, plane)] from each frame's header (FILTER/BAND, or BANDS for cubes)."""
    from astropy.io import fits

    out: dict[str, list[tuple[str, int]]] = {}
    for frame in frames:
        header = fits.getheader(frame)
        n = int(header.get("NAXIS3", 1)) if int(header.get("NAXIS", 2)) == 3 else 1
        for plane, band in enumerate(bands_from_header(dict(header), n, os.fspath(frame))):
            out.setdefault(band, []).append((os.fspath(frame), plane))
    return out


def _covers(frame: tuple[str, int], ra: float, dec: float) -> bool:
    data, wcs = read_frame(*frame)
    x, y = wcs.world_to_pixel_values(ra, dec)
    return bool(0 <= x < data.shape[-1] and 0 <= y < data.shape[-2])


@dataclass(frozen=True)
class FrameCutouts:
    """Cutouts of ``size`` pixels from ``frames`` at the RA/Dec of every row of ``catalogue``
    (an :class:`ingest.catalogue.Catalogue`), stacked in ``bands`` order."""

    frames: tuple[Path, ...]
    catalogue: Any
    bands: tuple[str, ...]
    size: int
    item_type: ClassVar[type[Item]] = CutoutItem

    def discover(self) -> list[CutoutItem]:
        """One item per catalogue row with coordinates, naming the frame that covers it in each band.

        Raises
        ------
        ValueError
            If there is no catalogue with ``ra`` and ``dec``.
        """
        catalogue = self.catalogue
        if catalogue is None or "ra" not in catalogue.columns:
            raise ValueError("cutouts from frames need a catalogue with ra and dec (--catalogue)")
        by_band = _frame_bands(self.frames)
        items = []
        for objid, i in catalogue.index.items():
            ra, dec = catalogue.columns["ra"][i], catalogue.columns["dec"][i]
            if ra is None or dec is None:
                continue
            chosen = []
            for band in self.bands:
                hit = next((f for f in by_band.get(band, []) if _covers(f, float(ra), float(dec))), ("", 0))
                chosen.append((band, *hit))
            source = f"cutout({ra:.6f},{dec:.6f})"
            items.append(
                CutoutItem(
                    source=source, objid=objid, ra=float(ra), dec=float(dec), planes=tuple(chosen), size=self.size
                )
            )
        return items

    @staticmethod
    def load(item: CutoutItem, bands: Sequence[str] | None = None, images_key: str = "images") -> Stamp:
        """Cut every band; parts outside a frame are NaN (validation quarantines stamps with too many)."""
        from astropy.nddata import Cutout2D
        from astropy.nddata.utils import NoOverlapError, PartialOverlapError

        planes = []
        for band, path, plane in item.planes:
            if not path:
                raise StampError(f"{item.source}: no frame in band {band!r} covers RA {item.ra}, Dec {item.dec}")
            data, wcs = read_frame(path, plane)
            x, y = wcs.world_to_pixel_values(item.ra, item.dec)
            size = (item.size, item.size)
            try:
                cut = Cutout2D(data, (float(x), float(y)), size, mode="partial", fill_value=np.nan, copy=True)
            except (NoOverlapError, PartialOverlapError) as exc:
                raise StampError(f"{item.source}: band {band} frame {path}: {exc}") from exc
            planes.append(cut.data.astype(np.float32))
        header = {"RA": item.ra, "DEC": item.dec}
        return Stamp(np.stack(planes), tuple(b for b, _, _ in item.planes), header, item.source)
