"""Stamp reading: FITS cubes and images, .npy, bytes, band names and clear errors."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from encoders import stamps as stamps_module
from encoders.stamps import READERS, Stamp, StampError, StampReader, read_stamp, register_reader

REAL_CUBE = (
    Path(__file__).resolve().parents[3].parent
    / "shared/data/real/legacysurvey_fits/legacysurvey_dr9_grz_357.9087-54.8817.fits"
)


def _fits_bytes(data: np.ndarray | None, **cards: object) -> bytes:
    hdu = fits.PrimaryHDU(data)
    for key, value in cards.items():
        hdu.header[key] = value
    buf = io.BytesIO()
    hdu.writeto(buf)
    return buf.getvalue()


def _contract_cube() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(5, 64, 64)).astype(">f4")


@pytest.mark.skipif(not REAL_CUBE.exists(), reason=f"real Legacy Survey cube not found at {REAL_CUBE}")
def test_reads_real_legacy_survey_cube() -> None:
    stamp = read_stamp(REAL_CUBE)
    assert stamp.shape == (3, 256, 256) and stamp.n_bands == 3
    assert stamp.data.dtype == np.float32 and stamp.data.dtype.isnative
    assert stamp.bands == ("g", "r", "z")  # BANDS='grz' plus 0-based BAND0..BAND2
    assert stamp.header["SURVEY"] == "LegacySurvey"
    assert stamp.source == str(REAL_CUBE)
    np.testing.assert_array_equal(stamp.data, fits.getdata(REAL_CUBE).astype(np.float32))


def test_reads_contract_fits_file_and_bytes(tmp_path: Path) -> None:
    cube = _contract_cube()
    cards = dict(OBJID=1237, RA=10.5, DEC=-3.25, BANDS="u,g,r,i,z", PIXSCALE=0.396, SURVEY="SYNTH")
    cards.update({f"BAND{i + 1}": b for i, b in enumerate("ugriz")})
    raw = _fits_bytes(cube, **cards)
    path = tmp_path / "1237.fits"
    path.write_bytes(raw)
    for source, name in ((path, str(path)), (str(path), str(path)), (raw, "<bytes>")):
        stamp = read_stamp(source)
        assert isinstance(stamp, Stamp)
        assert stamp.bands == ("u", "g", "r", "i", "z")
        assert stamp.data.dtype == np.dtype("float32") and stamp.data.dtype.isnative
        np.testing.assert_array_equal(stamp.data, cube.astype(np.float32))
        assert stamp.header["OBJID"] == 1237 and stamp.header["SURVEY"] == "SYNTH"
        assert stamp.source == name


def test_band_names_from_numbered_keys_or_defaults() -> None:
    cube = np.zeros((2, 8, 8), np.float32)
    assert read_stamp(_fits_bytes(cube, BAND1="g", BAND2="r")).bands == ("g", "r")
    assert read_stamp(_fits_bytes(cube)).bands == ("b0", "b1")
    image = read_stamp(_fits_bytes(np.ones((8, 8), np.int16), FILTER="r"))
    assert image.shape == (1, 8, 8) and image.bands == ("r",) and image.data.dtype == np.float32


def test_reads_npy_files_and_bytes(tmp_path: Path) -> None:
    cube = np.arange(3 * 4 * 5, dtype=">f8").reshape(3, 4, 5)
    path = tmp_path / "x.npy"
    np.save(path, cube)
    buf = io.BytesIO()
    np.save(buf, cube[0])
    for source, shape in ((path, (3, 4, 5)), (buf.getvalue(), (1, 4, 5))):
        stamp = read_stamp(source)
        assert stamp.shape == shape and stamp.data.dtype == np.float32 and stamp.data.dtype.isnative
        assert stamp.bands == tuple(f"b{i}" for i in range(shape[0])) and stamp.header == {}


def test_unknown_suffix_is_sniffed_by_content(tmp_path: Path) -> None:
    path = tmp_path / "stamp.bin"
    path.write_bytes(_fits_bytes(np.zeros((2, 4, 4), np.float32)))
    assert read_stamp(path).shape == (2, 4, 4)


@pytest.mark.parametrize("cut", [100, 2880, 2880 + 1000, -10])
def test_truncated_fits_is_refused(cut: int) -> None:
    raw = _fits_bytes(_contract_cube())
    with pytest.raises(StampError, match=r"<bytes>: .*truncated"):
        read_stamp(raw[:cut])


def test_errors_name_the_source_and_the_problem(tmp_path: Path) -> None:
    with pytest.raises(StampError, match="no such file"):
        read_stamp(tmp_path / "missing.fits")
    with pytest.raises(StampError, match="no HDU with image data"):
        read_stamp(_fits_bytes(None))
    with pytest.raises(StampError, match=r"shape \(2, 2, 4, 4\) \(ndim=4\)"):
        read_stamp(_fits_bytes(np.zeros((2, 2, 4, 4), np.float32)))
    with pytest.raises(StampError, match="names 3 bands but the data has 5"):
        read_stamp(_fits_bytes(_contract_cube(), BANDS="g,r,z"))
    with pytest.raises(StampError, match="unrecognised stamp format"):
        read_stamp(b"definitely not an image")
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((2, 8, 8)))
    bad.write_bytes(bad.read_bytes()[:90])
    with pytest.raises(StampError, match=rf"{bad}: unreadable or truncated \.npy"):
        read_stamp(bad)
    empty = tmp_path / "empty.npy"
    np.save(empty, np.zeros((0, 8, 8)))
    with pytest.raises(StampError, match="no image data"):
        read_stamp(empty)
    assert issubclass(StampError, ValueError)


def test_register_reader_adds_a_format(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(stamps_module, "READERS", list(READERS))

    def read_txt(payload: bytes | Path, source: str) -> Stamp:
        text = payload.decode() if isinstance(payload, bytes) else payload.read_text()
        values = np.array([float(v) for v in text.split()], np.float32).reshape(1, 2, 2)
        return Stamp(values, ("x",), {}, source)

    register_reader(StampReader("TXT", (".txt",), lambda head: head.startswith(b"#txt"), read_txt))
    path = tmp_path / "a.txt"
    path.write_text("1 2 3 4")
    assert read_stamp(path).data.sum() == 10
    assert stamps_module.READERS[-1].name == "TXT"


REAL_RINGS = Path(__file__).resolve().parents[3].parent / "shared/data/real/decals_rings"


def _image_bytes(array: np.ndarray, fmt: str) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return buf.getvalue()


def test_reads_real_decals_png_as_grz_cube() -> None:
    from PIL import Image

    paths = sorted(REAL_RINGS.glob("*.png"))
    assert len(paths) == 170
    stamp = read_stamp(paths[0])
    assert stamp.shape == (3, 128, 128) and stamp.bands == ("g", "r", "z")
    assert stamp.data.dtype == np.float32 and 0.0 <= stamp.data.min() and stamp.data.max() <= 1.0
    rgb = np.asarray(Image.open(paths[0]).convert("RGB"))
    # planes are blue (g), green (r), red (z): bluest first
    np.testing.assert_allclose(stamp.data[0], rgb[..., 2] / 255.0, atol=1e-7)
    np.testing.assert_allclose(stamp.data[2], rgb[..., 0] / 255.0, atol=1e-7)
    assert stamp.header["FORMAT"] == "PNG"
    assert read_stamp(paths[0].read_bytes()).shape == (3, 128, 128)


def test_png_jpeg_grey_alpha_and_band_option(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, size=(16, 12, 4), dtype=np.uint8)
    stamp = read_stamp(_image_bytes(rgba, "PNG"))
    assert stamp.shape == (3, 16, 12)
    np.testing.assert_allclose(stamp.data[1], rgba[..., 1] / 255.0, atol=1e-7)
    grey = read_stamp(_image_bytes(rgba[..., 0], "PNG"))
    assert grey.shape == (1, 16, 12) and grey.bands == ("b0",)
    path = tmp_path / "x.jpg"
    path.write_bytes(_image_bytes(rgba[..., :3], "JPEG"))
    jpeg = read_stamp(path, bands=("G", "R", "I"))
    assert jpeg.shape == (3, 16, 12) and jpeg.bands == ("G", "R", "I") and jpeg.header["FORMAT"] == "JPEG"
    with pytest.raises(StampError, match=r"bands g,r name 2 planes but the stamp has 3"):
        read_stamp(path, bands=("g", "r"))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_png_jpeg_is_refused(fmt: str, tmp_path: Path) -> None:
    raw = _image_bytes(np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8), fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(StampError, match=rf"{path}: unreadable or truncated PNG/JPEG"):
        read_stamp(path)


def test_fast_fits_path_matches_astropy(tmp_path: Path) -> None:
    from encoders.stamps.fits import fast_fits

    cube = _contract_cube()
    cards = dict(OBJID=1237, RA=10.5, DEC=-3.25, BANDS="u,g,r,i,z", SURVEY="O'Brien", FLAG=True, EXPO=1.5e3)
    for raw in (
        _fits_bytes(cube, **cards),
        REAL_CUBE.read_bytes(),
        _fits_bytes(np.arange(12, dtype=np.int16).reshape(3, 4)),
    ):
        data, header = fast_fits(raw)
        with fits.open(io.BytesIO(raw)) as hdul:
            np.testing.assert_array_equal(data, hdul[0].data)
            want = {k: v for k, v in hdul[0].header.items() if k not in ("COMMENT", "HISTORY")}
        assert header == want
    scaled = fits.PrimaryHDU(np.ones((4, 4), np.int16))
    scaled.header["BZERO"] = 32768
    buf = io.BytesIO()
    scaled.writeto(buf)
    assert fast_fits(buf.getvalue()) is None  # scaled data goes through astropy
    assert read_stamp(buf.getvalue()).data.max() == 32769.0
