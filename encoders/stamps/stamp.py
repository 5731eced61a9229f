"""The stamp record every reader returns, the reader description, and the checks they share.

Kept apart from the package's ``__init__`` so that each format module can import it without a cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Stamp", "StampError", "StampReader", "as_cube", "default_bands"]


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
