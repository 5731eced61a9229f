"""NumPy ``.npy`` stamps: one ``(n_bands, H, W)`` or ``(H, W)`` array per file, bands named ``b0, b1 ...``."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from encoders.stamps.stamp import Stamp, StampError, StampReader, as_cube, check_declared_size, default_bands

__all__ = ["NPY_READER", "read_npy"]

NPY_MAGIC = b"\x93NUMPY"


def read_npy(payload: bytes | Path, source: str) -> Stamp:
    """Read one array (never a pickle) from a ``.npy`` path or its bytes.

    Raises
    ------
    StampError
        If the file is unreadable, truncated, an archive of several arrays, or not an image, or its header
        declares more values than the limits (checked before the array is allocated).
    """
    try:
        if isinstance(payload, bytes) and payload.startswith(NPY_MAGIC):
            check_declared_size(_declared_shape(payload), source, "NPY")
        opened = io.BytesIO(payload) if isinstance(payload, bytes) else payload
        array = np.load(opened, allow_pickle=False)
    except StampError:
        raise
    except Exception as exc:
        problem = f"{type(exc).__name__}: {exc}"
        raise StampError(f"{source}: unreadable or truncated .npy file ({problem})") from exc
    if not isinstance(array, np.ndarray):
        raise StampError(f"{source}: .npy payload is an archive of several arrays; expected one array")
    cube = as_cube(array, source, "NPY")
    return Stamp(cube, default_bands(cube.shape[0]), {}, source)


def _declared_shape(raw: bytes) -> tuple[int, ...]:
    """The array shape a ``.npy`` header declares (numpy allocates it before reading the data)."""
    stream = io.BytesIO(raw)
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        return tuple(np.lib.format.read_array_header_1_0(stream)[0])
    if version == (2, 0):
        return tuple(np.lib.format.read_array_header_2_0(stream)[0])
    return ()  # a newer header layout: left to np.load


NPY_READER = StampReader("NPY", (".npy",), lambda head: head.startswith(NPY_MAGIC), read_npy)
