"""encoders.morphology: analytic expectations, statmorph's values on the same images, bad stamps never raise."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from encoders.morphology import FLAG_BAD_PIXELS, FLAG_FAILED, MorphologyParams, measure, measure_batch
from ssald_index.schema import MORPHOLOGY_FEATURES

YY, XX = np.mgrid[0:64, 0:64].astype(np.float64)
NAMES = [n.removeprefix("morph_") for n in MORPHOLOGY_FEATURES]


def _sersic(x0, y0, re, n=1.0, amp=100.0, q=1.0, theta=0.0):
    """A Sérsic profile seen through a Gaussian PSF of 1.2 pixels sigma (SDSS-like seeing)."""
    from scipy import ndimage as ndi

    dx, dy = XX - x0, YY - y0
    u = dx * np.cos(theta) + dy * np.sin(theta)
    v = (-dx * np.sin(theta) + dy * np.cos(theta)) / q
    b = 2 * n - 1 / 3
    return ndi.gaussian_filter(amp * np.exp(-b * ((np.hypot(u, v) / re) ** (1 / n) - 1)), 1.2)


def _noisy(image, seed=0, sigma=1.0, sky=5.0):
    return image + sky + np.random.default_rng(seed).normal(0, sigma, image.shape)


def _values(image):
    values, flag = measure(image)
    return dict(zip(NAMES, values.tolist())), flag


IMAGES = {
    "disk": lambda: _sersic(32, 32, 6, 1, 20, 0.6, 0.5),
    "bulge": lambda: _sersic(32.3, 31.7, 4, 3, 20),
    "pair": lambda: _sersic(29, 32, 4, 1, 30) + _sersic(37, 33, 3, 1, 25),
    "clumpy": lambda: (
        _sersic(32, 32, 7, 1, 10, 0.8)
        + sum(
            a * np.exp(-((XX - x) ** 2 + (YY - y) ** 2) / 2) for a, x, y in [(40, 27, 30), (30, 36, 28), (20, 37, 36)]
        )
    ),
}


def test_symmetric_source_has_no_asymmetry_and_one_blob_less_than_two():
    one, flag = _values(_noisy(_sersic(31.6, 32.2, 5, 1)))
    two, _ = _values(_noisy(_sersic(28, 32, 4, 1, 60) + _sersic(37, 33, 3, 1, 45)))
    assert flag == 0
    assert abs(one["asymmetry"]) < 0.03
    assert two["asymmetry"] > one["asymmetry"] + 0.15
    assert two["multimode"] > one["multimode"] + 0.3
    assert two["second_peak"] > 0.5 > one["second_peak"]
    assert two["intensity"] > one["intensity"] + 0.3


def test_gini_of_a_uniform_source_is_zero_and_light_in_a_nucleus_lowers_m20():
    flat, _ = _values(_noisy(np.where(np.hypot(XX - 32, YY - 32) < 12, 50.0, 0.0), sigma=0.05))
    exponential, _ = _values(_noisy(_sersic(32, 32, 8, 1, 20)))
    nucleated, _ = _values(_noisy(_sersic(32, 32, 8, 1, 20) + _sersic(32, 32, 1, 1, 400)))
    assert flat["gini"] < 0.05 < 0.4 < exponential["gini"] < nucleated["gini"]
    assert nucleated["m20"] < exponential["m20"] < flat["m20"]
    assert nucleated["concentration"] > exponential["concentration"] > flat["concentration"]


@pytest.mark.parametrize("name", list(IMAGES))
def test_values_agree_with_statmorph_on_the_same_segmentation(name):
    statmorph = pytest.importorskip("statmorph")
    from photutils.segmentation import detect_sources
    from scipy import ndimage as ndi

    from encoders.morphology import _border, _clipped_stats

    image = _noisy(IMAGES[name](), seed=1)
    ours, flag = _values(image)
    # statmorph on the same sky-subtracted image and the same detection segment.
    p = MorphologyParams()
    sky = image - _clipped_stats(_border(image, p.border))[1]
    smooth = ndi.gaussian_filter(sky, p.smooth_sigma, mode="nearest")
    segm = detect_sources(smooth, p.detect_nsigma * _clipped_stats(_border(smooth, p.border))[2], p.npixels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = statmorph.SourceMorphology(sky, segm, segm.data[32, 32], gain=1e4)
    assert flag == 0 and ref.flag == 0
    tolerance = {
        "asymmetry": 0.06,
        "shape_asymmetry": 0.07,  # statmorph takes the sky of the mask from an annulus or a box, we from all sky
        "gini": 0.04,
        "m20": 0.08,
        "concentration": 0.12,
        "smoothness": 0.03,
        "multimode": 0.08,
        "intensity": 0.02,
        "deviation": 0.02,
    }
    for key, tol in tolerance.items():
        assert ours[key] == pytest.approx(getattr(ref, key), abs=tol), key


@pytest.mark.parametrize(
    "stamp",
    [
        np.zeros((3, 64, 64)),
        np.full((64, 64), np.nan),
        np.full((64, 64), 7.0),
        np.random.default_rng(0).normal(0, 1, (64, 64)),  # noise only: nothing to measure, or a flagged speck
        np.zeros((8, 8)),
        np.zeros(5),
    ],
    ids=["zeros", "nan", "constant", "noise", "tiny", "1d"],
)
def test_bad_stamps_give_nan_and_a_flag_without_raising(stamp):
    values, flag = measure(stamp)
    assert values.dtype == np.float32 and values.shape == (len(MORPHOLOGY_FEATURES),)
    assert bool(flag & FLAG_FAILED) == bool(np.isnan(values).all())


def test_all_nan_zero_and_constant_stamps_fail():
    for stamp in (np.zeros((64, 64)), np.full((64, 64), np.nan), np.full((64, 64), 7.0)):
        values, flag = measure(stamp)
        assert flag == FLAG_FAILED and np.isnan(values).all()


def test_some_nan_pixels_are_flagged_and_measured():
    image = _noisy(_sersic(32, 32, 5, 1))
    image[3:6, 50:55] = np.nan
    values, flag = measure(image)
    assert flag & FLAG_BAD_PIXELS and not flag & FLAG_FAILED
    assert np.isfinite(values).all()


def test_batch_sums_bands_and_matches_single_calls():
    cube = np.stack([_noisy(_sersic(32, 32, 5, 1), seed=s) / 3 for s in range(3)])
    values, flags = measure_batch(np.stack([cube, np.zeros_like(cube)]))
    single, flag = measure(cube.sum(axis=0))
    assert values.shape == (2, len(MORPHOLOGY_FEATURES)) and flags.dtype == np.int32
    assert np.allclose(values[0], single) and flags[0] == flag == 0
    assert flags[1] == FLAG_FAILED and np.isnan(values[1]).all()
