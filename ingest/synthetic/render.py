"""Rendering for the synthetic survey: GalSim profiles -> PSF-convolved, noisy multi-band stamps.

Every object is a list of :class:`Part` s: one GalSim surface-brightness profile (or a point
source) placed at one or more positions, with a flux per band. GalSim evaluates each
profile's Fourier transform on a fixed k-space grid (:meth:`GalSim.GSObject.drawKImage`);
placements become phase factors, bands become linear combinations of the same k-images,
and each band is multiplied by its own PSF and the pixel response before one inverse FFT.
This is the computation ``GalSim.Convolve(...).drawImage()`` performs, with the profile
transforms shared across the five bands and the FFT size fixed at twice the stamp, which
makes a five-band object cost a few milliseconds instead of tens.

Flux units: the stamps are linear, sky-subtracted fluxes with an AB zero point
``zero_point`` (mag = zero_point - 2.5 log10(flux)); 22.5 gives SDSS nanomaggies.
"""

from __future__ import annotations

from dataclasses import dataclass

import galsim
import numpy as np

__all__ = [
    "BAND_DEPTH",
    "BAND_SKY_MU",
    "BAND_WAVELENGTH_NM",
    "GSPARAMS",
    "KSpaceRenderer",
    "PIXSCALE",
    "Part",
    "add_noise",
    "band_noise",
]

PIXSCALE = 0.396
"""SDSS imaging pixel scale, arcsec/pixel."""

BAND_WAVELENGTH_NM = {"u": 354.3, "g": 477.0, "r": 623.1, "i": 762.5, "z": 913.4}
"""Effective wavelengths of the SDSS filters (Fukugita et al. 1996), used for PSF and dust scaling."""

BAND_SKY_MU = {"u": 22.0, "g": 21.8, "r": 20.8, "i": 20.2, "z": 18.9}
"""Median dark-sky surface brightness at Apache Point, AB mag/arcsec^2 (SDSS DR7 documentation)."""

BAND_DEPTH = {"u": 22.0, "g": 22.2, "r": 22.2, "i": 21.3, "z": 20.5}
"""SDSS 95%-completeness point-source depths (Abazajian et al. 2009), used as 5-sigma limits."""

GSPARAMS = galsim.GSParams(folding_threshold=1e-2, maxk_threshold=2e-3)
"""Accuracy of GalSim's k-space tables: 1% folding, 0.2% k truncation (well below the sky noise)."""

_REFERENCE_SEEING = 1.4  # arcsec FWHM at which BAND_DEPTH holds


@dataclass(frozen=True)
class Part:
    """One profile placed at one or more positions, with one spectral energy distribution.

    Attributes
    ----------
    profile : galsim.GSObject or None
        Unit-flux surface-brightness profile centred on the origin (sheared and rotated as
        wanted); ``None`` is a point source (rendered as the PSF).
    x, y : numpy.ndarray
        Positions of the copies, arcsec from the stamp centre, shape ``(m,)``.
    weights : numpy.ndarray
        Fraction of the part's flux in each copy, shape ``(m,)``, summing to 1.
    flux : numpy.ndarray
        Total flux of the part in each of the five SDSS bands u, g, r, i, z, shape ``(5,)``, in
        the survey's flux units. Negative fluxes are allowed (a dust lane is a negative part).
    """

    profile: galsim.GSObject | None
    x: np.ndarray
    y: np.ndarray
    weights: np.ndarray
    flux: np.ndarray

    @classmethod
    def single(cls, profile: galsim.GSObject | None, flux: np.ndarray, x: float = 0.0, y: float = 0.0) -> Part:
        """A part with one copy at ``(x, y)`` arcsec with band fluxes ``flux`` (shape ``(5,)``)."""
        return cls(profile, np.array([x], float), np.array([y], float), np.ones(1), np.asarray(flux, float))

    def scaled(self, factor: float) -> Part:
        """The same part with every flux multiplied by ``factor``."""
        return Part(self.profile, self.x, self.y, self.weights, self.flux * factor)

    def shifted(self, dx: float, dy: float) -> Part:
        """The same part moved by ``(dx, dy)`` arcsec."""
        return Part(self.profile, self.x + dx, self.y + dy, self.weights, self.flux)


def _complex_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for complex matrices with NumPy's own einsum loops, not BLAS.

    BLAS would multithread these small products (and its results may depend on the thread
    count), and with one worker process per core the threads contend for the cores.
    """
    ar, ai, br, bi = a.real.copy(), a.imag.copy(), b.real.copy(), b.imag.copy()
    real = np.einsum("ym,mx->yx", ar, br) - np.einsum("ym,mx->yx", ai, bi)
    imag = np.einsum("ym,mx->yx", ar, bi) + np.einsum("ym,mx->yx", ai, br)
    return real + 1j * imag


class KSpaceRenderer:
    """Draw lists of :class:`Part` s into ``(n_bands, size, size)`` noiseless stamps.

    Parameters
    ----------
    size : int
        Stamp side in pixels.
    bands : str
        Bands to draw, a subset of ``"ugriz"`` in any order.
    pixscale : float, optional
        Arcsec per pixel.

    Notes
    -----
    The k-space grid covers a real-space box of twice the stamp side, so light from
    sources up to half a stamp outside the edge is not wrapped back into it, and extends to
    the pixel Nyquist frequency ``pi / pixscale``. The pixel response (a box of one pixel) is
    applied in k-space, as ``galsim.drawImage(method="auto")`` does. Objects are centred on
    the stamp's true centre (between the two central pixels for even sizes), as GalSim does.
    """

    def __init__(self, size: int, bands: str, pixscale: float = PIXSCALE) -> None:
        self.size, self.pixscale = int(size), float(pixscale)
        self.band_index = np.array(["ugriz".index(b) for b in bands])
        self.n = 2 * self.size
        self.dk = 2.0 * np.pi / (self.n * self.pixscale)
        self._ky = (np.arange(self.n) - self.n // 2) * self.dk
        self._kx = np.arange(self.n // 2 + 1) * self.dk
        half = 0.5 * self.pixscale if self.size % 2 == 0 else 0.0
        pixel = np.outer(
            np.sinc(self._ky * self.pixscale / (2 * np.pi)), np.sinc(self._kx * self.pixscale / (2 * np.pi))
        )
        # Phase that puts the origin on the stamp's true centre rather than on a pixel centre.
        self._pixel = pixel * np.exp(1j * half * (self._ky[:, None] + self._kx[None, :]))

    def kimage(self, profile: galsim.GSObject) -> np.ndarray:
        """The Fourier transform of ``profile`` on the renderer's grid, shape ``(2 size, size + 1)``."""
        image = galsim.ImageCD(galsim.BoundsI(0, self.n // 2, -self.n // 2, self.n // 2 - 1), scale=self.dk)
        profile.drawKImage(image=image, recenter=False)
        return image.array

    def render(self, parts: list[Part], psfs: list[galsim.GSObject]) -> np.ndarray:
        """Draw ``parts`` convolved with one PSF per band and integrated over pixels.

        Parameters
        ----------
        parts : list of Part
            What to draw.
        psfs : list of galsim.GSObject
            One unit-flux PSF per rendered band, in the order of ``bands``; profiles with
            analytic Fourier transforms (Kolmogorov, Gaussian) keep this fast.

        Returns
        -------
        numpy.ndarray
            float64 array ``(n_bands, size, size)``: noiseless flux per pixel.
        """
        n_bands = len(self.band_index)
        if len(psfs) != n_bands:
            raise ValueError(f"psfs must hold one PSF per band ({n_bands}), got {len(psfs)}")
        total = np.zeros((n_bands, self.n, self.n // 2 + 1), complex)
        for part in parts:
            # Separable phases: sum_j w_j exp(-i(kx x_j + ky y_j)) = A diag(w) B.
            a = np.exp(-1j * np.outer(self._ky, part.y))
            b = np.exp(-1j * np.outer(part.x, self._kx))
            pattern = (
                part.weights[0] * np.outer(a[:, 0], b[0])
                if len(part.weights) == 1
                else _complex_matmul(a * part.weights[None, :], b)
            )
            if part.profile is not None:
                pattern *= self.kimage(part.profile)
            total += part.flux[self.band_index][:, None, None] * pattern[None]
        for i, psf in enumerate(psfs):
            total[i] *= self.kimage(psf)
        total *= self._pixel[None]
        real = np.fft.irfft2(np.fft.ifftshift(total, axes=1), s=(self.n, self.n), axes=(1, 2))
        real = np.fft.fftshift(real, axes=(1, 2))
        lo = self.n // 2 - self.size // 2
        return real[:, lo : lo + self.size, lo : lo + self.size]


def band_noise(band: str, zero_point: float, pixscale: float = PIXSCALE) -> tuple[float, float]:
    """Sky level per pixel and gain (detected electrons per flux unit) of one band.

    The sky level follows :data:`BAND_SKY_MU`. The gain is set so that, at the reference
    seeing of 1.4", a point source at :data:`BAND_DEPTH` has S/N = 5 against the sky's
    Poisson noise (effective PSF area ``4 pi sigma^2``), i.e. the stamps are as deep as SDSS.

    Parameters
    ----------
    band : str
        One of ``"ugriz"``.
    zero_point : float
        AB zero point of the flux units.
    pixscale : float, optional
        Arcsec per pixel.

    Returns
    -------
    (sky, gain) : tuple of float
        Sky flux per pixel and electrons per flux unit.
    """
    unit = 10.0 ** (-0.4 * (zero_point - 22.5))  # nanomaggies per flux unit
    sky = 10.0 ** (-0.4 * (BAND_SKY_MU[band] - 22.5)) * pixscale**2 / unit
    sigma_psf = _REFERENCE_SEEING / 2.3548 / pixscale
    limit = 10.0 ** (-0.4 * (BAND_DEPTH[band] - 22.5)) / unit
    sigma_pixel = limit / (5.0 * np.sqrt(4.0 * np.pi * sigma_psf**2))
    return sky, sky / sigma_pixel**2


def add_noise(
    cube: np.ndarray, bands: str, rng: np.random.Generator, zero_point: float, sky_scale: float = 1.0
) -> np.ndarray:
    """Add sky and source Poisson noise to a noiseless cube and subtract the sky.

    Each pixel becomes ``Poisson(gain * (model + sky)) / gain - sky`` with the per-band sky
    and gain of :func:`band_noise` (the sky multiplied by ``sky_scale``, which models moon and
    airmass variation between fields).

    Parameters
    ----------
    cube : numpy.ndarray
        Noiseless flux, ``(n_bands, H, W)``.
    bands : str
        Band of each plane.
    rng : numpy.random.Generator
        Source of the Poisson draws.
    zero_point : float
        AB zero point of the flux units.
    sky_scale : float, optional
        Multiplier of the nominal sky level.

    Returns
    -------
    numpy.ndarray
        float32 sky-subtracted noisy cube of the same shape.
    """
    out = np.empty(cube.shape, np.float32)
    for i, band in enumerate(bands):
        sky, gain = band_noise(band, zero_point)
        sky *= sky_scale
        # FFT ringing leaves tiny negative model values; the expected count cannot be negative.
        expected = np.clip(cube[i] + sky, 0.0, None) * gain
        out[i] = rng.poisson(expected) / gain - sky
    return out
