"""Stamps as rows of one array file: HDF5 (datasets ``images`` ``(N, B, H, W)`` and ``objid`` ``(N,)``, band
names in the ``bands`` attribute), ``.npz``, or ``.npy`` with an objid array beside it.

Consecutive rows are read in one call (:func:`load_rows`, :func:`array_run`): for bulk input a memory copy
replaces a Python call per object.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from encoders.stamps import Stamp, StampError
from ingest.sources.base import Item, discovered_objid

__all__ = ["ArrayFile", "ArrayItem", "NpyRows", "array_run", "load_rows", "open_array"]


@dataclass(frozen=True, kw_only=True)
class ArrayItem(Item):
    """Row ``index`` of the array file at ``path``."""

    kind: ClassVar[str] = "array"
    path: str
    index: int


class NotRowMajor(ValueError):
    """A ``.npy`` array stored in Fortran order: its rows are not contiguous on disk."""


class NpyRows:
    """Rows of a C-ordered ``.npy`` file, read with ``os.preadv`` (one row, or a run of rows in one call).

    A memory map would count every page read as resident in the ingest process (clean file cache, but
    it looks like the process's memory); read this way the pages stay in the kernel's cache and the
    process holds only the rows in flight.

    Raises
    ------
    NotRowMajor
        If the array is Fortran-ordered.
    ValueError
        If it is 0-d.
    """

    def __init__(self, path: str) -> None:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            fmt = np.lib.format
            read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            self.shape, fortran, self.dtype = read_header(f)
            self._offset = f.tell()
        if fortran:
            raise NotRowMajor(f"{path}: expected a C-ordered array, got a Fortran-ordered one")
        if not self.shape:
            raise ValueError(f"{path}: expected an (N, ...) array of stamps, got a 0-d array")
        self._row_shape = tuple(self.shape[1:])
        self._row_bytes = int(np.prod(self._row_shape, dtype=np.int64)) * self.dtype.itemsize
        self._fd = os.open(path, os.O_RDONLY)
        # Closed when the object is collected, or at exit while ``os`` is still importable.
        weakref.finalize(self, os.close, self._fd)
        self.path = path

    def __len__(self) -> int:
        return int(self.shape[0])

    def __getitem__(self, index: int | slice) -> np.ndarray:
        """One row, or a slice of consecutive rows (step 1) in one read straight into the returned array."""
        if isinstance(index, slice):
            lo, hi, step = index.indices(self.shape[0])
            if step != 1:
                raise IndexError(f"{self.path}: rows are read in consecutive runs, got step {step}")
            return self._rows(lo, max(lo, hi))
        if not 0 <= index < self.shape[0]:
            raise IndexError(f"row {index} of {self.shape[0]}")
        return self._rows(index, index + 1)[0]

    def _rows(self, lo: int, hi: int) -> np.ndarray:
        out = np.empty((hi - lo, *self._row_shape), dtype=self.dtype)
        if not out.size:
            return out
        got = os.preadv(self._fd, [memoryview(out).cast("B")], self._offset + lo * self._row_bytes)
        if got != out.nbytes:
            raise ValueError(f"{self.path} is truncated: rows {lo}:{hi} hold {got} of {out.nbytes} bytes")
        return out


@lru_cache(maxsize=8)
def open_array(path: str, images_key: str) -> Any:
    """The image array of an array file, rows read on demand (cached: workers reopen nothing per row)."""
    lower = path.lower()
    if lower.endswith((".h5", ".hdf5")):
        import h5py

        return h5py.File(path, "r")[images_key]
    if lower.endswith(".npz"):
        return np.load(path)[images_key]
    try:
        return NpyRows(path)
    except NotRowMajor:
        return np.load(path, mmap_mode="r")  # rows are strided on disk: let numpy gather them


def _array_bands(path: str, images_key: str, n: int) -> tuple[str, ...]:
    if path.lower().endswith((".h5", ".hdf5")):
        names = open_array(path, images_key).attrs.get("bands")
        if names is not None:
            names = names.decode() if isinstance(names, bytes) else str(names)
            return tuple(b.strip() for b in names.split(","))
    return tuple(f"b{i}" for i in range(n))


def _array_rows(
    path: str, lo: int, hi: int, bands: Sequence[str] | None, images_key: str, source: str
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Rows ``lo:hi`` of an array input as native float32 ``(n, B, H, W)``, and their band names."""
    try:
        cube = np.ascontiguousarray(open_array(path, images_key)[lo:hi], dtype=np.float32)
    except Exception as exc:  # h5py/numpy raise OSError, ValueError ... on damaged files
        raise StampError(f"{source}: unreadable array row ({type(exc).__name__}: {exc})") from exc
    cube = cube[:, np.newaxis] if cube.ndim == 3 else cube
    names = tuple(bands) if bands is not None else _array_bands(path, images_key, cube.shape[1])
    if len(names) != cube.shape[1]:
        problem = f"bands {','.join(names)} name {len(names)} planes, the image has {cube.shape[1]}"
        raise StampError(f"{source}: {problem}")
    return cube, names


@dataclass(frozen=True)
class ArrayFile:
    """One HDF5/NPZ/NPY array file of stamps; ``images_key`` and ``objid_key`` name its datasets
    (``objid_key`` also names the ``.npy`` beside an array: ``<stem>_objid.npy`` or ``objid.npy``)."""

    path: Path
    images_key: str = "images"
    objid_key: str = "objid"
    item_type: ClassVar[type[Item]] = ArrayItem

    def discover(self) -> list[ArrayItem]:
        """One item per row, with the objids of the file (its header only for ``.npy``).

        Raises
        ------
        KeyError
            If an HDF5 file lacks a dataset.
        FileNotFoundError
            If a ``.npy`` array has no objid array beside it.
        ValueError
            If images and objids differ in number.
        """
        path, images_key, objid_key = self.path, self.images_key, self.objid_key
        lower = path.name.lower()
        if lower.endswith((".h5", ".hdf5")):
            import h5py

            with h5py.File(path, "r") as f:
                for k in (images_key, objid_key):
                    if k not in f:
                        raise KeyError(f"HDF5 file {os.fspath(path)!r} has no dataset {k!r} (has {', '.join(f)})")
                objids = np.asarray(f[objid_key][:])
                n = f[images_key].shape[0]
        elif lower.endswith(".npz"):
            with np.load(path) as z:
                objids, n = np.asarray(z[objid_key]), len(z[images_key])
        else:
            sibling = path.with_name(f"{path.stem}_{objid_key}.npy")
            if not sibling.exists():
                sibling = path.with_name(f"{objid_key}.npy")
            if not sibling.exists():
                raise FileNotFoundError(f"array {os.fspath(path)!r} has no objid array beside it ({sibling.name})")
            objids = np.load(sibling)
            n = len(open_array(os.fspath(path), images_key))  # header only: a truncated file still lists its rows
        if len(objids) != n:
            raise ValueError(f"array {os.fspath(path)!r} holds {n} images but {len(objids)} objids")
        name = os.fspath(path)
        items = []
        for i, value in enumerate(objids):
            # Checked one by one, not cast: a cast makes 1.5 an objid of 1, and 2**64 - 1 (uint64) one of -1.
            objid, problem = discovered_objid(
                value.item() if isinstance(value, np.generic) else value, f"{objid_key} entry"
            )
            items.append(ArrayItem(source=f"{name}[{i}]", objid=objid, path=name, index=i, problem=problem))
        return items

    @staticmethod
    def load(item: ArrayItem, bands: Sequence[str] | None = None, images_key: str = "images") -> Stamp:
        """Read one row; ``bands`` names its planes (default: the file's ``bands`` attribute, else ``b0 ...``)."""
        cube, names = _array_rows(item.path, item.index, item.index + 1, bands, images_key, item.source)
        return Stamp(cube[0], names, {}, item.source)


def load_rows(
    items: Sequence[Item], bands: Sequence[str] | None = None, images_key: str = "images"
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Read consecutive rows of one array input at once: their float32 ``(n, B, H, W)`` pixels and band names.

    ``items`` must be :class:`ArrayItem` s of one file with consecutive indices (see :func:`array_run`).

    Raises
    ------
    StampError
        If the rows cannot be read or their planes and band names disagree; the caller may then
        load the items one by one (:func:`ingest.sources.load_item`) to find which of them is bad.
    """
    first = items[0]
    if not isinstance(first, ArrayItem):
        raise TypeError(f"load_rows reads rows of an array input, got a {first.kind!r} item ({first.source})")
    path, lo = first.path, first.index
    cube, names = _array_rows(path, lo, lo + len(items), bands, images_key, f"{first.source}..{items[-1].source}")
    if len(cube) != len(items):
        raise StampError(f"{path}: rows {lo}..{lo + len(items) - 1} read {len(cube)} of {len(items)}")
    return cube, names


def array_run(items: Sequence[Item], start: int) -> int:
    """End (exclusive) of the run of consecutive rows of one array input that begins at ``items[start]``
    (``start + 1`` when ``items[start]`` is not an array row)."""
    first = items[start]
    if not isinstance(first, ArrayItem) or first.problem is not None:
        return start + 1
    end = start + 1
    while end < len(items):
        item = items[end]
        consecutive = (
            isinstance(item, ArrayItem) and item.path == first.path and item.index == first.index + end - start
        )
        if not consecutive or item.problem is not None:
            break
        end += 1
    return end
