"""Stamps drawn for people: the Lupton RGB array and the enlarged, north-up PNG."""

from __future__ import annotations

import io

import numpy as np
import pytest

from encoders.normalise import lupton_asinh
from encoders.stamps import read_stamp
from encoders.stamps.render import png_of_stamp, rgb_stamp


def test_rgb_stamp_is_lupton_of_i_r_g(survey):
    path = sorted((survey / "stamps").glob("*.fits"))[0]
    stamp = read_stamp(path)
    norm = lupton_asinh(stamp.data)
    rgb = rgb_stamp(str(path))
    names = list(stamp.bands)
    for j, band in enumerate(("i", "r", "g")):
        assert np.allclose(rgb[..., j], np.clip(norm[names.index(band)], 0, 1))


def test_stamp_png_is_north_up_and_enlarged(tmp_path):
    from PIL import Image

    cube = np.full((3, 64, 48), 0.01, np.float32)
    cube[:, -8:, :] = 50.0  # the last rows are north: the top of the picture
    np.save(tmp_path / "north.npy", cube)
    image = np.asarray(Image.open(io.BytesIO(png_of_stamp(str(tmp_path / "north.npy")))))
    assert image.shape == (256, 192, 3)  # enlarged 4x to reach 256 pixels
    assert image[:32].min() > image[32:].max()


def test_png_of_stamp_names_a_missing_or_broken_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="stamp file 'gone.fits' is missing"):
        png_of_stamp("gone.fits")
    (tmp_path / "bad.fits").write_bytes(b"not a stamp")
    with pytest.raises(ValueError, match="cannot read star 7: StampError"):
        png_of_stamp(tmp_path / "bad.fits", "star 7")
