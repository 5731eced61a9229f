"""The k-space renderer against GalSim's own drawImage, the noise model, and the class builders."""

from __future__ import annotations

import galsim
import numpy as np
import pytest

from ingest.synthetic.profiles import BUILDERS, knots, neighbours, psfs_for
from ingest.synthetic.render import PIXSCALE, KSpaceRenderer, Part, add_noise, band_noise

FIVE = np.array([1.0, 2.0, 3.0, 4.0, 5.0])


def reference(profile: galsim.GSObject, psf: galsim.GSObject, size: int) -> np.ndarray:
    """The same scene drawn the standard way: GalSim convolution + pixel, its own FFT sizing."""
    return galsim.Convolve(profile, psf).drawImage(nx=size, ny=size, scale=PIXSCALE).array


@pytest.mark.parametrize("size", [64, 33])
def test_renderer_matches_galsim_drawimage(size):
    bulge = galsim.DeVaucouleurs(half_light_radius=1.2).shear(q=0.7, beta=0.4 * galsim.radians)
    disk = galsim.Exponential(half_light_radius=2.5).shear(q=0.4, beta=1.1 * galsim.radians)
    psfs = [galsim.Kolmogorov(fwhm=f) for f in (1.5, 1.3)]
    parts = [
        Part.single(bulge, 100.0 * FIVE, x=1.0, y=-0.6),
        Part.single(disk, 300.0 * FIVE),
        Part.single(None, 40.0 * FIVE, x=-3.3, y=2.1),
    ]
    cube = KSpaceRenderer(size, "gr").render(parts, psfs)
    for plane, band, psf in zip(cube, (1, 2), psfs):
        star = galsim.DeltaFunction().shift(-3.3, 2.1)
        scene = bulge.shift(1.0, -0.6) * 100.0 + disk * 300.0 + star * 40.0
        expected = reference(scene * FIVE[band], psf, size)
        assert np.max(np.abs(plane - expected)) < 2e-3 * expected.max()
        assert plane.sum() == pytest.approx(expected.sum(), rel=2e-3)


def test_knots_are_projected_like_a_galsim_shear():
    rng = np.random.default_rng(0)
    x, y = rng.normal(0.0, 2.0, 12), rng.normal(0.0, 2.0, 12)
    q, beta = 0.5, 0.7 * galsim.radians
    part = knots(np.random.default_rng(1), x, y, np.ones(12), 0.4, np.zeros(5), 50.0, q, beta)
    weights = part.weights * 50.0
    scene = galsim.Sum([galsim.Gaussian(sigma=0.4).shift(a, b) * w for a, b, w in zip(x, y, weights)])
    psf = galsim.Kolmogorov(fwhm=1.3)
    got = KSpaceRenderer(64, "r").render([part], [psf])[0]
    expected = reference(scene.shear(q=q, beta=beta), psf, 64)
    assert np.max(np.abs(got - expected)) < 2e-3 * expected.max()


def test_noise_matches_the_band_model():
    rng = np.random.default_rng(2)
    noisy = add_noise(np.zeros((2, 128, 128)), "ru", rng, zero_point=26.0)
    for plane, band in zip(noisy, "ru"):
        sky, gain = band_noise(band, 26.0)
        assert abs(plane.mean()) < 0.05 * np.sqrt(sky / gain)
        assert plane.std() == pytest.approx(np.sqrt(sky / gain), rel=0.03)
    assert noisy.dtype == np.float32


def test_band_noise_puts_the_sdss_depth_at_five_sigma():
    for band, depth in {"u": 22.0, "r": 22.2, "z": 20.5}.items():
        sky, gain = band_noise(band, 22.5)
        sigma_psf = 1.4 / 2.3548 / PIXSCALE
        noise = np.sqrt(sky / gain) * np.sqrt(4 * np.pi * sigma_psf**2)
        assert 10 ** (-0.4 * (depth - 22.5)) / noise == pytest.approx(5.0)
    # The zero point only rescales the units.
    assert band_noise("r", 26.0)[0] == pytest.approx(band_noise("r", 22.5)[0] * 10**1.4)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_builders_conserve_the_requested_r_flux_and_stay_non_negative(name):
    renderer = KSpaceRenderer(64, "ugriz")
    for k in range(6):
        rng = np.random.default_rng(k)
        z = 0.0 if name == "point_source" and k % 2 else 0.08 + 0.02 * k
        parts = BUILDERS[name](rng, 1000.0, 16.0, z)
        assert sum(p.flux[2] for p in parts) == pytest.approx(1000.0)
        for p in parts:
            assert p.weights.sum() == pytest.approx(1.0)
        psfs, fwhm = psfs_for(rng, "ugriz")
        assert 1.05 <= fwhm <= 1.8
        cube = renderer.render(parts, psfs)
        # Dust lanes are negative parts, but never deeper than the disc they sit in.
        assert cube.min() > -1e-3 * cube.max()


def test_neighbours_avoid_the_centre():
    for k in range(50):
        for part in neighbours(np.random.default_rng(k), half_width=12.7, zero_point=26.0):
            assert np.hypot(part.x[0], part.y[0]) >= 3.0
            assert np.all(np.abs([part.x[0], part.y[0]]) <= 12.7)
