"""Read multi-band image stamps into native-endian float32 cubes.

One reader for training and ingestion: :func:`read_stamp` takes a path or the raw bytes of a file
(as uploaded to ``FindSimilarToImage``) and returns a :class:`Stamp`. Formats are tried in the order
of :data:`READERS`; a new format is one :class:`StampReader` passed to :func:`register_reader`.
:func:`load_stamps` reads many files of one shape and normalises them. NumPy, astropy and Pillow only:
this package is on the serving path and must not import torch.

Modules
-------
stamp
    The :class:`Stamp` record, the :class:`StampReader` description and the checks readers share.
fits
    FITS stamps (a fast path for plain primary-HDU images, astropy for the rest).
npy
    NumPy ``.npy`` stamps.
images
    PNG/JPEG colour composites.
render
    A stamp drawn for people: Lupton RGB arrays and enlarged PNGs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from encoders.normalise import LuptonParams, lupton_asinh
from encoders.stamps.fits import FITS_READER
from encoders.stamps.images import IMAGE_BANDS, IMAGE_READER
from encoders.stamps.npy import NPY_READER
from encoders.stamps.stamp import (
    MAX_STAMP_BYTES,
    MAX_STAMP_SIDE,
    MAX_STAMP_VALUES,
    Stamp,
    StampError,
    StampReader,
    check_file_size,
)

__all__ = [
    "IMAGE_BANDS",
    "MAX_STAMP_BYTES",
    "MAX_STAMP_SIDE",
    "MAX_STAMP_VALUES",
    "READERS",
    "Stamp",
    "StampError",
    "StampReader",
    "load_stamps",
    "read_stamp",
    "register_reader",
    "stamp_folder",
]

#: Known formats, tried in order. Add a :class:`StampReader` with :func:`register_reader`.
READERS: list[StampReader] = [FITS_READER, NPY_READER, IMAGE_READER]


def stamp_folder(data: str | Path) -> Path:
    """The folder holding a data set's stamp files: ``DATA/stamps``, else ``DATA/images``, else ``DATA``.

    ``ssald simulate`` writes ``stamps/``; image sets as they come (Galaxy Zoo's JPEGs beside a ``labels.csv``)
    often keep them in ``images/``. Training and ingestion look in the same place.
    """
    data = Path(data)
    return next((d for d in (data / "stamps", data / "images") if d.is_dir()), data)


def register_reader(reader: StampReader, *, first: bool = False) -> None:
    """Add a stamp format to :data:`READERS` (at the front when ``first``).

    Parameters
    ----------
    reader : StampReader
        The format to add.
    first : bool
        Try this reader before the built-in ones.
    """
    if first:
        READERS.insert(0, reader)
    else:
        READERS.append(reader)


def read_stamp(source: str | Path | bytes, bands: Sequence[str] | None = None) -> Stamp:
    """Read one stamp from a file path or from the raw bytes of a file.

    Parameters
    ----------
    source : str, pathlib.Path or bytes
        A path to a FITS cube / 2-D FITS image / ``.npy`` array / PNG or JPEG image, or
        the bytes of such a file. Paths are dispatched by suffix, then by content; bytes
        by content.
    bands : sequence of str, optional
        Names of the planes, overriding those of the file (or the defaults: ``b0, b1 …``
        for NPY, :data:`IMAGE_BANDS` for colour images). Must name every plane.

    Returns
    -------
    Stamp
        ``data`` is native-endian float32 ``(n_bands, H, W)``; a 2-D image is one band.

    Raises
    ------
    StampError
        If the file is missing, unreadable, truncated, of unknown format, holds no
        image data, its data is not 2-D or 3-D, or ``bands`` does not name every plane;
        or if it is larger than :data:`MAX_STAMP_BYTES` or its header declares more than
        :data:`MAX_STAMP_SIDE` pixels a side or :data:`MAX_STAMP_VALUES` values (checked
        before decoding, see :mod:`encoders.stamps.stamp`). The message names the source.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        payload: bytes | Path = bytes(source)
        name = "<bytes>"
        check_file_size(len(payload), name)
        head = payload[:16]
        reader = next((r for r in READERS if r.sniff(head)), None)
    else:
        payload = Path(source)
        name = str(source)
        if not payload.is_file():
            raise StampError(f"{name}: no such file")
        check_file_size(payload.stat().st_size, name)
        lower = payload.name.lower()
        reader = next((r for r in READERS if lower.endswith(r.suffixes)), None)
        if reader is None:
            with open(payload, "rb") as fh:
                head = fh.read(16)
            reader = next((r for r in READERS if r.sniff(head)), None)
    if reader is None:
        known = ", ".join(r.name for r in READERS)
        raise StampError(f"{name}: unrecognised stamp format (known formats: {known})")
    stamp = reader.read(payload, name)
    if bands is not None:
        names = tuple(str(b) for b in bands)
        if len(names) != stamp.n_bands:
            raise StampError(
                f"{name}: bands {','.join(names)} name {len(names)} planes but the stamp has {stamp.n_bands}"
            )
        stamp.bands = names
    return stamp


def load_stamps(
    paths: Iterable[str | Path], params: LuptonParams = LuptonParams(), progress: bool = True
) -> np.ndarray:
    """Read stamp files with :func:`~encoders.stamps.read_stamp` and normalise them.

    Parameters
    ----------
    paths : iterable of str or Path
        Stamp files; all must have the same shape and bands.
    params : LuptonParams
        Normalisation passed to :func:`~encoders.normalise.lupton_asinh`.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    numpy.ndarray
        float32 ``(N, n_bands, H, W)`` in [0, 1], in the order of ``paths``.

    Raises
    ------
    ValueError
        If ``paths`` is empty.
    StampError
        If a file cannot be read, or its shape or bands differ from the first file's
        (the message names the offending file).
    """
    from tqdm.auto import tqdm

    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("load_stamps got no stamp paths")
    first = read_stamp(paths[0])
    out = np.empty((len(paths), *first.shape), dtype=np.float32)
    for i, path in enumerate(tqdm(paths, desc="read stamps", unit="stamp", disable=not progress)):
        stamp = first if i == 0 else read_stamp(path)
        if stamp.shape != first.shape:
            raise StampError(f"{path}: stamp has shape {stamp.shape} but {paths[0]} has {first.shape}")
        if stamp.bands != first.bands:
            raise StampError(f"{path}: stamp has bands {stamp.bands} but {paths[0]} has {first.bands}")
        out[i] = lupton_asinh(stamp.data, params)
    return out
