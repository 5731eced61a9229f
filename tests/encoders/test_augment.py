"""Batch augmentations: shape/dtype, determinism with a generator, and what each one does."""

from __future__ import annotations

import pytest
import torch

from encoders.augment import GalaxyAugment, gaussian_noise, random_flip, random_rot90, random_shift


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
