"""FITS stamps: a fast decoder for plain primary-HDU images, astropy for everything else.

Survey-scale ingestion reads millions of small cubes, and astropy's general reader costs several times
more per stamp than decoding the one common layout directly. :func:`fast_fits` handles that layout and
returns ``None`` for anything else, which :func:`read_fits` then reads with astropy (which also produces
the error messages).
"""

from __future__ import annotations

import io
import warnings
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from encoders.stamps.stamp import (
    MAX_STAMP_BYTES,
    Stamp,
    StampError,
    StampReader,
    as_cube,
    check_declared_size,
    default_bands,
)

__all__ = ["FITS_READER", "bands_from_header", "card_value", "declared_shape", "fast_fits", "gunzip", "read_fits"]

FITS_MAGIC = b"SIMPLE  ="
GZIP_MAGIC = b"\x1f\x8b"

_END_CARD = b"END" + b" " * 77
_FITS_DTYPES = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}


@lru_cache(maxsize=4096)
def card_value(text: str) -> bool | int | float | str | None:
    """The value of one FITS card (the text after ``= ``); ``None`` when it is not a plain scalar.

    Cached: most cards (BITPIX, NAXISn, BANDS, PIXSCALE ...) repeat from stamp to stamp.
    """
    text = text.strip()
    if text.startswith("'"):
        out, i = [], 1
        while i < len(text):
            if text[i] == "'":
                if text[i + 1 : i + 2] == "'":
                    out.append("'")
                    i += 2
                    continue
                return "".join(out).rstrip()
            out.append(text[i])
            i += 1
        return None
    value = text.split("/", 1)[0].strip()
    if value in ("T", "F"):
        return value == "T"
    for kind in (int, float):
        try:
            return kind(value.replace("D", "E") if kind is float else value)
        except ValueError:
            pass
    return None


def fast_fits(raw: bytes) -> tuple[np.ndarray, dict[str, Any]] | None:
    """Decode a plain primary-HDU image (no scaling, complete data) without astropy; ``None`` otherwise.

    Anything unusual (extensions only, BSCALE/BZERO, blanks, truncation) returns ``None`` and goes
    through astropy, which also produces the error messages.
    """
    header: dict[str, Any] = {}
    end = raw.find(_END_CARD)
    while end > 0 and end % 80:
        end = raw.find(_END_CARD, end + 1)
    if end <= 0:
        return None
    text = raw[:end].decode("latin-1")
    for offset in range(0, end, 80):
        if text[offset + 8 : offset + 10] == "= " and not text.startswith(("COMMENT ", "HISTORY "), offset):
            value = card_value(text[offset + 10 : offset + 80])
            if value is not None:
                header[text[offset : offset + 8].rstrip()] = value
    end += 80
    if header.get("SIMPLE") is not True or header.get("GROUPS"):
        return None
    if header.get("BSCALE", 1) != 1 or header.get("BZERO", 0) != 0 or "BLANK" in header:
        return None
    naxis, dtype = header.get("NAXIS"), _FITS_DTYPES.get(header.get("BITPIX"))  # type: ignore[arg-type]
    if naxis not in (2, 3) or dtype is None:
        return None
    shape = tuple(header.get(f"NAXIS{i}", 0) for i in range(naxis, 0, -1))
    if not all(isinstance(n, int) and n > 0 for n in shape):
        return None
    start = -(-end // 2880) * 2880
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if len(raw) < start + -(-size // 2880) * 2880:  # astropy calls a file without its final padding truncated
        return None
    return np.frombuffer(raw, dtype=dtype, count=size // np.dtype(dtype).itemsize, offset=start).reshape(shape), header


def bands_from_header(header: dict[str, Any], n: int, source: str) -> tuple[str, ...]:
    """Band names from ``BANDS`` (``u,g,r`` or ``grz``) or ``BAND1..BANDn`` / ``BAND0..``.

    Falls back to ``BAND``/``FILTER`` for one plane and to ``b0, b1 ...`` otherwise.

    Raises
    ------
    StampError
        If ``BANDS`` names a different number of bands than the data has.
    """
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
    return default_bands(n)


def declared_shape(header: Any) -> tuple[int, ...]:
    """The data shape an image HDU's header declares, slowest axis first, without reading the data.

    A tile-compressed HDU declares its image in ``ZNAXIS``/``ZNAXISn`` (astropy shows them as ``NAXISn``
    of the image header; the raw binary-table header keeps the ``Z`` keywords): both are understood.
    """
    prefix = "ZNAXIS" if "ZNAXIS" in header else "NAXIS"
    naxis = int(header.get(prefix, 0) or 0)
    return tuple(int(header.get(f"{prefix}{i}", 0) or 0) for i in range(naxis, 0, -1))


def read_fits(payload: bytes | Path, source: str) -> Stamp:
    """Read the first image HDU of a FITS file (path or bytes; gzip inflated here within the limits, tile
    compression through astropy).

    Each image HDU's declared size (``NAXISn``, or ``ZNAXISn`` when tile-compressed) is checked against the
    limits of :mod:`encoders.stamps.stamp` before its data is read or decompressed.

    Raises
    ------
    StampError
        If the file is unreadable or truncated, holds no image HDU, its first HDU with data is a table, or
        an image HDU declares more pixels than the limits.
    """
    from astropy.io import fits

    if isinstance(payload, Path) and payload.name.lower().endswith((".fits", ".fit", ".fts", ".gz")):
        try:
            payload = payload.read_bytes()
        except OSError as exc:
            raise StampError(f"{source}: unreadable FITS file ({type(exc).__name__}: {exc})") from exc
    if isinstance(payload, bytes) and payload.startswith(GZIP_MAGIC):
        payload = gunzip(payload, source)
    if isinstance(payload, bytes) and payload.startswith(FITS_MAGIC):
        fast = fast_fits(payload)
        if fast is not None:
            check_declared_size(fast[0].shape, source, "FITS")  # a view of the bytes: nothing decoded yet
            cube = as_cube(fast[0], source, "FITS")
            return Stamp(cube, bands_from_header(fast[1], cube.shape[0], source), fast[1], source)
    opened = io.BytesIO(payload) if isinstance(payload, bytes) else payload
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with fits.open(opened, memmap=False, lazy_load_hdus=False) as hdul:
                hdu = next((h for h in hdul if _checked(h, source).data is not None), None)
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
    cube = as_cube(data, source, "FITS")
    return Stamp(cube, bands_from_header(header, cube.shape[0], source), header, source)


def gunzip(payload: bytes, source: str) -> bytes:
    """The decompressed bytes of a gzip file, refusing to inflate more than ``MAX_STAMP_BYTES`` (a gzip bomb).

    Raises
    ------
    StampError
        If the data is not valid gzip, or expands beyond the limit.
    """
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(payload, MAX_STAMP_BYTES + 1)
    except zlib.error as exc:
        raise StampError(f"{source}: unreadable gzip data ({exc})") from None
    if len(out) > MAX_STAMP_BYTES:
        raise StampError(f"{source}: gzip data expands beyond {MAX_STAMP_BYTES} bytes, the limit of a stamp file")
    return out


def _checked(hdu: Any, source: str) -> Any:
    """``hdu``, once its declared image size passed :func:`check_declared_size` (tables pass unchecked)."""
    if getattr(hdu, "is_image", False):
        check_declared_size(declared_shape(hdu.header), source, "FITS")
    return hdu


FITS_READER = StampReader(
    "FITS",
    (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fits.fz", ".fz"),
    lambda head: head.startswith(FITS_MAGIC) or head.startswith(GZIP_MAGIC),
    read_fits,
)
