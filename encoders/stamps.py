"""Read multi-band image stamps into native-endian float32 cubes.

One reader for training and ingestion: :func:`read_stamp` takes a path or the raw
bytes of a file (as uploaded to ``FindSimilarToImage``) and returns a :class:`Stamp`.
Formats are tried in the order of :data:`READERS`; a new format is one
:class:`StampReader` appended there (or passed to :func:`register_reader`).
:func:`load_stamps` reads many files of one shape and normalises them, for training
and ingestion alike. NumPy, astropy and Pillow only: this module is on the serving path
and must not import torch.

PNG/JPEG colour stamps (e.g. Legacy Survey g,r,z composites) become float32 cubes in
[0, 1] with one plane per colour channel, bluest first: the blue, green and red channels
are the planes of :data:`IMAGE_BANDS` (``g, r, z`` by default, the Legacy Survey
mapping of z to red, r to green and g to blue). Pass ``bands=`` to
:func:`read_stamp` to name them otherwise.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from encoders.normalise import LuptonParams, lupton_asinh
from encoders.stamps_fits import fast_fits

__all__ = [
    "IMAGE_BANDS",
    "READERS",
    "Stamp",
    "StampError",
    "StampReader",
    "load_stamps",
    "read_stamp",
    "register_reader",
    "stamp_folder",
]

_FITS_MAGIC = b"SIMPLE  ="
_NPY_MAGIC = b"\x93NUMPY"
_GZIP_MAGIC = b"\x1f\x8b"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"

#: Band names of the planes of a colour (RGB) image, bluest channel first.
IMAGE_BANDS: tuple[str, ...] = ("g", "r", "z")


class StampError(ValueError):
    """A stamp could not be read: unreadable, truncated, empty or of the wrong shape.

    The message always names the source (file path or ``<bytes>``) and the problem.
    """


@dataclass
class Stamp:
    """One multi-band image stamp.

    Attributes
    ----------
    data : numpy.ndarray
        Native-endian float32 array of shape ``(n_bands, H, W)``.
    bands : tuple of str
        One name per plane of ``data`` (``b0, b1, ...`` when the file names none).
    header : dict
        Scalar header cards (FITS) or ``{}``; COMMENT/HISTORY cards are dropped.
    source : str
        Where the stamp came from: the file path, or ``"<bytes>"``.
    """

    data: np.ndarray
    bands: tuple[str, ...]
    header: dict[str, Any] = field(default_factory=dict)
    source: str = "<bytes>"

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(n_bands, H, W)``."""
        return tuple(self.data.shape)  # type: ignore[return-value]

    @property
    def n_bands(self) -> int:
        """Number of bands (planes)."""
        return int(self.data.shape[0])


@dataclass(frozen=True)
class StampReader:
    """A stamp format: how to recognise it and how to read it.

    Attributes
    ----------
    name : str
        Format name used in error messages (``"FITS"``, ``"NPY"`` ...).
    suffixes : tuple of str
        Lower-case file name endings that select this reader for paths.
    sniff : callable
        ``sniff(head: bytes) -> bool`` on the first bytes, used for raw bytes and
        for paths whose suffix no reader claims.
    read : callable
        ``read(payload: bytes | Path, source: str) -> Stamp``; raises :class:`StampError`.
    """

    name: str
    suffixes: tuple[str, ...]
    sniff: Callable[[bytes], bool]
    read: Callable[[bytes | Path, str], Stamp]


def _default_bands(n: int) -> tuple[str, ...]:
    return tuple(f"b{i}" for i in range(n))


def _check_cube(array: np.ndarray, source: str, fmt: str) -> np.ndarray:
    """Validate ndim/size and return a native float32 ``(B, H, W)`` copy."""
    if array is None or array.size == 0:
        raise StampError(f"{source}: {fmt} file holds no image data")
    if array.ndim == 2:
        array = array[np.newaxis]
    if array.ndim != 3:
        raise StampError(
            f"{source}: {fmt} image has shape {array.shape} (ndim={array.ndim}); expected (n_bands, H, W) or (H, W)"
        )
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise StampError(f"{source}: {fmt} image has dtype {array.dtype}; expected a numeric array")
    return np.array(array, dtype=np.float32, order="C")  # converts big-endian FITS to native


def _bands_from_header(header: dict[str, Any], n: int, source: str) -> tuple[str, ...]:
    """Band names from ``BANDS`` (``u,g,r`` or ``grz``) or ``BAND1..BANDn`` / ``BAND0..``."""
    names = header.get("BANDS")
    if names is not None and str(names).strip():
        text = str(names).strip()
        if "," in text:
            parts = tuple(p.strip() for p in text.split(","))
        elif " " in text:
            parts = tuple(text.split())
        else:
            parts = tuple(text) if len(text) == n else (text,)
        if len(parts) != n:
            raise StampError(f"{source}: header BANDS={text!r} names {len(parts)} bands but the data has {n}")
        return parts
    for first in (1, 0):
        keys = [f"BAND{i}" for i in range(first, first + n)]
        if all(k in header for k in keys):
            return tuple(str(header[k]).strip() for k in keys)
    if n == 1:
        for key in ("BAND", "FILTER"):
            if key in header and str(header[key]).strip():
                return (str(header[key]).strip(),)
    return _default_bands(n)


def _read_fits(payload: bytes | Path, source: str) -> Stamp:
    from astropy.io import fits

    if isinstance(payload, Path) and payload.name.lower().endswith((".fits", ".fit", ".fts")):
        try:
            payload = payload.read_bytes()
        except OSError as exc:
            raise StampError(f"{source}: unreadable FITS file ({type(exc).__name__}: {exc})") from exc
    if isinstance(payload, bytes) and payload.startswith(_FITS_MAGIC):
        fast = fast_fits(payload)
        if fast is not None:
            cube = _check_cube(fast[0], source, "FITS")
            return Stamp(cube, _bands_from_header(fast[1], cube.shape[0], source), fast[1], source)
    opened = io.BytesIO(payload) if isinstance(payload, bytes) else payload
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with fits.open(opened, memmap=False, lazy_load_hdus=False) as hdul:
                hdu = next((h for h in hdul if getattr(h, "data", None) is not None), None)
                if hdu is None:
                    raise StampError(f"{source}: FITS file has no HDU with image data")
                if not getattr(hdu, "is_image", True):
                    raise StampError(f"{source}: first FITS HDU with data is a table, not an image")
                data = np.asarray(hdu.data)
                header = {
                    k: v
                    for k, v in hdu.header.items()
                    if k and k not in ("COMMENT", "HISTORY") and isinstance(v, (bool, int, float, str))
                }
        truncated = [w for w in caught if "truncated" in str(w.message)]
        if truncated:
            raise StampError(f"{source}: truncated FITS file ({truncated[0].message})")
    except StampError:
        raise
    except Exception as exc:  # astropy raises OSError, TypeError, ValueError, warnings ... on bad files
        problem = f"{type(exc).__name__}: {exc}"
        raise StampError(f"{source}: unreadable or truncated FITS file ({problem})") from exc
    cube = _check_cube(data, source, "FITS")
    return Stamp(cube, _bands_from_header(header, cube.shape[0], source), header, source)


def _read_npy(payload: bytes | Path, source: str) -> Stamp:
    try:
        opened = io.BytesIO(payload) if isinstance(payload, bytes) else payload
        array = np.load(opened, allow_pickle=False)
    except Exception as exc:
        problem = f"{type(exc).__name__}: {exc}"
        raise StampError(f"{source}: unreadable or truncated .npy file ({problem})") from exc
    if not isinstance(array, np.ndarray):
        raise StampError(f"{source}: .npy payload is an archive of several arrays; expected one array")
    cube = _check_cube(array, source, "NPY")
    return Stamp(cube, _default_bands(cube.shape[0]), {}, source)


def _read_image(payload: bytes | Path, source: str) -> Stamp:
    """PNG/JPEG: colour images -> ``(3, H, W)`` planes B, G, R (bluest first); grey -> one plane."""
    from PIL import Image, UnidentifiedImageError

    try:
        opened = io.BytesIO(payload) if isinstance(payload, bytes) else payload
        with Image.open(opened) as image:
            image.load()  # decode now: a truncated file fails here, not later
            fmt = image.format or "image"
            mode = image.mode
            if mode in ("P", "PA", "RGBA", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
                image = image.convert("RGB")
            elif mode == "LA":
                image = image.convert("L")
            array = np.asarray(image)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        problem = f"{type(exc).__name__}: {exc}"
        raise StampError(f"{source}: unreadable or truncated PNG/JPEG image ({problem})") from exc
    if array.dtype == np.uint8:
        scale = 255.0
    elif array.dtype == np.uint16 or mode.startswith("I;16"):
        scale = 65535.0
    else:
        scale = 1.0
    if array.ndim == 3:
        array = np.moveaxis(array[..., ::-1], -1, 0)  # H, W, (R, G, B) -> (B, G, R), H, W
    cube = _check_cube(array, source, fmt)
    cube /= np.float32(scale)
    bands = IMAGE_BANDS if cube.shape[0] == len(IMAGE_BANDS) else _default_bands(cube.shape[0])
    return Stamp(cube, tuple(bands), {"FORMAT": fmt, "MODE": mode}, source)


#: Known formats, tried in order. Append a :class:`StampReader` to add a format.
READERS: list[StampReader] = [
    StampReader(
        "FITS",
        (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fits.fz", ".fz"),
        lambda head: head.startswith(_FITS_MAGIC) or head.startswith(_GZIP_MAGIC),
        _read_fits,
    ),
    StampReader("NPY", (".npy",), lambda head: head.startswith(_NPY_MAGIC), _read_npy),
    StampReader(
        "PNG/JPEG",
        (".png", ".jpg", ".jpeg"),
        lambda head: head.startswith(_PNG_MAGIC) or head.startswith(_JPEG_MAGIC),
        _read_image,
    ),
]


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
        image data, its data is not 2-D or 3-D, or ``bands`` does not name every plane.
        The message names the source.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        payload: bytes | Path = bytes(source)
        name = "<bytes>"
        head = payload[:16]
        reader = next((r for r in READERS if r.sniff(head)), None)
    else:
        payload = Path(source)
        name = str(source)
        if not payload.is_file():
            raise StampError(f"{name}: no such file")
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
