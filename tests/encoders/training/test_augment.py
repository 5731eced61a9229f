"""Batch augmentations: shape/dtype, determinism with a generator, and what each one does."""

from __future__ import annotations

import math

import pytest
import torch

from encoders.training.augment import (
    EXTINCTION_COEFFS,
    GalaxyAugment,
    band_dropout,
    gaussian_noise,
    per_band_noise,
    psf_blur,
    random_affine,
    random_flip,
    random_rot90,
    random_shift,
    redden,
)


def _batch(n: int = 6, b: int = 5, h: int = 32, w: int = 32) -> torch.Tensor:
    return torch.rand(n, b, h, w, generator=torch.Generator().manual_seed(123))


@pytest.mark.parametrize("bands", [1, 3, 5])
def test_shape_and_dtype_preserved(bands: int) -> None:
    x = _batch(b=bands)
    out = GalaxyAugment()(x, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert not torch.equal(out, x)


def test_deterministic_with_a_seeded_generator() -> None:
    x = _batch()
    aug = GalaxyAugment()
    first = aug(x, generator=torch.Generator().manual_seed(7))
    again = aug(x, generator=torch.Generator().manual_seed(7))
    other = aug(x, generator=torch.Generator().manual_seed(8))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


@pytest.mark.parametrize("fn", [random_flip, random_rot90])
def test_flips_and_rotations_only_permute_pixels(fn) -> None:
    x = _batch(n=32)
    out = fn(x, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(out.flatten(1).sort(dim=1).values, x.flatten(1).sort(dim=1).values)
    changed = (out != x).flatten(1).any(dim=1)
    assert 0 < changed.sum() < len(x)  # some stamps transformed, some left as they were


def test_rot90_on_rectangular_stamps_uses_half_turns() -> None:
    x = _batch(n=16, h=8, w=12)
    out = random_rot90(x, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    for a, b in zip(out, x):
        assert torch.equal(a, b) or torch.equal(a, torch.rot90(b, 2, dims=(-2, -1)))


def test_shift_moves_a_point_source_by_at_most_max_shift() -> None:
    x = torch.zeros(40, 1, 32, 32)
    x[:, 0, 16, 16] = 1.0
    out = random_shift(x, max_shift=4, generator=torch.Generator().manual_seed(0))
    offsets = set()
    for stamp in out[:, 0]:
        ys, xs = torch.nonzero(stamp == 1.0, as_tuple=True)
        assert len(ys) == 1  # moved, not duplicated or lost (reflection only fills the edges)
        dy, dx = int(ys[0]) - 16, int(xs[0]) - 16
        assert abs(dy) <= 4 and abs(dx) <= 4
        offsets.add((dy, dx))
    assert len(offsets) > 10
    assert torch.equal(random_shift(x, max_shift=0), x)
    with pytest.raises(ValueError, match="max_shift must be >= 0"):
        random_shift(x, max_shift=-1)


def test_noise_level_is_drawn_from_the_range() -> None:
    x = torch.full((64, 1, 32, 32), 0.5)
    out = gaussian_noise(x, (0.01, 0.04), generator=torch.Generator().manual_seed(0))
    sigmas = (out - x).flatten(1).std(dim=1)
    assert 0.008 < sigmas.min() and sigmas.max() < 0.045
    assert sigmas.max() - sigmas.min() > 0.01
    clipped = gaussian_noise(torch.zeros(2, 1, 8, 8), (0.5, 0.5), generator=torch.Generator().manual_seed(0))
    assert clipped.min() == 0.0
    assert torch.equal(gaussian_noise(x, (0.0, 0.0)), x)
    with pytest.raises(ValueError, match="sigma_range"):
        gaussian_noise(x, (0.2, 0.1))


def test_disabled_augment_is_identity_and_input_checked() -> None:
    x = _batch()
    assert torch.equal(GalaxyAugment(flip=False, rotate=False, max_shift=0, noise_sigma=(0, 0))(x), x)
    with pytest.raises(ValueError, match=r"\(N, B, H, W\)"):
        GalaxyAugment()(x[0])


def _point(n: int = 16, b: int = 3, size: int = 33, dy: int = 0, dx: int = 0) -> torch.Tensor:
    x = torch.zeros(n, b, size, size)
    x[:, :, size // 2 + dy, size // 2 + dx] = 1.0
    return x


def _moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Centroid (y, x) and variance of each stamp's first band about the stamp centre."""
    img = x[:, 0]
    size = img.shape[-1]
    yy, xx = torch.meshgrid(torch.arange(size, dtype=img.dtype), torch.arange(size, dtype=img.dtype), indexing="ij")
    total = img.sum(dim=(-2, -1))
    cy, cx = (img * yy).sum(dim=(-2, -1)) / total, (img * xx).sum(dim=(-2, -1)) / total
    var = (img * ((yy - cy.view(-1, 1, 1)) ** 2)).sum(dim=(-2, -1)) / total
    return cy, cx, var


def test_psf_blur_has_the_drawn_width_and_keeps_flux() -> None:
    x = _point()
    out = psf_blur(x, (1.5, 1.5), generator=torch.Generator().manual_seed(0))
    _, _, var = _moments(out)
    torch.testing.assert_close(var, torch.full_like(var, 1.5**2), atol=0.05, rtol=0)
    torch.testing.assert_close(out.sum(dim=(-2, -1)), x.sum(dim=(-2, -1)))
    torch.testing.assert_close(psf_blur(x, (0.0, 0.0)), x)
    widths = _moments(psf_blur(x, (0.5, 2.0), generator=torch.Generator().manual_seed(1)))[2].sqrt()
    assert widths.min() > 0.45 and widths.max() < 2.05 and widths.max() - widths.min() > 0.5


def test_random_affine_rotates_about_the_centre_and_scales() -> None:
    x = _point(n=32, dx=8)
    out = random_affine(x, max_angle=180.0, generator=torch.Generator().manual_seed(0))
    cy, cx, _ = _moments(out)
    radius = torch.hypot(cy - 16, cx - 16)
    torch.testing.assert_close(radius, torch.full_like(radius, 8.0), atol=0.3, rtol=0)
    angles = torch.atan2(cy - 16, cx - 16)
    assert angles.max() - angles.min() > 3.0  # arbitrary angles, not quarter turns only
    scaled = _moments(random_affine(_point(n=4, dx=4), 0.0, (2.0, 2.0), generator=torch.Generator()))[1]
    torch.testing.assert_close(scaled, torch.full_like(scaled, 24.0), atol=0.3, rtol=0)
    torch.testing.assert_close(random_affine(x, 0.0), x, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="scale_range"):
        random_affine(x, scale_range=(0.0, 1.0))


def test_redden_follows_the_extinction_law() -> None:
    x = torch.ones(64, 5, 4, 4)
    out = redden(x, tuple("ugriz"), max_ebv=0.2, generator=torch.Generator().manual_seed(0))
    mags = -2.5 * torch.log10(out[:, :, 0, 0])  # A_b = R_b E(B-V)
    ebv = mags[:, 2] / EXTINCTION_COEFFS["r"]
    for i, band in enumerate("ugriz"):
        torch.testing.assert_close(mags[:, i], EXTINCTION_COEFFS[band] * ebv, rtol=1e-4, atol=1e-5)
    assert ebv.min() >= 0 and ebv.max() <= 0.2 and ebv.max() - ebv.min() > 0.1
    with pytest.raises(ValueError, match="3 band names"):
        redden(x, ("g", "r", "z"))


def test_per_band_noise_and_band_dropout() -> None:
    x = torch.full((32, 4, 32, 32), 0.5)
    out = per_band_noise(x, (0.01, 0.05), generator=torch.Generator().manual_seed(0))
    sigma = (out - x).std(dim=(-2, -1))
    assert sigma.min() > 0.008 and sigma.max() < 0.055
    assert (sigma.max(dim=1).values - sigma.min(dim=1).values).mean() > 0.01  # bands differ within a stamp
    dropped = band_dropout(x, p=1.0, generator=torch.Generator().manual_seed(0))
    zero_bands = (dropped.flatten(2).amax(dim=2) == 0).sum(dim=1)
    assert torch.all(zero_bands == 1)
    assert torch.equal(band_dropout(x, p=0.0), x)
    assert torch.equal(band_dropout(x[:, :1], p=1.0), x[:, :1])


@pytest.mark.parametrize("bands", [1, 3, 5])
def test_full_augmentation_any_band_count(bands: int) -> None:
    aug = GalaxyAugment(
        max_angle=180, scale_range=(0.8, 1.25), crop_jitter=2, blur_sigma=(0, 1), band_noise=(0, 0.03),
        max_ebv=0.1, bands=tuple("ugriz"[:bands]), band_drop=0.2,
    )  # fmt: skip
    x = _batch(b=bands)
    a = aug(x, generator=torch.Generator().manual_seed(3))
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, aug(x, generator=torch.Generator().manual_seed(3)))


def test_colour_jitter_scales_bands_within_the_ranges_and_greys() -> None:
    from encoders.training.augment import colour_jitter

    x = torch.full((400, 3, 4, 4), 0.2)
    g = torch.Generator().manual_seed(0)
    out = colour_jitter(x, brightness=0.5, colour=0.2, generator=g)
    ratio = out[:, :, 0, 0] / 0.2
    assert ratio.min() >= math.exp(-0.7) - 1e-5 and ratio.max() <= math.exp(0.7) + 1e-5
    assert ratio.log().std() > 0.2  # drawn, not constant
    per_band = (ratio / ratio.mean(dim=1, keepdim=True)).log()
    assert per_band.abs().max() <= 0.4 + 1e-5 and per_band.std() > 0.05  # the colour part differs by band
    assert torch.equal(out[:, :, 1:, :], out[:, :, :1, :].expand(-1, -1, 3, -1))  # a gain, not a pattern
    grey = colour_jitter(torch.rand(200, 3, 4, 4), grey_prob=1.0, generator=g)
    assert torch.allclose(grey[:, 0], grey[:, 1]) and torch.allclose(grey[:, 1], grey[:, 2])
    assert colour_jitter(torch.full((2, 3, 2, 2), 0.9), brightness=3.0, generator=g).max() <= 1.0
    assert torch.equal(colour_jitter(x, generator=g), x)
    with pytest.raises(ValueError, match="grey_prob"):
        colour_jitter(x, grey_prob=1.5)
