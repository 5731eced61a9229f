"""The stamp record every reader returns, the reader description, and the checks they share.

Kept apart from the package's ``__init__`` so that each format module can import it without a cycle.

Size limits
-----------
A stamp file may be small in bytes but declare an enormous image (a PNG of zeros, a tile-compressed
FITS): decoding it first would cost seconds and gigabytes. Every reader checks the size its header
declares with :func:`check_declared_size` *before* decoding, against these limits, the one place they
are set (``proto/ssald.proto`` documents them for ``FindSimilarToImage``):

* :data:`MAX_STAMP_BYTES` (64 MiB): a file's bytes, as uploaded or on disk.
* :data:`MAX_STAMP_SIDE` (4096 px): height and width.
* :data:`MAX_STAMP_VALUES` (2**24 = 16,777,216): decoded values, bands x height x width.

Real stamps are at most ~512 px a side (Legacy Survey cutouts 256-512 px, Galaxy Zoo JPEGs 424 px),
so a side of 4096 leaves a factor of 8; 2**24 values are a 64 MiB float32 cube (a 4096 px single-band
image, or 5 bands of 1832 px), a bound on what one request can make the server hold. A float32 cube at
the value limit is the largest plain file worth reading, hence 64 MiB of bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "MAX_STAMP_BYTES",
    "MAX_STAMP_SIDE",
    "MAX_STAMP_VALUES",
    "Stamp",
    "StampError",
    "StampReader",
    "as_cube",
    "check_declared_size",
    "check_file_size",
    "default_bands",
]

#: Most bytes of one stamp file (uploaded or on disk).
MAX_STAMP_BYTES = 64 * 2**20
#: Most pixels along either side of a stamp.
MAX_STAMP_SIDE = 4096
#: Most decoded values (bands x height x width) of one stamp: a 64 MiB float32 cube.
MAX_STAMP_VALUES = 2**24


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


def check_declared_size(shape: tuple[int, ...], source: str, fmt: str) -> None:
    """Refuse a stamp whose header declares more than the limits, before it is decoded.

    Parameters
    ----------
    shape : tuple of int
        The declared shape, ``(H, W)`` or ``(n_bands, H, W)`` (any leading axes count as bands).
    source, fmt : str
        Named in the message.

    Raises
    ------
    StampError
        If a side exceeds :data:`MAX_STAMP_SIDE` or the values exceed :data:`MAX_STAMP_VALUES`; the message
        names the declared size and the limit.
    """
    dims = [int(n) for n in shape]
    if len(dims) < 2:
        return
    height, width = dims[-2], dims[-1]
    values = int(np.prod(dims, dtype=object))
    planes = values // max(1, height * width)
    declared = f"{width}x{height}" + (f" image of {planes} planes" if len(dims) > 2 else " image")
    if max(height, width) > MAX_STAMP_SIDE:
        raise StampError(f"{source}: {fmt} header declares a {declared}; the limit is {MAX_STAMP_SIDE} pixels a side")
    if values > MAX_STAMP_VALUES:
        raise StampError(
            f"{source}: {fmt} header declares a {declared} ({values} values); "
            f"the limit is {MAX_STAMP_VALUES} decoded values"
        )


def check_file_size(n_bytes: int, source: str) -> None:
    """Refuse a stamp file of more than :data:`MAX_STAMP_BYTES` bytes.

    Raises
    ------
    StampError
        If ``n_bytes`` exceeds the limit; the message names both.
    """
    if n_bytes > MAX_STAMP_BYTES:
        raise StampError(f"{source}: stamp file has {n_bytes} bytes; the limit is {MAX_STAMP_BYTES} bytes")


def default_bands(n: int) -> tuple[str, ...]:
    """Band names of a file that names none: ``b0, b1, ...``."""
    return tuple(f"b{i}" for i in range(n))


def as_cube(array: np.ndarray, source: str, fmt: str) -> np.ndarray:
    """Validate ndim/size and return a native float32 ``(B, H, W)`` copy (a 2-D image is one band).

    Raises
    ------
    StampError
        If the array is empty, not 2-D or 3-D, or not numeric; the message names ``source``.
    """
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
