"""Per-object stamp files (FITS cubes, ``.npy``, PNG/JPEG) in a folder, read by :func:`encoders.stamps.read_stamp`.

The objid comes from the ``OBJID`` header key, else a numeric file name, else an IAU name
(``J001240.06-000210.4``) hashed by :func:`~ingest.sources.base.objid_from_name`, which also gives RA/Dec.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from encoders.stamps import Stamp, read_stamp, stamp_folder
from ingest.sources.base import STAMP_SUFFIXES, Item, file_stem, radec_from_iau

__all__ = ["FileItem", "StampFiles", "find_stamps"]


@dataclass(frozen=True, kw_only=True)
class FileItem(Item):
    """One stamp file at ``path``."""

    kind: ClassVar[str] = "file"
    path: str


def find_stamps(data_dir: str | os.PathLike[str]) -> list[Path]:
    """Stamp files under ``data_dir/stamps``, ``data_dir/images`` or ``data_dir`` itself, sorted by name."""
    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"stamp directory {os.fspath(root)!r} does not exist")
    base = stamp_folder(root)
    return sorted(p for p in base.iterdir() if p.is_file() and p.name.lower().endswith(STAMP_SUFFIXES))


@dataclass(frozen=True)
class StampFiles:
    """A folder of per-object stamp files (``folder/stamps``, ``folder/images`` or ``folder``)."""

    folder: Path
    item_type: ClassVar[type[Item]] = FileItem

    def discover(self) -> list[FileItem]:
        """One item per stamp file, sorted by name; objid and RA/Dec from the name where it gives them."""
        items = []
        for path in find_stamps(self.folder):
            stem = file_stem(path)
            radec = radec_from_iau(stem)
            ra, dec = radec if radec else (None, None)
            objid = int(stem) if stem.isdigit() else None
            items.append(FileItem(source=os.fspath(path), objid=objid, path=os.fspath(path), ra=ra, dec=dec))
        return items

    @staticmethod
    def load(item: FileItem, bands: Sequence[str] | None = None, images_key: str = "images") -> Stamp:
        """Read the file; ``bands`` names the planes of formats that carry no band names."""
        return read_stamp(item.path, bands=bands)
