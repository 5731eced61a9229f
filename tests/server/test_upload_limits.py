"""Decompression bombs through ``FindSimilarToImage`` are refused from their headers (issue 15, fault 3).

Each upload is small in bytes but declares far more pixels than any stamp; the server must answer
INVALID_ARGUMENT naming the declared size and the limit, quickly and without decoding it.
"""

from __future__ import annotations

import io
import re
import resource
import struct
import time
import zlib

import grpc
import numpy as np
import pytest

from proto import ssald_pb2, ssald_pb2_grpc
from tests.server.helpers import running_server

TIMEOUT = 30.0
SIDE = 12_000  # 144 M pixels: the probe's 420 KB PNG took 16 s and 5.9 GB of RSS


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def real_png_bomb(side: int = SIDE) -> bytes:
    """A genuine, complete ``side`` x ``side`` 8-bit grey PNG of zeros: it decodes, to ``side``² bytes."""
    squeeze = zlib.compressobj(9)
    row = bytes(side + 1)  # filter byte 0, then the row's pixels
    idat = b"".join(squeeze.compress(row) for _ in range(side)) + squeeze.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def patched_png(width: int, height: int) -> bytes:
    """A 16x16 PNG whose IHDR (and its CRC) was rewritten to declare ``width`` x ``height``."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(buf, format="PNG")
    raw = bytearray(buf.getvalue())
    raw[16:24] = struct.pack(">II", width, height)
    raw[29:33] = struct.pack(">I", zlib.crc32(bytes(raw[12:29])))
    return bytes(raw)


def patched_tile_compressed_fits(side: int = SIDE) -> bytes:
    """A Rice tile-compressed 16x16 FITS image whose ZNAXIS1/ZNAXIS2 were rewritten to ``side``."""
    from astropy.io import fits

    buf = io.BytesIO()
    hdu = fits.CompImageHDU(np.zeros((16, 16), np.float32), compression_type="RICE_1")
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(buf)
    raw = buf.getvalue()
    for key in (b"ZNAXIS1", b"ZNAXIS2"):
        raw = re.sub(key.ljust(8) + rb"= +\d+", key.ljust(8) + b"= " + str(side).encode().rjust(20), raw, count=1)
    assert len(raw) == len(buf.getvalue())
    return raw


@pytest.fixture(scope="module")
def stub(db, tiny_model):
    with running_server(db[0], model_path=tiny_model) as address, grpc.insecure_channel(address) as channel:
        yield ssald_pb2_grpc.SsaldStub(channel)


def _refused_quickly(stub, image: bytes, declared: str) -> str:
    """Send ``image``; assert INVALID_ARGUMENT within a second naming ``declared`` and a limit, RSS barely grown."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with pytest.raises(grpc.RpcError) as err:
        stub.FindSimilarToImage(ssald_pb2.FindSimilarToImageRequest(image=image, k=3), timeout=TIMEOUT)
    elapsed = time.perf_counter() - start
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) / 1024
    details = err.value.details()
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (err.value.code(), details[:300])
    assert declared in details and "limit" in details, details
    assert elapsed < 1.0, elapsed
    assert grown_mb < 100, grown_mb
    return details


def test_a_small_png_declaring_a_huge_image_is_refused_before_decoding(stub) -> None:
    image = real_png_bomb()
    assert len(image) < 1_000_000
    _refused_quickly(stub, image, f"{SIDE}x{SIDE}")


def test_a_png_over_pillows_bomb_limit_is_invalid_argument_not_internal(stub) -> None:
    _refused_quickly(stub, patched_png(20_000, 20_000), "400000000 pixels")  # Pillow refuses it in open()


def test_a_tile_compressed_fits_declaring_a_huge_image_is_refused_before_decoding(stub) -> None:
    _refused_quickly(stub, patched_tile_compressed_fits(), f"{SIDE}x{SIDE}")
