"""Per-band FITS files, one per band per object, matched by a naming pattern such as ``{objid}_{band}.fits``.

With ``{name}`` instead of ``{objid}`` the objid comes from the header (or an IAU name), as for single files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from encoders.stamps import Stamp, StampError, read_stamp
from ingest.sources.base import Item, discovered_objid

__all__ = ["BandFiles", "BandItem"]


@dataclass(frozen=True, kw_only=True)
class BandItem(Item):
    """One object's per-band files: ``(band, path)`` pairs in the model's band order (``""`` where missing)."""

    kind: ClassVar[str] = "bands"
    files: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class BandFiles:
    """A folder of per-band files named by ``pattern`` (``{band}`` and ``{objid}`` or ``{name}``).

    Raises
    ------
    ValueError
        If the pattern lacks ``{band}`` or both ``{objid}`` and ``{name}`` (on :meth:`discover`).
    """

    folder: Path
    pattern: str
    bands: tuple[str, ...]
    item_type: ClassVar[type[Item]] = BandItem

    def discover(self) -> list[BandItem]:
        """One item per object key found, its files in ``bands`` order."""
        pattern = self.pattern
        if "{band}" not in pattern or ("{objid}" not in pattern and "{name}" not in pattern):
            raise ValueError(f"band pattern {pattern!r} must contain {{band}} and {{objid}} or {{name}}")
        key = "objid" if "{objid}" in pattern else "name"
        regex = re.escape(pattern).replace(r"\{band\}", r"(?P<band>[^/_.-]+)")
        # Any {objid} text is taken (and checked below): "-1", "1.5" or "T" in a name are quarantined, not skipped.
        regex = regex.replace(rf"\{{{key}\}}", r"(?P<key>.+?)")
        compiled = re.compile(f"^{regex}$")
        groups: dict[str, dict[str, str]] = {}
        for path in sorted(self.folder.iterdir()):
            m = compiled.match(path.name)
            if m:
                groups.setdefault(m["key"], {})[m["band"]] = os.fspath(path)
        if not groups:
            raise FileNotFoundError(f"no file in {os.fspath(self.folder)!r} matches the band pattern {pattern!r}")
        items = []
        for k, files in groups.items():
            ordered = tuple((b, files.get(b, "")) for b in self.bands)
            source = os.fspath(self.folder / pattern.replace(f"{{{key}}}", k))
            objid, problem = discovered_objid(k, "objid in the file name") if key == "objid" else (None, None)
            items.append(BandItem(source=source, objid=objid, files=ordered, problem=problem))
        return items

    @staticmethod
    def load(item: BandItem, bands: Sequence[str] | None = None, images_key: str = "images") -> Stamp:
        """Stack the one-plane files in band order; a missing band or a plane of another shape is an error."""
        planes, header = [], {}
        for band, path in item.files:
            if not path:
                raise StampError(f"{item.source}: no file for band {band!r}")
            stamp = read_stamp(path)
            if stamp.n_bands != 1:
                raise StampError(f"{path}: per-band file holds {stamp.n_bands} planes; expected 1 (band {band})")
            planes.append(stamp.data[0])
            header = header or stamp.header
            if planes[0].shape != planes[-1].shape:
                first = item.files[0][0]
                raise StampError(f"{path}: band {band} is {planes[-1].shape}, band {first} {planes[0].shape}")
        return Stamp(np.stack(planes), tuple(b for b, _ in item.files), header, item.source)
