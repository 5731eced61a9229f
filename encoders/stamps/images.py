"""PNG/JPEG stamps: 8- or 16-bit colour composites (e.g. Legacy Survey g,r,z) as float32 cubes in [0, 1].

A colour image becomes one plane per channel, bluest first: the blue, green and red channels are the
planes of :data:`IMAGE_BANDS` (``g, r, z``, the Legacy Survey mapping of z to red, r to green and g to
blue). A grey image is one plane. Pass ``bands=`` to :func:`encoders.stamps.read_stamp` to name them
otherwise.
"""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import numpy as np

from encoders.stamps.stamp import (
    MAX_STAMP_VALUES,
    Stamp,
    StampError,
    StampReader,
    as_cube,
    check_declared_size,
    default_bands,
)

__all__ = ["IMAGE_BANDS", "IMAGE_READER", "read_image"]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"

#: Band names of the planes of a colour (RGB) image, bluest channel first.
IMAGE_BANDS: tuple[str, ...] = ("g", "r", "z")


def read_image(payload: bytes | Path, source: str) -> Stamp:
    """PNG/JPEG: colour images -> ``(3, H, W)`` planes B, G, R (bluest first); grey -> one plane.

    ``Image.open`` only parses the header, so the declared size is checked against the limits of
    :mod:`encoders.stamps.stamp` before a pixel is decoded.

    Raises
    ------
    StampError
        If Pillow cannot decode the image (unreadable or truncated), or its header declares more pixels than
        the limits (Pillow's own decompression-bomb refusal included).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        opened = io.BytesIO(payload) if isinstance(payload, bytes) else payload
        with warnings.catch_warnings():
            # Pillow warns of sizes we refuse below anyway.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image_file = Image.open(opened)
        with image_file as image:
            width, height = image.size
            check_declared_size((len(image.getbands()), height, width), source, image.format or "image")
            image.load()  # decode now: a truncated file fails here, not later
            fmt = image.format or "image"
            mode = image.mode
            if mode in ("P", "PA", "RGBA", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
                image = image.convert("RGB")
            elif mode == "LA":
                image = image.convert("L")
            array = np.asarray(image)
    except Image.DecompressionBombError as exc:
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        declared = f"{pixels.group(1)} pixels" if pixels else "too many pixels"
        raise StampError(
            f"{source}: image header declares {declared}; the limit is {MAX_STAMP_VALUES} decoded values"
        ) from exc
    except StampError:
        raise
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
    cube = as_cube(array, source, fmt)
    cube /= np.float32(scale)
    bands = IMAGE_BANDS if cube.shape[0] == len(IMAGE_BANDS) else default_bands(cube.shape[0])
    return Stamp(cube, tuple(bands), {"FORMAT": fmt, "MODE": mode}, source)


IMAGE_READER = StampReader(
    "PNG/JPEG",
    (".png", ".jpg", ".jpeg"),
    lambda head: head.startswith(PNG_MAGIC) or head.startswith(JPEG_MAGIC),
    read_image,
)
