"""An object's stamp file drawn as a PNG for a person to look at (the ``GetStamp`` RPC, ``ssald label``)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ssald_index.store import ObjectNotFound

__all__ = ["STAMP_MIN_PIXELS", "png_of_stamp"]

# Stamps are small (64 px): the PNG is enlarged by an integer factor to at least this size.
STAMP_MIN_PIXELS = 256


def png_of_stamp(source: str, objid: int) -> bytes:
    """The stamp file at ``source`` drawn as a Lupton RGB PNG (north up), enlarged for a person to look at.

    Raises
    ------
    ObjectNotFound
        If the file does not exist (the message names it and the objid).
    ValueError
        If it cannot be read as a stamp.
    """
    from PIL import Image

    from server.gallery_cmd import rgb_stamp

    if not source or not Path(source).is_file():
        raise ObjectNotFound(objid, f"stamp file {source!r} of objid {objid} is missing")
    try:
        rgb = rgb_stamp(source)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad stamp file, named in the message
        raise ValueError(f"cannot read stamp file {source!r} of objid {objid}: {type(exc).__name__}: {exc}") from None
    scale = max(1, -(-STAMP_MIN_PIXELS // max(rgb.shape[:2])))
    # rgb_stamp's row 0 is the bottom of the image (gallery shows it with origin="lower"); PNG row 0 is the top.
    pixels = np.repeat(np.repeat(np.flipud(rgb), scale, axis=0), scale, axis=1)
    buffer = io.BytesIO()
    Image.fromarray(np.round(pixels * 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()
