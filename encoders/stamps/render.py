"""A stamp drawn for people: a Lupton-asinh RGB array (galleries, maps) or an enlarged PNG (labelling).

Display only: what a person sees, never what a model embeds.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from encoders.normalise import lupton_asinh
from encoders.stamps import read_stamp

__all__ = ["RGB_BANDS", "STAMP_MIN_PIXELS", "png_of_stamp", "rgb_stamp"]

#: Bands shown as red, green and blue, reddest first; stamps with other band names use their last three.
RGB_BANDS = ("i", "r", "g")

#: Stamps are small (64 px): the PNG is enlarged by an integer factor to at least this size.
STAMP_MIN_PIXELS = 256


def rgb_stamp(source: str | Path) -> np.ndarray:
    """An ``(H, W, 3)`` Lupton-asinh RGB image in [0, 1] of the stamp file at ``source``.

    Row 0 is the bottom of the image (show it with ``origin="lower"``).
    """
    stamp = read_stamp(source)
    norm = lupton_asinh(stamp.data)
    names = list(stamp.bands)
    if all(b in names for b in RGB_BANDS):
        planes = [norm[names.index(b)] for b in RGB_BANDS]
    else:
        planes = [norm[min(j, len(names) - 1)] for j in (len(names) - 1, len(names) // 2, 0)]
    return np.clip(np.stack(planes, axis=-1), 0.0, 1.0)


def png_of_stamp(source: str | Path, label: str | None = None) -> bytes:
    """The stamp file at ``source`` drawn as a Lupton RGB PNG (north up), enlarged for a person to look at.

    Parameters
    ----------
    source : str or Path
        The stamp file.
    label : str, optional
        How error messages name the stamp (default ``stamp file '<source>'``).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If it cannot be read as a stamp (the message names the file and the reader's problem).
    """
    from PIL import Image

    label = label or f"stamp file {source!r}"
    if not source or not Path(source).is_file():
        raise FileNotFoundError(f"{label} is missing")
    try:
        rgb = rgb_stamp(source)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad stamp file, named in the message
        raise ValueError(f"cannot read {label}: {type(exc).__name__}: {exc}") from None
    scale = max(1, -(-STAMP_MIN_PIXELS // max(rgb.shape[:2])))
    # rgb_stamp's row 0 is the bottom of the image; PNG row 0 is the top.
    pixels = np.repeat(np.repeat(np.flipud(rgb), scale, axis=0), scale, axis=1)
    buffer = io.BytesIO()
    Image.fromarray(np.round(pixels * 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()
