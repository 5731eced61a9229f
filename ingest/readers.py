"""Where stamps come from: discover the objects of an input and load one object's cube.

Discovery (:func:`discover`) is cheap and runs once in the main process; it returns
picklable :class:`Item` records. Loading (:func:`load_item`) reads and stacks the pixels
and runs in worker processes (or Ray tasks). Supported inputs:

* a folder of per-object files (FITS cubes, ``.npy``, PNG/JPEG) read by
  :func:`encoders.stamps.read_stamp`; the objid comes from the ``OBJID`` header key, else
  a numeric file name, else an IAU name (``J001240.06-000210.4``) hashed by
  :func:`objid_from_name`, which also gives RA/Dec;
* a folder of per-band FITS files, one per band per object, matched by a naming
  pattern such as ``{objid}_{band}.fits`` (or ``{name}_{band}.fits``, objid from the header);
* an HDF5 file (datasets ``images`` ``(N, B, H, W)`` and ``objid`` ``(N,)``, band names
  from the ``bands`` attribute) or an ``.npy``/``.npz`` array with an ``objid`` array beside it;
* survey frames with a WCS, cut into ``size x size`` stamps centred on catalogue RA/Dec
  (:func:`astropy.nddata.Cutout2D`).
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from encoders.stamps import Stamp, StampError, read_stamp, stamp_folder

__all__ = [
    "ARRAY_SUFFIXES",
    "STAMP_SUFFIXES",
    "Item",
    "array_run",
    "discover",
    "find_stamps",
    "load_item",
    "load_rows",
    "objid_from_name",
    "radec_from_iau",
]

STAMP_SUFFIXES = (".fits", ".fit", ".fits.gz", ".fits.fz", ".npy", ".png", ".jpg", ".jpeg")
ARRAY_SUFFIXES = (".h5", ".hdf5", ".npz", ".npy")
_IAU = re.compile(r"^J?(\d{2})(\d{2})(\d{2}(?:\.\d+)?)([+-])(\d{2})(\d{2})(\d{2}(?:\.\d+)?)$")


@dataclass(frozen=True)
class Item:
    """One object to load.

    Attributes
    ----------
    kind : str
        ``"file"``, ``"bands"``, ``"array"`` or ``"cutout"``.
    source : str
        Human-readable origin, written to the ``source`` column and the quarantine table.
    objid : int or None
        Known at discovery (array, per-band with ``{objid}``, cutout, numeric file name), else ``None``.
    args : tuple
        Kind-specific: ``(path,)``; ``((band, path), ...)``; ``(path, index)``;
        ``(((band, frame, plane), ...), size)``.
    ra, dec : float or None
        Coordinates known at discovery (IAU name, catalogue for cutouts).
    """

    kind: str
    source: str
    objid: int | None
    args: tuple
    ra: float | None = None
    dec: float | None = None


def radec_from_iau(name: str) -> tuple[float, float] | None:
    """RA, Dec in degrees from an IAU name ``JHHMMSS.ss+DDMMSS.s`` (``None`` if it is not one)."""
    m = _IAU.match(name)
    if m is None:
        return None
    hh, mm, ss, sign, dd, dm, ds = m.groups()
    ra = 15.0 * (int(hh) + int(mm) / 60 + float(ss) / 3600)
    dec = int(dd) + int(dm) / 60 + float(ds) / 3600
    return ra, -dec if sign == "-" else dec


def objid_from_name(name: str) -> int:
    """A stable positive int64 objid for an object known only by name (e.g. an IAU name).

    The first 8 bytes of the name's SHA-256 with the sign bit cleared: the same name
    always gives the same objid, on every machine.
    """
    return int.from_bytes(hashlib.sha256(name.strip().encode()).digest()[:8], "big") & (2**63 - 1)


def find_stamps(data_dir: str | os.PathLike[str]) -> list[Path]:
    """Stamp files under ``data_dir/stamps``, ``data_dir/images`` or ``data_dir`` itself, sorted by name."""
    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"stamp directory {os.fspath(root)!r} does not exist")
    base = stamp_folder(root)
    return sorted(p for p in base.iterdir() if p.is_file() and p.name.lower().endswith(STAMP_SUFFIXES))


def _stem(path: Path) -> str:
    name = path.name
    for suffix in sorted(STAMP_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _file_items(paths: Sequence[Path]) -> list[Item]:
    items = []
    for path in paths:
        stem = _stem(path)
        objid = int(stem) if stem.isdigit() else None
        radec = radec_from_iau(stem)
        ra, dec = radec if radec else (None, None)
        items.append(Item("file", os.fspath(path), objid, (os.fspath(path),), ra, dec))
    return items


def _band_items(base: Path, pattern: str, bands: Sequence[str]) -> list[Item]:
    if "{band}" not in pattern or ("{objid}" not in pattern and "{name}" not in pattern):
        raise ValueError(f"band pattern {pattern!r} must contain {{band}} and {{objid}} or {{name}}")
    key = "objid" if "{objid}" in pattern else "name"
    regex = re.escape(pattern).replace(r"\{band\}", r"(?P<band>[^/_.-]+)")
    regex = regex.replace(rf"\{{{key}\}}", r"(?P<key>\d+)" if key == "objid" else r"(?P<key>.+?)")
    compiled = re.compile(f"^{regex}$")
    groups: dict[str, dict[str, str]] = {}
    for path in sorted(base.iterdir()):
        m = compiled.match(path.name)
        if m:
            groups.setdefault(m["key"], {})[m["band"]] = os.fspath(path)
    if not groups:
        raise FileNotFoundError(f"no file in {os.fspath(base)!r} matches the band pattern {pattern!r}")
    items = []
    for k, files in groups.items():
        ordered = tuple((b, files.get(b, "")) for b in bands)
        source = os.fspath(base / pattern.replace(f"{{{key}}}", k))
        items.append(Item("bands", source, int(k) if key == "objid" else None, ordered))
    return items


def _array_items(path: Path, images_key: str, objid_key: str) -> list[Item]:
    lower = path.name.lower()
    if lower.endswith((".h5", ".hdf5")):
        import h5py

        with h5py.File(path, "r") as f:
            for k in (images_key, objid_key):
                if k not in f:
                    raise KeyError(f"HDF5 file {os.fspath(path)!r} has no dataset {k!r} (has {', '.join(f)})")
            objids = np.asarray(f[objid_key][:], dtype=np.int64)
            n = f[images_key].shape[0]
    elif lower.endswith(".npz"):
        with np.load(path) as z:
            objids, n = np.asarray(z[objid_key], dtype=np.int64), len(z[images_key])
    else:
        sibling = path.with_name(f"{path.stem}_{objid_key}.npy")
        if not sibling.exists():
            sibling = path.with_name(f"{objid_key}.npy")
        if not sibling.exists():
            raise FileNotFoundError(f"array {os.fspath(path)!r} has no objid array beside it ({sibling.name})")
        objids = np.load(sibling).astype(np.int64)
        n = len(_open_array(os.fspath(path), images_key))  # header only: a truncated file still lists its rows
    if len(objids) != n:
        raise ValueError(f"array {os.fspath(path)!r} holds {n} images but {len(objids)} objids")
    return [Item("array", f"{os.fspath(path)}[{i}]", int(o), (os.fspath(path), i)) for i, o in enumerate(objids)]


def _frame_bands(frames: Sequence[Path]) -> dict[str, list[tuple[str, int]]]:
    """band -> [(frame path, plane)] from each frame's header (FILTER/BAND, or BANDS for cubes)."""
    from astropy.io import fits

    from encoders.stamps.fits import bands_from_header

    out: dict[str, list[tuple[str, int]]] = {}
    for frame in frames:
        header = fits.getheader(frame)
        n = int(header.get("NAXIS3", 1)) if int(header.get("NAXIS", 2)) == 3 else 1
        for plane, band in enumerate(bands_from_header(dict(header), n, os.fspath(frame))):
            out.setdefault(band, []).append((os.fspath(frame), plane))
    return out


@lru_cache(maxsize=32)
def _frame(path: str, plane: int) -> tuple[np.ndarray, Any]:
    from astropy.io import fits
    from astropy.wcs import WCS, FITSFixedWarning

    with fits.open(path, memmap=False) as hdul:
        hdu = next(h for h in hdul if getattr(h, "data", None) is not None)
        data = np.asarray(hdu.data, dtype=np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)  # astropy reports header fixes it made itself
            wcs = WCS(hdu.header).celestial
    return (data[plane] if data.ndim == 3 else data), wcs


def _cutout_items(frames: Sequence[Path], catalogue: Any, bands: Sequence[str], size: int) -> list[Item]:
    if catalogue is None or "ra" not in catalogue.columns:
        raise ValueError("cutouts from frames need a catalogue with ra and dec (--catalogue)")
    by_band = _frame_bands(frames)
    items = []
    for objid, i in catalogue.index.items():
        ra, dec = catalogue.columns["ra"][i], catalogue.columns["dec"][i]
        if ra is None or dec is None:
            continue
        chosen = []
        for band in bands:
            hit = next((f for f in by_band.get(band, []) if _covers(f, float(ra), float(dec))), ("", 0))
            chosen.append((band, *hit))
        items.append(Item("cutout", f"cutout({ra:.6f},{dec:.6f})", objid, (tuple(chosen), size), float(ra), float(dec)))
    return items


def _covers(frame: tuple[str, int], ra: float, dec: float) -> bool:
    data, wcs = _frame(*frame)
    x, y = wcs.world_to_pixel_values(ra, dec)
    return bool(0 <= x < data.shape[-1] and 0 <= y < data.shape[-2])


def discover(
    data: str | os.PathLike[str],
    *,
    bands: Sequence[str],
    band_pattern: str | None = None,
    frames: Sequence[str | os.PathLike[str]] = (),
    catalogue: Any = None,
    cutout_size: int = 64,
    images_key: str = "images",
    objid_key: str = "objid",
) -> list[Item]:
    """List the objects of an input without reading their pixels.

    Parameters
    ----------
    data : path
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

    Returns
    -------
    list of Item
    """
    if frames:
        return _cutout_items([Path(f) for f in frames], catalogue, bands, cutout_size)
    path = Path(data)
    if path.is_file() and path.name.lower().endswith(ARRAY_SUFFIXES):
        return _array_items(path, images_key, objid_key)
    if band_pattern:
        if not path.is_dir():
            raise FileNotFoundError(f"stamp directory {os.fspath(path)!r} does not exist")
        return _band_items(path / "stamps" if (path / "stamps").is_dir() else path, band_pattern, bands)
    return _file_items(find_stamps(path))


class _NotRowMajor(ValueError):
    """A ``.npy`` array stored in Fortran order: its rows are not contiguous on disk."""


class _NpyRows:
    """Rows of a C-ordered ``.npy`` file, read with ``os.preadv`` (one row, or a run of rows in one call).

    A memory map would count every page read as resident in the ingest process: 8.8 GB of "RSS" after
    100k stamps from one array, all of it clean file cache. Read this way the pages stay in the kernel's
    cache and the process holds only the rows in flight.
    """

    def __init__(self, path: str) -> None:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            fmt = np.lib.format
            read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            self.shape, fortran, self.dtype = read_header(f)
            self._offset = f.tell()
        if fortran:
            raise _NotRowMajor(f"{path}: expected a C-ordered array, got a Fortran-ordered one")
        if not self.shape:
            raise ValueError(f"{path}: expected an (N, ...) array of stamps, got a 0-d array")
        self._row_shape = tuple(self.shape[1:])
        self._row_bytes = int(np.prod(self._row_shape, dtype=np.int64)) * self.dtype.itemsize
        self._fd = os.open(path, os.O_RDONLY)
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

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)


@lru_cache(maxsize=8)
def _open_array(path: str, images_key: str) -> Any:
    lower = path.lower()
    if lower.endswith((".h5", ".hdf5")):
        import h5py

        return h5py.File(path, "r")[images_key]
    if lower.endswith(".npz"):
        return np.load(path)[images_key]
    try:
        return _NpyRows(path)
    except _NotRowMajor:
        return np.load(path, mmap_mode="r")  # rows are strided on disk: let numpy gather them


def _array_bands(path: str, images_key: str, n: int) -> tuple[str, ...]:
    if path.lower().endswith((".h5", ".hdf5")):
        names = _open_array(path, images_key).attrs.get("bands")
        if names is not None:
            names = names.decode() if isinstance(names, bytes) else str(names)
            return tuple(b.strip() for b in names.split(","))
    return tuple(f"b{i}" for i in range(n))


def _array_rows(
    path: str, lo: int, hi: int, bands: Sequence[str] | None, images_key: str, source: str
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Rows ``lo:hi`` of an array input as native float32 ``(n, B, H, W)``, and their band names."""
    try:
        cube = np.ascontiguousarray(_open_array(path, images_key)[lo:hi], dtype=np.float32)
    except Exception as exc:  # h5py/numpy raise OSError, ValueError ... on damaged files
        raise StampError(f"{source}: unreadable array row ({type(exc).__name__}: {exc})") from exc
    cube = cube[:, np.newaxis] if cube.ndim == 3 else cube
    names = tuple(bands) if bands is not None else _array_bands(path, images_key, cube.shape[1])
    if len(names) != cube.shape[1]:
        problem = f"bands {','.join(names)} name {len(names)} planes, the image has {cube.shape[1]}"
        raise StampError(f"{source}: {problem}")
    return cube, names


def load_rows(
    items: Sequence[Item], bands: Sequence[str] | None = None, images_key: str = "images"
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Read consecutive rows of one array input at once: their float32 ``(n, B, H, W)`` pixels and band names.

    For bulk HDF5/NPY input one read replaces ``n`` (a memory copy of the rows instead of a
    Python call per object). ``items`` must be ``"array"`` items of one file with consecutive
    indices (see :func:`array_run`).

    Raises
    ------
    StampError
        If the rows cannot be read or their planes and band names disagree; the caller may then
        load the items one by one (:func:`load_item`) to find which of them is bad.
    """
    path, lo = items[0].args
    cube, names = _array_rows(path, lo, lo + len(items), bands, images_key, f"{items[0].source}..{items[-1].source}")
    if len(cube) != len(items):
        raise StampError(f"{path}: rows {lo}..{lo + len(items) - 1} read {len(cube)} of {len(items)}")
    return cube, names


def array_run(items: Sequence[Item], start: int) -> int:
    """End (exclusive) of the run of consecutive rows of one array input that begins at ``items[start]``
    (``start + 1`` when ``items[start]`` is not an array row)."""
    first = items[start]
    if first.kind != "array":
        return start + 1
    path, index = first.args
    end = start + 1
    while end < len(items) and items[end].kind == "array" and items[end].args == (path, index + end - start):
        end += 1
    return end


def _load_bands(item: Item) -> Stamp:
    planes, header = [], {}
    for band, path in item.args:
        if not path:
            raise StampError(f"{item.source}: no file for band {band!r}")
        stamp = read_stamp(path)
        if stamp.n_bands != 1:
            raise StampError(f"{path}: per-band file holds {stamp.n_bands} planes; expected 1 (band {band})")
        planes.append(stamp.data[0])
        header = header or stamp.header
        if planes[0].shape != planes[-1].shape:
            raise StampError(f"{path}: band {band} is {planes[-1].shape}, band {item.args[0][0]} {planes[0].shape}")
    return Stamp(np.stack(planes), tuple(b for b, _ in item.args), header, item.source)


def _load_cutout(item: Item) -> Stamp:
    from astropy.nddata import Cutout2D
    from astropy.nddata.utils import NoOverlapError, PartialOverlapError

    chosen, size = item.args
    planes = []
    for band, path, plane in chosen:
        if not path:
            raise StampError(f"{item.source}: no frame in band {band!r} covers RA {item.ra}, Dec {item.dec}")
        data, wcs = _frame(path, plane)
        x, y = wcs.world_to_pixel_values(item.ra, item.dec)
        try:
            cut = Cutout2D(data, (float(x), float(y)), (size, size), mode="partial", fill_value=np.nan, copy=True)
        except (NoOverlapError, PartialOverlapError) as exc:
            raise StampError(f"{item.source}: band {band} frame {path}: {exc}") from exc
        planes.append(cut.data.astype(np.float32))
    return Stamp(np.stack(planes), tuple(b for b, _, _ in chosen), {"RA": item.ra, "DEC": item.dec}, item.source)


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
        If the pixels cannot be read or no objid can be found; the message names the source.
    """
    if item.kind == "file":
        path = item.args[0]
        stamp = read_stamp(path, bands=bands)
    elif item.kind == "bands":
        stamp = _load_bands(item)
    elif item.kind == "array":
        path, index = item.args
        cube, names = _array_rows(path, index, index + 1, bands, images_key, item.source)
        stamp = Stamp(cube[0], names, {}, item.source)
    elif item.kind == "cutout":
        stamp = _load_cutout(item)
    else:
        raise ValueError(f"unknown item kind {item.kind!r} for {item.source}")
    objid = stamp.header.get("OBJID", item.objid)
    if objid is None:
        stem = _stem(Path(item.source))
        if radec_from_iau(stem) is None:
            problem = "no OBJID header key, and the file name is neither an objid nor an IAU name"
            raise StampError(f"{item.source}: {problem}")
        objid = objid_from_name(stem)
    if item.ra is not None and "RA" not in stamp.header:
        stamp.header.update(RA=item.ra, DEC=item.dec)
    return int(objid), stamp
