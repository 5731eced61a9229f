"""Lupton asinh normalisation: agreement with astropy, any band count, edge cases."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.visualization import make_lupton_rgb

from encoders.normalise import LuptonParams, identity_stats, lupton_asinh, lupton_stats

REAL_CUBE = (
    Path(__file__).resolve().parents[2].parent
    / "shared/data/real/legacysurvey_fits/legacysurvey_dr9_grz_357.9087-54.8817.fits"
)


def _numpy_reference(cube: np.ndarray, params: LuptonParams) -> np.ndarray:
    """The element-wise NumPy implementation the compiled passes replaced (kept verbatim as the oracle)."""
    x = np.array(cube, dtype=np.float32, copy=True)
    x[~np.isfinite(x)] = 0.0
    if params.minimum != 0.0:
        x -= np.float32(params.minimum)
    with np.errstate(over="ignore"):
        intensity = x.mean(axis=-3, keepdims=True, dtype=np.float32)
    slope = np.float32(0.1 / np.arcsinh(0.1 * params.q))
    soften = np.float32(params.q / params.stretch)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        stretched = np.arcsinh(intensity * soften) * slope
        ratio = np.where(intensity > 0, stretched / intensity, np.float32(0.0))
        ratio[~np.isfinite(ratio)] = 0.0
        x *= ratio
        np.maximum(x, 0.0, out=x)
        peak = x.max(axis=-3, keepdims=True)
        scale = np.where(peak > 1.0, 1.0 / peak, np.float32(1.0)).astype(np.float32, copy=False)
    x *= scale
    np.clip(x, 0.0, 1.0, out=x)
    return x


@pytest.mark.parametrize("params", [LuptonParams(), LuptonParams(q=3, stretch=0.7, minimum=-2.5)])
def test_matches_numpy_reference_with_nan_negative_and_saturated_pixels(params: LuptonParams) -> None:
    rng = np.random.default_rng(7)
    cube = rng.normal(0, 20, size=(40, 5, 32, 32)).astype(np.float32)
    cube[::3] *= 500  # saturating
    cube[1, 2, :4] = np.nan
    cube[2, :, 5, 5] = np.inf
    cube[3] = -np.abs(cube[3])  # no positive intensity
    cube[4] = 1e38  # the band sum overflows
    ours = lupton_asinh(cube, params)
    np.testing.assert_allclose(ours, _numpy_reference(cube, params), rtol=0, atol=2e-6)
    assert 0.0 <= ours.min() and ours.max() <= 1.0


def test_stats_count_finite_pixels_and_their_range() -> None:
    rng = np.random.default_rng(3)
    cube = rng.normal(0, 5, size=(6, 3, 8, 8)).astype(">f4")
    cube[0, 1, 2, 3] = np.nan
    cube[1] = np.nan
    cube[2, 0, 0, 0] = -np.inf
    for out, stats in (lupton_stats(cube), identity_stats(cube)):
        finite = np.isfinite(cube)
        np.testing.assert_array_equal(stats.finite, finite.sum(axis=(1, 2, 3)))
        assert stats.size == 3 * 8 * 8
        for i in range(len(cube)):
            values = cube[i][finite[i]]
            assert stats.low[i] == (values.min() if values.size else np.inf)
            assert stats.high[i] == (values.max() if values.size else -np.inf)
        assert np.all(np.isfinite(out))
    out, _ = identity_stats(cube)
    np.testing.assert_array_equal(out, np.clip(np.nan_to_num(cube.astype(np.float32), posinf=0, neginf=0), 0, 1))


def _astropy_reference(cube: np.ndarray, params: LuptonParams) -> np.ndarray:
    """astropy's uint8 RGB of a (3, H, W) cube, returned in the cube's band order."""
    b0, b1, b2 = cube
    rgb = make_lupton_rgb(b2, b1, b0, minimum=params.minimum, stretch=params.stretch, Q=params.q)
    return np.moveaxis(rgb, -1, 0)[::-1].astype(np.float32)


def _assert_matches_astropy(cube: np.ndarray, params: LuptonParams) -> None:
    ours = lupton_asinh(cube, params) * 255
    ref = _astropy_reference(cube, params)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() <= 1.0
    # astropy truncates to uint8; flooring ours must agree almost everywhere.
    assert np.mean(np.floor(ours + 1e-4) == ref) > 0.99


@pytest.mark.skipif(not REAL_CUBE.exists(), reason=f"real Legacy Survey cube not found at {REAL_CUBE}")
@pytest.mark.parametrize(
    "params",
    [
        LuptonParams(q=8, stretch=0.1),
        LuptonParams(q=10, stretch=0.5, minimum=-0.01),
        LuptonParams(q=3, stretch=0.02, minimum=0.001),
    ],
)
def test_matches_astropy_on_real_legacy_survey_cube(params: LuptonParams) -> None:
    data = fits.getdata(REAL_CUBE)
    assert data.shape == (3, 256, 256)
    cube = data.astype(np.float32)  # FITS is big-endian
    _assert_matches_astropy(cube, params)
    out = lupton_asinh(cube, params)
    assert 0.0 < out.mean() < 1.0  # a real image, not all black or all saturated


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_astropy_on_random_data(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cube = rng.normal(0.0, 1.0, size=(3, 64, 64)).astype(np.float32)
    yy, xx = np.mgrid[:64, :64]
    for amp in (50.0, 3000.0):  # one modest and one saturating source
        cy, cx = rng.uniform(10, 54, size=2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 18.0)
        cube += (amp * rng.uniform(0.3, 1.0, size=(3, 1, 1)) * blob).astype(np.float32)
    _assert_matches_astropy(cube, LuptonParams())
    _assert_matches_astropy(cube, LuptonParams(q=5, stretch=3.0, minimum=0.5))


@pytest.mark.parametrize("n_bands", [1, 2, 3, 5, 7])
def test_any_number_of_bands(n_bands: int) -> None:
    cube = np.random.default_rng(n_bands).normal(5, 20, size=(4, n_bands, 16, 16))
    out = lupton_asinh(cube)
    assert out.shape == cube.shape
    assert out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_single_band_is_the_asinh_curve() -> None:
    flux = np.array([[[[0.5, 2.0, 20.0, 200.0]]]])
    params = LuptonParams(q=8.0, stretch=20.0)
    expected = np.arcsinh(flux * params.q / params.stretch) * 0.1 / np.arcsinh(0.1 * params.q)
    np.testing.assert_allclose(lupton_asinh(flux, params), np.minimum(expected, 1.0), rtol=1e-5)


def test_leading_dimensions_are_independent() -> None:
    cubes = np.random.default_rng(2).normal(10, 30, size=(2, 3, 5, 8, 8)).astype(np.float32)
    out = lupton_asinh(cubes)
    np.testing.assert_array_equal(out[1, 2], lupton_asinh(cubes[1, 2]))


def test_nan_and_non_positive_intensity_give_zero_without_warnings() -> None:
    cube = np.full((5, 4, 4), -3.0, dtype=np.float32)  # intensity < 0 everywhere
    cube[:, 0, 0] = 0.0  # intensity == 0
    cube[2, 1, 1] = np.nan
    cube[:, 2, 2] = [np.nan, np.inf, -np.inf, np.nan, np.nan]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = lupton_asinh(cube)
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out, 0.0)


def test_colours_are_preserved_including_saturated_pixels() -> None:
    ratios = np.array([0.5, 1.0, 2.0, 1.5, 0.25], dtype=np.float32)
    levels = np.array([1.0, 30.0, 1e5], dtype=np.float32)  # linear, log and saturated regimes
    cube = ratios[:, None, None] * levels[None, None, :]
    out = lupton_asinh(cube)[:, 0, :]
    for j in range(len(levels)):
        np.testing.assert_allclose(out[:, j] / out[1, j], ratios, rtol=1e-5)
    assert out[:, 2].max() == pytest.approx(1.0)  # saturated pixel scaled so its brightest band is 1
    assert out[:, 1].max() < 1.0


def test_big_endian_and_integer_input() -> None:
    cube = np.arange(3 * 4 * 4, dtype=">f4").reshape(3, 4, 4)
    np.testing.assert_array_equal(lupton_asinh(cube), lupton_asinh(cube.astype("<f4")))
    assert lupton_asinh(cube.astype(np.int16)).dtype == np.float32


def test_rejects_arrays_without_band_axis() -> None:
    with pytest.raises(ValueError, match=r"\(\.\.\., n_bands, H, W\)"):
        lupton_asinh(np.zeros((8, 8)))


def test_params_round_trip_and_validation() -> None:
    params = LuptonParams(q=6, stretch=12.5, minimum=-1)
    assert LuptonParams.from_dict(params.to_dict()) == params
    assert LuptonParams.from_metadata(params.to_metadata()) == params
    assert params.to_metadata() == {"lupton_q": "6.0", "lupton_stretch": "12.5", "lupton_minimum": "-1.0"}
    with pytest.raises(ValueError, match="stretch must be > 0"):
        LuptonParams(stretch=0)
    with pytest.raises(ValueError, match="q must be > 0"):
        LuptonParams(q=-1)
    with pytest.raises(ValueError, match="unknown keys"):
        LuptonParams.from_dict({"Q": 8})
    with pytest.raises(ValueError, match="lupton_stretch"):
        LuptonParams.from_metadata({"lupton_q": "8", "lupton_minimum": "0"})


def test_normaliser_works_where_numba_cannot_cache(tmp_path):
    """A read-only install with no writable home: numba finds no cache folder; the passes compile anyway."""
    code = (
        "import numba.core.caching as c; c.CacheImpl._locator_classes = []\n"
        "import numpy as np\n"
        "from encoders.normalise import lupton_asinh\n"
        "out = lupton_asinh(np.full((2, 3, 4, 4), 5.0))\n"
        "assert out.shape == (2, 3, 4, 4) and 0 < out.max() <= 1\n"
        "print('ok')\n"
    )
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "ok"
