"""``encoders.fit``: resample against independent area averages, crop and bin, metadata and errors."""

from __future__ import annotations

import numpy as np
import pytest

from encoders.fit import DEFAULT_FIT_FRACTION, FIT_MODES, Fit, area_weights


def _supersampled(x: np.ndarray, factor: int, start: int, length: int, size: int) -> np.ndarray:
    """Exact area average by brute force: split every pixel into ``factor x factor`` copies, crop, block-mean."""
    fine = np.repeat(np.repeat(x.astype(np.float64), factor, axis=-2), factor, axis=-1)
    region = fine[..., start : start + length, start : start + length]
    k = length // size
    return region.reshape(*x.shape[:-2], size, k, size, k).mean(axis=(-3, -1))


def test_resample_of_the_whole_image_by_an_integer_factor_is_the_block_mean() -> None:
    x = np.random.default_rng(0).normal(size=(3, 96, 96)).astype(np.float32)
    block = x.reshape(3, 16, 6, 16, 6).mean(axis=(2, 4))
    np.testing.assert_allclose(Fit("resample", 1.0).apply(x, 16), block, rtol=0, atol=1e-5)
    assert Fit("resample", 1.0).apply(x, 16).dtype == np.float32


@pytest.mark.parametrize(
    ("side", "fraction", "size", "factor"),
    [(10, 1.0, 3, 3), (21, 0.5, 3, 4), (106, 0.5, 16, 16), (7, 1.0, 5, 5)],
)
def test_resample_matches_a_supersampled_area_average(side: int, fraction: float, size: int, factor: int) -> None:
    # Non-integer factors (106 px at 0.5 onto 16: 3.3125, as 424 onto 64) and a crop starting inside a pixel.
    x = np.random.default_rng(side).uniform(0, 100, size=(2, side, side)).astype(np.float32)
    length = round(fraction * side * factor)
    start = (side * factor - length) // 2
    assert (side * factor - length) % 2 == 0 and length % size == 0  # the reference's grid is exact
    ref = _supersampled(x, factor, start, length, size)
    np.testing.assert_allclose(Fit("resample", fraction).apply(x, size), ref, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(("shape", "fraction", "size"), [((3, 424, 424), 0.5, 64), ((1, 9, 13), 0.37, 20)])
def test_a_constant_image_stays_constant(shape: tuple[int, ...], fraction: float, size: int) -> None:
    out = Fit("resample", fraction).apply(np.full(shape, 7.25, np.float32), size)
    assert out.shape == (shape[0], size, size)
    np.testing.assert_allclose(out, 7.25, rtol=1e-6)


def test_mean_flux_per_pixel_is_conserved() -> None:
    x = np.random.default_rng(1).exponential(5.0, size=(3, 424, 424)).astype(np.float32)
    out = Fit("resample").apply(x, 64)  # the central 212 px, 3.3125 input pixels per output pixel
    np.testing.assert_allclose(out.mean(axis=(1, 2)), x[:, 106:318, 106:318].mean(axis=(1, 2)), rtol=1e-5)


def test_non_square_images_give_their_central_square() -> None:
    x = np.random.default_rng(2).normal(size=(2, 10, 20)).astype(np.float32)
    np.testing.assert_allclose(Fit("resample", 1.0).apply(x, 10), x[:, :, 5:15], atol=1e-6)
    tall = np.ascontiguousarray(x.transpose(0, 2, 1))
    np.testing.assert_allclose(Fit("resample", 1.0).apply(tall, 10), tall[:, 5:15, :], atol=1e-6)


def test_a_region_smaller_than_the_model_is_enlarged() -> None:
    x = np.arange(4, dtype=np.float32).reshape(1, 2, 2)
    np.testing.assert_array_equal(Fit("resample", 1.0).apply(x, 4), np.repeat(np.repeat(x, 2, 1), 2, 2))


def test_leading_axes_and_bands_are_independent() -> None:
    x = np.random.default_rng(3).normal(size=(4, 3, 50, 50)).astype(np.float32)
    fit = Fit("resample", 0.6)
    stacked = fit.apply(x, 8)
    assert stacked.shape == (4, 3, 8, 8)
    np.testing.assert_allclose(stacked[2, 1], fit.apply(x[2, 1:2], 8)[0], atol=1e-6)


def test_non_finite_pixels_are_left_out_of_the_average() -> None:
    x = np.ones((1, 12, 12), np.float32)
    x[0, 0, 0] = np.nan
    x[0, 1, 1] = 4.0
    out = Fit("resample", 1.0).apply(x, 4)  # 3x3 blocks
    assert np.isfinite(out).all()
    assert out[0, 0, 0] == pytest.approx((7 * 1.0 + 4.0) / 8)
    np.testing.assert_allclose(out[0].ravel()[1:], 1.0)
    x[0, :3, :3] = np.nan
    assert np.isnan(Fit("resample", 1.0).apply(x, 4)[0, 0, 0])


def test_area_weights_rows_sum_to_one() -> None:
    w = area_weights(424, 105.7, 212.6, 64)
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    assert (w >= 0).all()


def test_crop_and_bin() -> None:
    x = np.random.default_rng(4).normal(size=(2, 12, 12)).astype(np.float32)
    np.testing.assert_array_equal(Fit("crop").apply(x, 4), x[:, 4:8, 4:8])
    np.testing.assert_allclose(Fit("bin").apply(x, 4), x.reshape(2, 4, 3, 4, 3).mean(axis=(2, 4)), atol=1e-6)
    assert Fit("bin").apply(x, 5) is x  # not a whole multiple: left for the shape check to refuse
    assert Fit("crop").apply(x, 20) is x
    assert Fit("none").apply(x, 4) is x


def test_metadata_round_trip_and_older_models() -> None:
    fit = Fit("resample", 0.4)
    assert fit.to_metadata() == {"fit": "resample", "fit_fraction": "0.4"}
    assert Fit.from_metadata(fit.to_metadata()) == fit
    assert Fit.from_metadata({"bands": "g,r,z"}) == Fit("none", DEFAULT_FIT_FRACTION)
    assert DEFAULT_FIT_FRACTION == 0.5 and FIT_MODES == ("none", "crop", "bin", "resample")


@pytest.mark.parametrize(
    ("args", "named"),
    [(("zoom",), "'zoom'"), (("resample", 0.0), "0.0"), (("resample", 1.5), "1.5"), (("resample", "half"), "'half'")],
)
def test_bad_fits_are_refused_naming_the_value(args: tuple, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        Fit(*args)
    with pytest.raises(ValueError, match="size"):
        Fit("resample").apply(np.ones((1, 4, 4), np.float32), 0)
