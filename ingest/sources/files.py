"""Per-object stamp files (FITS cubes, ``.npy``, PNG/JPEG) in a folder, read by :func:`encoders.stamps.read_stamp`.

The objid comes from the ``OBJID`` header key, else a numeric file name, else an IAU name
(``J001240.06-000210.4``) hashed by :func:`~ingest.sources.base.objid_from_name`, which also gives RA/Dec;
either way it must be an integer in 1..2**63-1 (:func:`~ingest.sources.base.checked_objid`). Entries with a
stamp's name that are not readable files (directories, dangling links, link loops) are discovered too, so
that ingest quarantines them rather than skipping them unseen.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from encoders.stamps import Stamp, StampError, read_stamp, stamp_folder
from ingest.sources.base import STAMP_SUFFIXES, Item, checked_objid, file_stem, radec_from_iau

__all__ = ["FileItem", "StampFiles", "entry_problem", "find_stamps"]


@dataclass(frozen=True, kw_only=True)
class FileItem(Item):
    """One stamp file at ``path``; ``problem`` says why an entry with a stamp's name is not a readable file."""

    kind: ClassVar[str] = "file"
    path: str


def entry_problem(path: Path) -> str | None:
    """Why the folder entry ``path`` cannot be read as a stamp file, or ``None`` if it can.

    Symbolic links are followed: a link to a regular file is fine; a dangling link, a link loop or a
    link to a directory is not.
    """
    try:
        mode = path.stat().st_mode
    except OSError as err:
        if path.is_symlink():
            return "symbolic link loop" if err.errno == errno.ELOOP else "dangling symbolic link"
        return f"cannot be read ({err.strerror})"
    if stat.S_ISDIR(mode):
        return "is a directory"
    if not stat.S_ISREG(mode):
        return "is not a regular file"
    return None


def _stamp_entries(data_dir: str | os.PathLike[str]) -> list[tuple[Path, str | None]]:
    """Every entry with a stamp file's name in the stamp folder, sorted by name, with its problem (if any)."""
    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"stamp directory {os.fspath(root)!r} does not exist")
    base = stamp_folder(root)
    entries = sorted(p for p in base.iterdir() if p.name.lower().endswith(STAMP_SUFFIXES))
    return [(p, entry_problem(p)) for p in entries]


def find_stamps(data_dir: str | os.PathLike[str]) -> list[Path]:
    """Stamp files under ``data_dir/stamps``, ``data_dir/images`` or ``data_dir`` itself, sorted by name.

    Only readable files (or links to them); :meth:`StampFiles.discover` also lists the other entries.
    """
    return [p for p, problem in _stamp_entries(data_dir) if problem is None]


def _name_objid(stem: str) -> int | None:
    """The objid a numeric file name gives, when it is a valid one (else the header or a load error decides)."""
    if not stem.isdigit():
        return None
    try:
        return checked_objid(stem, "file name")
    except StampError:
        return None


@dataclass(frozen=True)
class StampFiles:
    """A folder of per-object stamp files (``folder/stamps``, ``folder/images`` or ``folder``)."""

    folder: Path
    item_type: ClassVar[type[Item]] = FileItem

    def discover(self) -> list[FileItem]:
        """One item per entry with a stamp's name, sorted by name; objid and RA/Dec from the name where it gives
        them. Directories, dangling links and link loops become items whose ``problem`` says so."""
        items = []
        for path, problem in _stamp_entries(self.folder):
            stem = file_stem(path)
            radec = radec_from_iau(stem) if problem is None else None
            ra, dec = radec if radec else (None, None)
            objid = _name_objid(stem) if problem is None else None
            source = os.fspath(path)
            items.append(FileItem(source=source, objid=objid, path=source, ra=ra, dec=dec, problem=problem))
        return items

    @staticmethod
    def load(item: FileItem, bands: Sequence[str] | None = None, images_key: str = "images") -> Stamp:
        """Read the file; ``bands`` names the planes of formats that carry no band names."""
        if item.problem is not None:
            raise StampError(f"{item.source}: {item.problem}")
        return read_stamp(item.path, bands=bands)
