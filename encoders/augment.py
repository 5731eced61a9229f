"""Batch augmentations of normalised stamps for self-supervised training.

All functions take a float tensor ``(N, B, H, W)`` (any number of bands ``B``, values
in [0, 1] after :func:`encoders.normalise.lupton_asinh`), draw one independent set of
parameters per stamp, and take an optional :class:`torch.Generator` so that a seeded
run is exactly reproducible. The choice follows Stein et al. (2021,
``georgestein/ssl-legacysurvey``) minus the transforms that would blur small-scale
structure: no arbitrary-angle rotation or resampling, so two nuclei a few pixels
apart stay sharp.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["GalaxyAugment", "gaussian_noise", "random_flip", "random_rot90", "random_shift"]


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


@dataclass
class GalaxyAugment:
    """Compose flips, quarter turns, shifts and noise into one batch augmentation.

    Parameters
    ----------
    flip : bool
        Apply :func:`random_flip`.
    rotate : bool
        Apply :func:`random_rot90`.
    max_shift : int
        Largest shift in pixels for :func:`random_shift` (0 disables it).
    noise_sigma : tuple of float
        ``(low, high)`` of the noise level for :func:`gaussian_noise`
        (``(0, 0)`` disables it).

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
    max_shift: int = 4
    noise_sigma: tuple[float, float] = (0.0, 0.05)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Return an augmented copy of the batch ``x`` (same shape and dtype)."""
        _check_batch(x, "GalaxyAugment")
        if self.max_shift:
            x = random_shift(x, self.max_shift, generator)
        if self.flip:
            x = random_flip(x, generator)
        if self.rotate:
            x = random_rot90(x, generator)
        if self.noise_sigma[1] > 0:
            x = gaussian_noise(x, self.noise_sigma, generator)
        return x
