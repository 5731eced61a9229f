"""Batch augmentations of normalised stamps for self-supervised training.

All functions take a float tensor ``(N, B, H, W)`` (any number of bands ``B``, values
in [0, 1] after :func:`encoders.normalise.lupton_asinh`), draw one independent set of
parameters per stamp, and take an optional :class:`torch.Generator` so that a seeded
run is exactly reproducible. The choice follows Stein et al. (2021,
``georgestein/ssl-legacysurvey``). The default :class:`GalaxyAugment` leaves out the
transforms that resample pixels (arbitrary rotation, size scaling, PSF blur), so two
nuclei a few pixels apart stay sharp; each can be switched on. The augmentations act on
normalised stamps: brightness and colour changes (reddening) are exact flux scalings in
the linear (faint) regime of the asinh stretch and approximate ones in its cores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from encoders.training.config import AugmentParams, TrainConfig

__all__ = [
    "EXTINCTION_COEFFS",
    "centre_view",
    "GalaxyAugment",
    "band_dropout",
    "colour_jitter",
    "gaussian_noise",
    "per_band_noise",
    "psf_blur",
    "random_affine",
    "random_flip",
    "random_rot90",
    "random_shift",
    "redden",
]

#: ``A_band / E(B-V)`` for a reddening of the stamps: SDSS u,g,r,i,z and DECam g,r,z
#: (Schlafly & Finkbeiner 2011, table 6, R_V = 3.1). Other band names fall back to 2.5.
EXTINCTION_COEFFS = {"u": 4.239, "g": 3.303, "r": 2.285, "i": 1.698, "z": 1.263, "y": 1.088}


def centre_view(stamps: torch.Tensor) -> torch.Tensor:
    """The central half of each stamp, enlarged 2x (bilinear): same shape as the input.

    Two nuclei 1-8 px apart become 3-15 px apart. The exported model can embed this view beside the
    full stamp (``encoders.training.onnx_export``), and training can show it (``TrainConfig.centre_prob``).
    """
    h, w = stamps.shape[-2:]
    crop = stamps[..., h // 4 : h // 4 + h // 2, w // 4 : w // 4 + w // 2]
    return F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False)


def _check_batch(x: torch.Tensor, name: str) -> None:
    if x.ndim != 4:
        raise ValueError(f"{name} expects a batch of shape (N, B, H, W), got {tuple(x.shape)}")


def _device(x: torch.Tensor, generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else x.device


def random_flip(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Flip each stamp left-right and, independently, up-down, each with probability 1/2.

    Distribution: two independent Bernoulli(0.5) draws per stamp. A galaxy's
    appearance carries no preferred handedness on the sky for the classes we look
    for, so mirrored stamps must embed alike.
    """
    _check_batch(x, "random_flip")
    n = x.shape[0]
    flips = torch.rand(2, n, generator=generator, device=_device(x, generator)).to(x.device) < 0.5
    x = torch.where(flips[0].view(n, 1, 1, 1), x.flip(-1), x)
    return torch.where(flips[1].view(n, 1, 1, 1), x.flip(-2), x)


def random_rot90(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Rotate each stamp by ``k * 90`` degrees, ``k`` uniform on {0, 1, 2, 3}.

    Distribution: ``k ~ U{0, 1, 2, 3}`` per stamp (``U{0, 2}`` for non-square
    stamps, which a quarter turn would reshape). Sky orientation is arbitrary;
    quarter turns need no interpolation, so unlike arbitrary-angle rotation they do
    not smooth the pixel-scale structure. With :func:`random_flip` this samples the
    whole dihedral group of the square.
    """
    _check_batch(x, "random_rot90")
    n, square = x.shape[0], x.shape[-1] == x.shape[-2]
    ks = torch.randint(0, 4 if square else 2, (n,), generator=generator, device=_device(x, generator))
    ks = (ks if square else 2 * ks).to(x.device)
    out = x.clone()
    for k in (1, 2, 3):
        idx = torch.nonzero(ks == k).flatten()
        if idx.numel():
            out[idx] = torch.rot90(x[idx], k, dims=(-2, -1))
    return out


def random_shift(x: torch.Tensor, max_shift: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """Translate each stamp by an integer offset, filling the edges by reflection.

    Distribution: ``dy, dx ~ U{-max_shift, ..., max_shift}`` independently per stamp.
    Cutouts are centred on catalogue positions whose error, and the offset between
    a merger's or a pair's light centroid and the catalogue centre, are a few pixels
    (+-4 px = +-1" at 0.262"/px). Reflection padding avoids the artificial black
    borders of zero padding, which the encoder could otherwise use as a shortcut.
    """
    _check_batch(x, "random_shift")
    if max_shift < 0:
        raise ValueError(f"random_shift max_shift must be >= 0, got {max_shift}")
    n, b, h, w = x.shape
    if max_shift == 0:
        return x.clone()
    if max_shift >= min(h, w):
        raise ValueError(f"random_shift max_shift={max_shift} must be smaller than the stamp size {h}x{w}")
    s = max_shift
    offsets = torch.randint(-s, s + 1, (2, n), generator=generator, device=_device(x, generator)).to(x.device)
    padded = F.pad(x, (s, s, s, s), mode="reflect")
    wp = w + 2 * s
    rows = (s - offsets[0]).view(n, 1, 1) + torch.arange(h, device=x.device).view(1, h, 1)
    cols = (s - offsets[1]).view(n, 1, 1) + torch.arange(w, device=x.device).view(1, 1, w)
    flat = (rows * wp + cols).view(n, 1, h * w).expand(n, b, h * w)
    return torch.gather(padded.reshape(n, b, -1), 2, flat).view(n, b, h, w)


def gaussian_noise(
    x: torch.Tensor,
    sigma_range: tuple[float, float] = (0.0, 0.05),
    generator: torch.Generator | None = None,
    clip: bool = True,
) -> torch.Tensor:
    """Add white Gaussian noise of a random level, then clip to [0, 1].

    Distribution: ``sigma ~ U(sigma_range)`` per stamp, then i.i.d. ``N(0, sigma^2)``
    per pixel and band. With the default Lupton stretch (50, Q=8) one flux unit maps
    to ~0.022 in the (linear) faint regime, so sky noise is ~0.03 in g, r and ~0.13
    in z, and the default range adds up to ~2 sky sigma in the blue bands and
    ~0.4 in z: the spread of depth between exposures and fields, which must not
    change what an object is.
    """
    _check_batch(x, "gaussian_noise")
    lo, hi = float(sigma_range[0]), float(sigma_range[1])
    if not 0.0 <= lo <= hi:
        raise ValueError(f"gaussian_noise sigma_range must satisfy 0 <= low <= high, got {sigma_range}")
    dev = _device(x, generator)
    sigma = lo + (hi - lo) * torch.rand(x.shape[0], generator=generator, device=dev)
    noise = torch.randn(x.shape, generator=generator, device=dev, dtype=x.dtype)
    out = x + (sigma.view(-1, 1, 1, 1) * noise).to(x.device, x.dtype)
    return out.clamp_(0.0, 1.0) if clip else out


def per_band_noise(
    x: torch.Tensor, sigma_range: tuple[float, float] = (0.0, 0.05), generator: torch.Generator | None = None
) -> torch.Tensor:
    """Add white Gaussian noise with an independent level in every band, then clip to [0, 1].

    Distribution: ``sigma_b ~ U(sigma_range)`` independently per stamp and band, then
    i.i.d. ``N(0, sigma_b^2)`` per pixel. Survey depth differs from band to band and field to
    field (the synthetic survey's sky noise is ~5x larger in z than in g), so the relative
    noise of the bands must not define an object.
    """
    _check_batch(x, "per_band_noise")
    lo, hi = float(sigma_range[0]), float(sigma_range[1])
    if not 0.0 <= lo <= hi:
        raise ValueError(f"per_band_noise sigma_range must satisfy 0 <= low <= high, got {sigma_range}")
    dev = _device(x, generator)
    n, b = x.shape[:2]
    sigma = lo + (hi - lo) * torch.rand(n, b, 1, 1, generator=generator, device=dev)
    noise = torch.randn(x.shape, generator=generator, device=dev, dtype=x.dtype)
    return (x + (sigma * noise).to(x.device, x.dtype)).clamp_(0.0, 1.0)


def random_affine(
    x: torch.Tensor,
    max_angle: float = 180.0,
    scale_range: tuple[float, float] = (1.0, 1.0),
    max_shift: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Rotate by an arbitrary angle, rescale and jitter-crop each stamp in one bilinear resampling.

    Distribution: angle ``~ U(-max_angle, max_angle)`` degrees; log-uniform scale factor on
    ``scale_range`` (>1 enlarges the galaxy, i.e. a tighter crop); centre offset
    ``dx, dy ~ U(-max_shift, max_shift)`` pixels. Orientation on the sky is arbitrary; angular
    size varies with distance by a factor of a few within a redshift bin (scale ~ 0.8-1.25
    in Stein et al. 2021); catalogue centres are off by ~1 arcsec. One resampling for all
    three keeps the interpolation blur to a single bilinear step; the corners are filled by
    reflection, not zeros, so no artificial edge is introduced.
    """
    _check_batch(x, "random_affine")
    lo, hi = float(scale_range[0]), float(scale_range[1])
    if not 0 < lo <= hi:
        raise ValueError(f"random_affine scale_range must satisfy 0 < low <= high, got {scale_range}")
    n, _, h, w = x.shape
    dev = _device(x, generator)
    u = torch.rand(4, n, generator=generator, device=dev, dtype=torch.float64).to(x.device)
    angle = torch.deg2rad((2 * u[0] - 1) * float(max_angle))
    scale = torch.exp(torch.log(torch.tensor(lo, dtype=torch.float64)) + u[1] * math.log(hi / lo))
    shift = (2 * u[2:] - 1) * float(max_shift)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.zeros(n, 2, 3, dtype=torch.float64, device=x.device)
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = cos, -sin * h / w, sin * w / h, cos
    theta[:, 0, 2], theta[:, 1, 2] = 2 * shift[0] / w, 2 * shift[1] / h
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def psf_blur(
    x: torch.Tensor, sigma_range: tuple[float, float] = (0.0, 1.0), generator: torch.Generator | None = None
) -> torch.Tensor:
    """Convolve each stamp with a circular Gaussian of random width (worse seeing).

    Distribution: ``sigma ~ U(sigma_range)`` pixels per stamp, the same for all bands.
    Seeing varies between exposures (1.0-1.8 arcsec FWHM in SDSS, i.e. sigma of 1.1-1.9 px
    at 0.396 arcsec/px); an extra blur of up to 1 px sigma broadens a 1.1 px PSF to 1.5 px,
    within the survey's range, so a galaxy must embed alike under good and poor seeing.
    """
    _check_batch(x, "psf_blur")
    lo, hi = float(sigma_range[0]), float(sigma_range[1])
    if not 0.0 <= lo <= hi:
        raise ValueError(f"psf_blur sigma_range must satisfy 0 <= low <= high, got {sigma_range}")
    n, b, h, w = x.shape
    sigma = (lo + (hi - lo) * torch.rand(n, generator=generator, device=_device(x, generator))).to(x.device)
    radius = max(1, math.ceil(3 * hi))
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kern = torch.exp(-(t.view(1, -1) ** 2) / (2 * sigma.clamp_min(1e-3).view(-1, 1).to(x.dtype) ** 2))
    kern = kern / kern.sum(dim=1, keepdim=True)  # (n, k); sigma ~ 0 gives a delta
    kern = kern.repeat_interleave(b, dim=0)  # one kernel per (stamp, band) channel
    flat = F.pad(x.reshape(1, n * b, h, w), (radius, radius, radius, radius), mode="reflect")
    flat = F.conv2d(flat, kern.view(n * b, 1, 1, -1), groups=n * b)
    flat = F.conv2d(flat, kern.view(n * b, 1, -1, 1), groups=n * b)
    return flat.view(n, b, h, w)


def redden(
    x: torch.Tensor,
    bands: tuple[str, ...],
    max_ebv: float = 0.1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Dim each band as Galactic dust of a random colour excess would.

    Distribution: ``E(B-V) ~ U(0, max_ebv)`` per stamp; band ``b`` is multiplied by
    ``10 ** (-0.4 * R_b * E(B-V))`` with ``R_b`` from :data:`EXTINCTION_COEFFS`. Away from
    the Galactic plane ``E(B-V)`` is below ~0.1 (Schlegel et al. 1998); foreground dust
    changes colours and brightness but not what the galaxy is.
    """
    _check_batch(x, "redden")
    if len(bands) != x.shape[1]:
        raise ValueError(f"redden got {len(bands)} band names {bands} for stamps with {x.shape[1]} bands")
    if max_ebv < 0:
        raise ValueError(f"redden max_ebv must be >= 0, got {max_ebv}")
    coeffs = torch.tensor([EXTINCTION_COEFFS.get(str(b).lower(), 2.5) for b in bands], dtype=x.dtype)
    ebv = float(max_ebv) * torch.rand(x.shape[0], 1, generator=generator, device=_device(x, generator))
    factor = 10.0 ** (-0.4 * ebv.to(x.device, x.dtype) * coeffs.to(x.device))
    return x * factor.view(x.shape[0], x.shape[1], 1, 1)


def colour_jitter(
    x: torch.Tensor,
    brightness: float = 0.0,
    colour: float = 0.0,
    grey_prob: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Scale each stamp's brightness and each band's gain at random; sometimes replace the bands by their mean.

    Distribution: a brightness factor ``exp(U(-brightness, brightness))`` per stamp, times a gain
    ``exp(U(-colour, colour))`` per stamp and band; with probability ``grey_prob`` every band becomes the
    mean of the bands (a grey image). Values are clipped to [0, 1] as in an 8-bit composite. Galaxy Zoo
    style colour composites differ from one another mostly by brightness and colour, which an encoder
    learns first (its leading components then track colour and flux, not structure); jittering them makes
    two views of one galaxy agree on shape, tidal features and companions instead. Colour is still seen
    (the jitter is smaller than the spread of galaxy colours), only with less weight.
    """
    _check_batch(x, "colour_jitter")
    if brightness < 0 or colour < 0 or not 0.0 <= grey_prob <= 1.0:
        raise ValueError(
            "colour_jitter needs brightness, colour >= 0 and grey_prob in [0, 1], "
            f"got {brightness}, {colour}, {grey_prob}"
        )
    n, b = x.shape[:2]
    dev = _device(x, generator)
    u = torch.rand(n, 1 + b, generator=generator, device=dev).to(x.device, x.dtype)
    gain = torch.exp((2 * u[:, :1] - 1) * brightness + (2 * u[:, 1:] - 1) * colour).view(n, b, 1, 1)
    out = x * gain
    if grey_prob > 0:
        grey = (torch.rand(n, generator=generator, device=dev) < grey_prob).to(x.device).view(n, 1, 1, 1)
        out = torch.where(grey, out.mean(dim=1, keepdim=True).expand_as(out), out)
    return out.clamp_(0.0, 1.0)


def band_dropout(x: torch.Tensor, p: float = 0.1, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero one randomly chosen band of a stamp with probability ``p``.

    Distribution: Bernoulli(``p``) per stamp, then a band uniform over the bands. Stamps with
    a missing or masked band occur in every survey; the encoder should not depend on any
    single band. Stamps with one band are left unchanged.
    """
    _check_batch(x, "band_dropout")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"band_dropout p must be in [0, 1], got {p}")
    n, b = x.shape[:2]
    dev = _device(x, generator)
    drop = torch.rand(n, generator=generator, device=dev) < p
    which = torch.randint(0, b, (n,), generator=generator, device=dev)
    if b < 2:
        return x.clone()
    mask = torch.ones(n, b, dtype=x.dtype, device=dev)
    mask[torch.arange(n, device=dev)[drop], which[drop]] = 0.0
    return x * mask.to(x.device).view(n, b, 1, 1)


@dataclass
class GalaxyAugment(AugmentParams):
    """Compose the augmentations into one batch augmentation, in a physical order.

    Geometry first (shift, affine, flips, quarter turns), then the observation (PSF blur,
    reddening, noise), then band dropout. Each step is skipped when its parameter disables it.
    The parameters and defaults of the optional steps are those of
    :class:`~encoders.training.config.AugmentParams` (``max_shift`` ... ``grey_prob``).

    Parameters
    ----------
    flip : bool
        Apply :func:`random_flip`.
    rotate : bool
        Apply :func:`random_rot90`.
    bands : tuple of str
        Band names (needed by :func:`redden`); default: no reddening coefficients known, 2.5 each.

    Examples
    --------
    >>> import torch
    >>> aug = GalaxyAugment()
    >>> g = torch.Generator().manual_seed(0)
    >>> aug(torch.rand(8, 5, 64, 64), generator=g).shape
    torch.Size([8, 5, 64, 64])
    """

    flip: bool = True
    rotate: bool = True
    bands: tuple[str, ...] | None = None

    @classmethod
    def from_config(cls, config: TrainConfig) -> GalaxyAugment:
        """The augmentation a training config describes (its augmentation fields and bands)."""
        return cls(**config.augment_params(), bands=config.bands)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Return an augmented copy of the batch ``x`` (same shape and dtype)."""
        _check_batch(x, "GalaxyAugment")
        if self.max_shift:
            x = random_shift(x, self.max_shift, generator)
        if self.max_angle or self.crop_jitter or tuple(self.scale_range) != (1.0, 1.0):
            x = random_affine(x, self.max_angle, self.scale_range, self.crop_jitter, generator)
        if self.flip:
            x = random_flip(x, generator)
        if self.rotate:
            x = random_rot90(x, generator)
        if self.blur_sigma[1] > 0:
            x = psf_blur(x, self.blur_sigma, generator)
        if self.brightness > 0 or self.colour > 0 or self.grey_prob > 0:
            x = colour_jitter(x, self.brightness, self.colour, self.grey_prob, generator)
        if self.max_ebv > 0:
            x = redden(x, tuple(self.bands or ("?",) * x.shape[1]), self.max_ebv, generator)
        if self.noise_sigma[1] > 0:
            x = gaussian_noise(x, self.noise_sigma, generator)
        if self.band_noise[1] > 0:
            x = per_band_noise(x, self.band_noise, generator)
        if self.band_drop > 0:
            x = band_dropout(x, self.band_drop, generator)
        return x
