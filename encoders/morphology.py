"""Non-parametric galaxy morphology of one stamp: CAS, Gini-M20, MID, shape asymmetry and a second peak.

The statistics follow the definitions of statmorph (Rodriguez-Gomez et al. 2019, MNRAS 483, 4140), the
package of record for them, on a segmentation of the band-summed stamp made with photutils:

* ``asymmetry`` (Conselice 2000; Lotz et al. 2004 eq. 10): ``sum|I - I_180| / sum|I|`` inside
  ``petro_extent_cas`` Petrosian radii, minimised over the rotation centre, less the noise term;
* ``shape_asymmetry`` (Pawlik et al. 2016): the same for the binary mask of the source;
* ``gini`` and ``m20`` (Lotz et al. 2004) on the Petrosian-threshold (Gini) segment;
* ``concentration`` ``5 log10(r80 / r20)`` and ``smoothness`` (Lotz et al. 2004 eq. 11);
* ``multimode``, ``intensity`` and ``deviation`` (Freeman et al. 2013; Peth et al. 2016), the merger
  indicators, on the MID segment;
* ``second_peak``: peak of the second-brightest local maximum of the slightly smoothed source over the
  brightest one (0 with one maximum), a double-nucleus measure.

statmorph itself is not called: it spends its time in continuous optimisers (the asymmetry centre by
Nelder-Mead over interpolated rotations, Petrosian radii by root finding over exact aperture photometry,
basin hopping for M) and fits Sérsic profiles it cannot skip, which makes it far too slow to run inside
ingestion (docs/BENCHMARKS.md). Here the asymmetry centre is searched on the half-pixel grid, where
a 180° rotation is an exact index flip; radii come from cumulative radial profiles; M from a brute-force
quantile scan. The tests compare every value with statmorph's on the same images.

Measurement never raises on a bad stamp: values are NaN and :data:`FLAG_FAILED` is set.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = [
    "MORPHOLOGY_FEATURES",
    "FLAG_FAILED",
    "FLAG_TRUNCATED",
    "FLAG_BAD_PIXELS",
    "MorphologyParams",
    "measure",
    "measure_batch",
]

#: Column names of the measured statistics, in the order :func:`measure` returns them (the ``objects`` table
#: stores each in a ``morph_*`` column of that name).
MORPHOLOGY_FEATURES = (
    "morph_asymmetry",
    "morph_shape_asymmetry",
    "morph_gini",
    "morph_m20",
    "morph_concentration",
    "morph_smoothness",
    "morph_multimode",
    "morph_intensity",
    "morph_deviation",
    "morph_second_peak",
)

FLAG_FAILED = 1  # nothing measured: no finite pixels, no source, non-positive flux; every value NaN
FLAG_TRUNCATED = 2  # the source touches the stamp edge or its Petrosian radius is not reached: values biased
FLAG_BAD_PIXELS = 4  # some pixels were non-finite and were replaced by the sky


@dataclass(frozen=True)
class MorphologyParams:
    """Parameters of :func:`measure`; the defaults are statmorph's (and the papers').

    Attributes
    ----------
    border : int
        Width in pixels of the stamp border the sky is estimated from (sigma-clipped median and std).
    smooth_sigma : float
        Gaussian sigma (pixels) of the smoothing before detection and peak finding.
    detect_nsigma : float
        Detection threshold in units of the smoothed sky's noise.
    npixels : int
        Minimum connected pixels of a detected segment.
    eta : float
        Petrosian ratio defining the Petrosian radius.
    petro_extent_cas : float
        Asymmetry, concentration and smoothness are measured inside this many Petrosian radii.
    petro_fraction_cas : float
        Smoothness: boxcar size and inner radius of the annulus, in Petrosian radii.
    petro_fraction_gini : float
        Gaussian smoothing of the Gini segment, in Petrosian radii.
    sigma_mid : float
        Gaussian smoothing (pixels) before the intensity and deviation watershed.
    boxcar_size_mid : float
        Boxcar that regularises the MID segment.
    boxcar_size_shape_asym : float
        Boxcar before thresholding the shape-asymmetry mask.
    peak_box : int
        Footprint side of a local maximum for ``second_peak``.
    peak_nsigma : float
        A second maximum counts when it stands this many smoothed-noise sigmas above the sky.
    """

    border: int = 6
    smooth_sigma: float = 1.0
    detect_nsigma: float = 1.5
    npixels: int = 5
    eta: float = 0.2
    petro_extent_cas: float = 1.5
    petro_fraction_cas: float = 0.25
    petro_fraction_gini: float = 0.2
    sigma_mid: float = 1.0
    boxcar_size_mid: float = 3.0
    boxcar_size_shape_asym: float = 3.0
    peak_box: int = 5
    peak_nsigma: float = 3.0


_N = len(MORPHOLOGY_FEATURES)
_EIGHT = np.ones((3, 3), dtype=bool)


def measure(stamp: np.ndarray, params: MorphologyParams | None = None) -> tuple[np.ndarray, int]:
    """Morphology of one stamp, bands summed.

    Parameters
    ----------
    stamp : ndarray, shape (B, H, W) or (H, W)
        Linear fluxes (or [0, 1] pixel values of an 8-bit composite) before any stretch; the sky is
        estimated from the border and subtracted here.
    params : MorphologyParams, optional

    Returns
    -------
    values : ndarray of float32, shape (10,)
        In the order of :data:`MORPHOLOGY_FEATURES`; NaN where not measured.
    flag : int
        Bit field of ``FLAG_*``; 0 for a clean measurement.
    """
    params = params or MorphologyParams()
    try:
        image = np.asarray(stamp, dtype=np.float64)
        if image.ndim == 3:
            image = image.sum(axis=0)
        if image.ndim != 2 or min(image.shape) < 4 * params.border:
            return _failed()
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _measure(image, params)
    except Exception:  # noqa: BLE001 - a bad stamp must give NaN and a flag, never stop an ingest
        return _failed()


def measure_batch(cubes: np.ndarray, params: MorphologyParams | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`measure` for each stamp of ``(N, B, H, W)`` or ``(N, H, W)``: float32 ``(N, 10)`` and int32 ``(N,)``."""
    values = np.full((len(cubes), _N), np.nan, np.float32)
    flags = np.zeros(len(cubes), np.int32)
    for i, cube in enumerate(cubes):
        values[i], flags[i] = measure(cube, params)
    return values, flags


def _failed() -> tuple[np.ndarray, int]:
    return np.full(_N, np.nan, np.float32), FLAG_FAILED


def _border(image: np.ndarray, width: int) -> np.ndarray:
    return np.concatenate(
        [
            image[:width].ravel(),
            image[-width:].ravel(),
            image[width:-width, :width].ravel(),
            image[width:-width, -width:].ravel(),
        ]
    )


def _clipped_stats(values: np.ndarray, sigma: float = 3.0, iterations: int = 5) -> tuple[float, float, float]:
    """Sigma-clipped mean, median and standard deviation of the finite ``values`` (as astropy's
    ``sigma_clipped_stats`` with median centring; a few numpy passes, for speed)."""
    values = values[np.isfinite(values)]
    if values.size < 16:
        raise ValueError("too few finite sky pixels to estimate the sky")
    for _ in range(iterations):
        median, std = np.median(values), values.std()
        kept = values[np.abs(values - median) <= sigma * std]
        if kept.size == values.size or kept.size < 16:
            break
        values = kept
    return float(values.mean()), float(np.median(values)), float(values.std())


@lru_cache(maxsize=8)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates ``(yy, xx)`` of an ``h x w`` image (read-only, shared)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    yy.flags.writeable = xx.flags.writeable = False
    return yy, xx


def _measure(image: np.ndarray, p: MorphologyParams) -> tuple[np.ndarray, int]:
    from photutils.segmentation import detect_sources
    from scipy import ndimage as ndi

    flag = 0
    finite = np.isfinite(image)
    if finite.sum() < 0.5 * image.size:
        return _failed()
    if not finite.all():
        flag |= FLAG_BAD_PIXELS
    _, sky, _ = _clipped_stats(_border(image, p.border))
    image = np.where(finite, image - sky, 0.0)
    smooth = ndi.gaussian_filter(image, p.smooth_sigma, mode="nearest")
    smooth_sigma = _clipped_stats(_border(smooth, p.border))[2]
    peak = float(smooth.max())
    if not peak > 0:
        return _failed()
    # A quantised sky (8-bit composites) can clip to zero spread: keep the threshold above quantisation.
    smooth_sigma = max(smooth_sigma, 1e-3 * peak)
    segm = detect_sources(smooth, p.detect_nsigma * smooth_sigma, p.npixels)
    if segm is None:
        return _failed()
    labels = segm.data
    h, w = image.shape
    yy, xx = _grid(h, w)
    main = labels[h // 2, w // 2]
    if main == 0:  # the segment nearest the centre
        found = np.flatnonzero(labels)
        main = labels.flat[found[np.argmin((yy.flat[found] - h // 2) ** 2 + (xx.flat[found] - w // 2) ** 2)]]
    source = labels == main
    other = (labels != 0) & ~source
    if source[0].any() or source[-1].any() or source[:, 0].any() or source[:, -1].any():
        flag |= FLAG_TRUNCATED
    galaxy = np.where(other, 0.0, image)  # statmorph's maskzeroed cutout: other sources set to zero
    masked = other if other.any() else None
    sky_sigma = _clipped_stats(_border(np.where(labels == 0, image, np.nan), p.border))[2]
    positive = np.where(source, np.clip(galaxy, 0.0, None), 0.0)
    total = positive.sum()
    if not total > 0:
        return _failed()
    centroid = np.array([(positive * xx).sum() / total, (positive * yy).sum() / total])

    r_petro0 = _petrosian_radius(galaxy, centroid, p.eta)
    centre = _asymmetry_centre(galaxy, masked, centroid, p.petro_extent_cas * r_petro0, sky_sigma)
    r_petro = _petrosian_radius(galaxy, centre, p.eta)
    if not np.isfinite(r_petro) or not np.isfinite(r_petro0):
        flag |= FLAG_TRUNCATED
        r_petro = r_petro0 = float(np.hypot(h, w) / 2 / p.petro_extent_cas)
    asym = _asymmetry_at(galaxy, masked, centre, p.petro_extent_cas * r_petro0, sky_sigma)
    r20, r80 = _radii_at_fractions(galaxy, centre, p.petro_extent_cas * r_petro, (0.2, 0.8))
    concentration = 5.0 * np.log10(r80 / r20) if r20 > 0 else np.nan
    smoothness = _smoothness(galaxy, labels, centre, r_petro, sky_sigma, p)
    gini, m20 = _gini_m20(galaxy, centroid, r_petro, p)
    shape_asym = _shape_asymmetry(galaxy, other, masked, source, centre, p)
    multimode, intensity, deviation = _mid(galaxy, source, p)
    second = _second_peak(smooth, source, smooth_sigma, p)
    values = np.array(
        [asym, shape_asym, gini, m20, concentration, smoothness, multimode, intensity, deviation, second],
        dtype=np.float32,
    )
    return values, flag


def _radial(image: np.ndarray, centre: np.ndarray, supersample: int = 4, inner: float = 6.0):
    """Pixel radii from ``centre``, fluxes and areas sorted by radius; with ``supersample`` > 1 the pixels within
    ``inner`` are split into sub-pixels.

    Sub-pixels make the cumulative profile near the centre (r20 is often 1-2 pixels) close to exact aperture
    photometry, at the cost of a few hundred extra points.
    """
    yy, xx = _grid(*image.shape)
    r = np.hypot(xx - centre[0], yy - centre[1])
    if supersample <= 1:
        order = np.argsort(r, axis=None, kind="stable")
        return r.ravel()[order], image.ravel()[order], np.ones(order.size)
    outer = r > inner + 1.0
    ys, xs = np.nonzero(~outer)
    offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
    oy, ox = np.meshgrid(offsets, offsets, indexing="ij")
    sub_r = np.hypot(xs[:, None] + ox.ravel() - centre[0], ys[:, None] + oy.ravel() - centre[1])
    radii = np.concatenate([r[outer], sub_r.ravel()])
    flux = np.concatenate([image[outer], np.repeat(image[ys, xs] / supersample**2, supersample**2)])
    area = np.concatenate([np.ones(outer.sum()), np.full(sub_r.size, 1.0 / supersample**2)])
    order = np.argsort(radii, kind="stable")
    return radii[order], flux[order], area[order]


def _petrosian_radius(image: np.ndarray, centre: np.ndarray, eta: float) -> float:
    """Circular Petrosian radius: mean surface brightness in a 1-pixel annulus at r over the mean inside r = eta."""
    r, flux, area = _radial(image, centre, supersample=1)
    cum_flux, cum_area = np.cumsum(flux), np.cumsum(area)
    grid = np.arange(1.0, r[-1] - 0.5, 0.25)
    if grid.size == 0:
        return np.nan
    lo, mid, hi = (np.searchsorted(r, grid + d, side="right") - 1 for d in (-0.5, 0.0, 0.5))
    ok = lo >= 0
    ann = (cum_flux[hi] - np.where(ok, cum_flux[np.maximum(lo, 0)], 0.0)) / (
        cum_area[hi] - np.where(ok, cum_area[np.maximum(lo, 0)], 0.0)
    )
    inside = cum_flux[mid] / cum_area[mid]
    ratio = np.where(inside > 0, ann / np.where(inside > 0, inside, 1.0), 1.0)
    below = np.flatnonzero(ratio - eta <= 0)
    if below.size == 0:
        return np.nan
    k = below[0]
    if k == 0:
        return float(grid[0])
    f0, f1 = ratio[k - 1] - eta, ratio[k] - eta
    return float(grid[k - 1] + (grid[k] - grid[k - 1]) * f0 / (f0 - f1))


def _radii_at_fractions(image: np.ndarray, centre: np.ndarray, r_total: float, fractions) -> list[float]:
    r, flux, _ = _radial(image, centre)
    keep = r <= r_total
    r, cum = r[keep], np.cumsum(flux[keep])
    total = cum[-1] if cum.size else 0.0
    if not total > 0:
        return [np.nan for _ in fractions]
    return [float(np.interp(f * total, np.maximum.accumulate(cum), r)) for f in fractions]


def _rotated(image: np.ndarray, centre2: tuple[int, int]) -> np.ndarray:
    """``image`` rotated by 180° about the centre ``(x, y) = centre2 / 2`` (zero outside): an exact flip."""
    h, w = image.shape
    dx, dy = centre2[0] - (w - 1), centre2[1] - (h - 1)
    flipped = image[::-1, ::-1]
    out = np.zeros_like(image)
    # out[y, x] = flipped[y - dy, x - dx]
    yd, ys = (slice(dy, h), slice(0, h - dy)) if dy >= 0 else (slice(0, h + dy), slice(-dy, h))
    xd, xs = (slice(dx, w), slice(0, w - dx)) if dx >= 0 else (slice(0, w + dx), slice(-dx, w))
    out[yd, xd] = flipped[ys, xs]
    return out


def _rotated_at(image: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """``image`` rotated by 180° about any ``(x, y)``: four exact flips weighted bilinearly (statmorph's order)."""
    sx, sy = 2.0 * centre[0], 2.0 * centre[1]
    ix, iy = int(np.floor(sx)), int(np.floor(sy))
    fx, fy = sx - ix, sy - iy
    out = (1 - fx) * (1 - fy) * _rotated(image, (ix, iy))
    if fx > 0:
        out += fx * (1 - fy) * _rotated(image, (ix + 1, iy))
    if fy > 0:
        out += (1 - fx) * fy * _rotated(image, (ix, iy + 1))
    if fx > 0 and fy > 0:
        out += fx * fy * _rotated(image, (ix + 1, iy + 1))
    return out


def _asymmetry_at(
    image: np.ndarray,
    masked: np.ndarray | None,
    centre: np.ndarray,
    radius: float,
    sky_sigma: float,
    noise: bool = True,
) -> float:
    """Asymmetry about ``centre`` inside ``radius``; ``masked`` pixels and their mirror images are left out."""
    yy, xx = _grid(*image.shape)
    inside = (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= radius**2
    if masked is not None:
        inside &= ~(masked | (_rotated_at(masked.astype(np.float64), centre) >= 0.5))
    a = image[inside]
    b = _rotated_at(image, centre)[inside]
    abs_sum = np.abs(a).sum()
    if not abs_sum > 0:
        return np.inf
    diff = np.abs(a - b).sum()
    # The noise term: E|n1 - n2| = 2 sigma / sqrt(pi) per pixel for two independent Gaussian noise pixels.
    if noise:
        diff -= inside.sum() * 2.0 * sky_sigma / np.sqrt(np.pi)
    return float(diff / abs_sum)


def _asymmetry_centre(
    image: np.ndarray, masked: np.ndarray | None, start: np.ndarray, radius: float, sky_sigma: float
) -> np.ndarray:
    """The point minimising the asymmetry.

    Steepest descent over the half-pixel grid from ``start`` (there a rotation is an exact flip), then the
    minimum of a quadratic fitted to the 3 x 3 half-pixel neighbourhood of the best point, kept if lower.
    """
    h, w = image.shape
    cache: dict[tuple[int, int], float] = {}

    def value(c: tuple[int, int]) -> float:  # c in half pixels
        if c not in cache:
            inside = 0 <= c[0] <= 2 * (w - 1) and 0 <= c[1] <= 2 * (h - 1)
            cache[c] = _asymmetry_at(image, masked, np.array(c) / 2.0, radius, sky_sigma) if inside else np.inf
        return cache[c]

    current = (int(round(2 * start[0])), int(round(2 * start[1])))
    for _ in range(4 * max(h, w)):
        best = min(((current[0] + dx, current[1] + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)), key=value)
        if value(best) >= value(current):
            break
        current = best
    grid = np.array([[value((current[0] + dx, current[1] + dy)) for dx in (-1, 0, 1)] for dy in (-1, 0, 1)])
    found = np.array(current, dtype=np.float64) / 2.0
    if not np.isfinite(grid).all():
        return found
    # z = a + b x + c y + d x^2 + e y^2 + f x y over the 3 x 3 points (x, y in half pixels).
    dy, dx = np.mgrid[-1:2, -1:2]
    design = np.stack([np.ones(9), dx.ravel(), dy.ravel(), dx.ravel() ** 2, dy.ravel() ** 2, (dx * dy).ravel()], 1)
    _, b, c, d, e, f = np.linalg.lstsq(design, grid.ravel(), rcond=None)[0]
    det = 4 * d * e - f * f
    if d <= 0 or det <= 0:
        return found
    offset = np.clip(np.array([(f * c - 2 * e * b) / det, (f * b - 2 * d * c) / det]), -1.0, 1.0)
    refined = found + offset / 2.0
    if _asymmetry_at(image, masked, refined, radius, sky_sigma) < value(current):
        return refined
    return found


def _smoothness(
    image: np.ndarray, labels: np.ndarray, centre: np.ndarray, r_petro: float, sky_sigma: float, p: MorphologyParams
) -> float:
    """Lotz et al. (2004) eq. 11 in the annulus 0.25-1.5 Petrosian radii, less the sky's own smoothness."""
    from scipy import ndimage as ndi

    size = int(p.petro_fraction_cas * r_petro)
    if size < 2:  # a one-pixel boxcar smooths nothing: S is 0 by definition
        return 0.0
    residual = np.clip(image - ndi.uniform_filter(image, size=size), 0.0, None)
    h, w = image.shape
    yy, xx = _grid(h, w)
    r = np.hypot(xx - centre[0], yy - centre[1])
    annulus = (r >= p.petro_fraction_cas * r_petro) & (r <= p.petro_extent_cas * r_petro)
    flux = image[annulus].sum()
    if not flux > 0:
        return np.nan
    sky = np.zeros(image.shape, dtype=bool)
    sky[: p.border], sky[-p.border :], sky[:, : p.border], sky[:, -p.border :] = True, True, True, True
    sky &= labels == 0
    sky_term = residual[sky].mean() if sky.any() else 0.0
    return float((residual[annulus].sum() - annulus.sum() * sky_term) / flux)


def _gini_m20(image: np.ndarray, centroid: np.ndarray, r_petro: float, p: MorphologyParams) -> tuple[float, float]:
    """Gini and M20 over the Gini segment: smoothed pixels above the mean surface brightness at the Petrosian radius."""
    from photutils.aperture import CircularAnnulus
    from photutils.morphology import gini
    from scipy import ndimage as ndi

    smooth = ndi.gaussian_filter(image, p.petro_fraction_gini * r_petro, mode="constant", cval=0.0)
    h, w = image.shape
    yy, xx = _grid(h, w)
    ring = CircularAnnulus(centroid, max(r_petro - 0.5, 1e-3), r_petro + 0.5)  # exact overlap, as statmorph
    above = smooth >= ring.do_photometry(smooth, method="exact")[0][0] / ring.area
    labels, _ = ndi.label(above, structure=_EIGHT)
    brightest = np.unravel_index(np.argmax(smooth), smooth.shape)
    segment = labels == labels[brightest]
    if segment.sum() <= 1 or segment.all():
        return np.nan, np.nan
    g = float(gini(image, mask=~segment))
    flux = np.where(segment, image, 0.0)
    total = flux.sum()
    if not total > 0:
        return g, np.nan
    xc, yc = (flux * xx).sum() / total, (flux * yy).sum() / total
    moment = flux * ((xx - xc) ** 2 + (yy - yc) ** 2)
    values = np.sort(flux.ravel())
    fraction = np.cumsum(values) / values.sum()
    brightest20 = values[fraction >= 0.8]
    if brightest20.size == 0:
        return g, np.nan
    m20_moment = moment[flux >= brightest20[0]].sum()
    m_total = moment.sum()
    return g, float(np.log10(m20_moment / m_total)) if m20_moment > 0 and m_total > 0 else np.nan


def _shape_asymmetry(
    image: np.ndarray,
    other: np.ndarray,
    masked: np.ndarray | None,
    source: np.ndarray,
    centre: np.ndarray,
    p: MorphologyParams,
) -> float:
    """Pawlik et al. (2016): the asymmetry of the binary mask of the source (no noise term) within its extent."""
    from scipy import ndimage as ndi

    sky_values = image[~(source | other)]
    if sky_values.size < 16:
        return np.nan
    # As statmorph: the sky's mode (Bertin & Arnouts 1996) plus one sigma of the unsmoothed pixels, applied to
    # the boxcar-smoothed image.
    mean, median, std = _clipped_stats(sky_values)
    smooth = ndi.uniform_filter(image, size=int(p.boxcar_size_shape_asym))
    above = smooth >= 2.5 * median - 1.5 * mean + std
    brightest = np.unravel_index(np.argmax(np.where(source, smooth, -np.inf)), smooth.shape)
    above[brightest] = True
    labels, _ = ndi.label(above & ~other, structure=_EIGHT)
    mask = (labels == labels[brightest]).astype(np.float64)
    h, w = image.shape
    yy, xx = _grid(h, w)
    rmax = np.hypot(xx - centre[0], yy - centre[1])[mask > 0].max()
    if not rmax > 0:
        return np.nan
    return _asymmetry_at(mask, masked, centre, rmax, 0.0, noise=False)


def _mid(image: np.ndarray, source: np.ndarray, p: MorphologyParams) -> tuple[float, float, float]:
    """Multimode, intensity and deviation (Freeman et al. 2013) on the MID segment, as statmorph defines them."""
    from scipy import ndimage as ndi
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    rows, cols = np.nonzero(source)
    box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    cut = np.where(source[box], np.clip(image[box], 0.0, None), 0.0)
    values = np.sort(cut[source[box]])
    if values.size < 2 or not values[-1] > 0:
        return np.nan, np.nan, np.nan
    brightest = np.unravel_index(np.argmax(cut), cut.shape)

    def main_clump(q: float) -> np.ndarray:
        labels, _ = ndi.label(cut >= _quantile(values, q), structure=_EIGHT)
        return labels == labels[brightest]

    def excess(q: float) -> float:
        clump = main_clump(q)
        mean = cut[clump].mean()
        return (_quantile(values, q) / mean if mean > 0 else 1.0) - p.eta

    if excess(0.0) > 0.0:
        segment = source[box]
    else:
        lo, hi = 0.0, 1.0
        while hi - lo > 1.0 / values.size:  # bisection to one pixel value, as statmorph's brentq tolerance
            q = 0.5 * (lo + hi)
            lo, hi = (q, hi) if excess(q) <= 0 else (lo, q)
        segment = ndi.uniform_filter(main_clump(lo).astype(np.float64), size=p.boxcar_size_mid) > 0.5
        segment[brightest] = True
        labels, _ = ndi.label(segment, structure=_EIGHT)
        segment = labels == labels[brightest]
    mid = np.where(segment, cut, 0.0)
    mid_values = np.sort(mid[source[box]])

    def clumps(threshold: float) -> tuple[float, float]:
        """``(A2 / A1) * A2`` (what is maximised) and ``A2 / A1`` (what is reported) above ``threshold``."""
        labels, n = ndi.label(mid >= threshold, structure=_EIGHT)
        if n < 2:
            return 0.0, 0.0
        counts = np.sort(np.bincount(labels.ravel())[1:])[::-1]
        return counts[1] ** 2 / counts[0], counts[1] / counts[0]

    # A coarse scan of quantiles (statmorph's first stage), then every distinct pixel value within one step of
    # the best one (in place of its basin hopping): the areas only change at pixel values.
    coarse = np.arange(0.0, 1.0, 0.02)
    scores = [clumps(_quantile(mid_values, q)) for q in coarse]
    k = int(np.argmax([sc[0] for sc in scores]))
    best, multimode = scores[k]
    if best > 0:
        lo, hi = _quantile(mid_values, coarse[k] - 0.02), _quantile(mid_values, coarse[k] + 0.02)
        for threshold in np.unique(mid_values[(mid_values >= lo) & (mid_values <= hi)]):
            score, ratio = clumps(threshold)
            if score > best:
                best, multimode = score, ratio

    smooth = ndi.gaussian_filter(mid, p.sigma_mid)
    peaks = peak_local_max(smooth, num_peaks=np.inf)
    if len(peaks) == 0:
        return multimode, np.nan, np.nan
    markers = np.zeros(smooth.shape, dtype=np.int64)
    markers[peaks[:, 0], peaks[:, 1]] = np.arange(1, len(peaks) + 1)
    regions = watershed(-smooth, markers, connectivity=2, mask=smooth > 0)
    sums = np.bincount(regions.ravel(), weights=smooth.ravel(), minlength=len(peaks) + 1)[1:]
    order = np.argsort(sums)[::-1]
    intensity = float(sums[order[1]] / sums[order[0]]) if len(peaks) > 1 else 0.0
    total = mid.sum()
    yy, xx = _grid(*mid.shape)
    xc, yc = (mid * xx).sum() / total, (mid * yy).sum() / total
    yp, xp = peaks[order[0]]
    deviation = float(np.sqrt(np.pi / segment.sum()) * np.hypot(xp - xc, yp - yc))
    return float(multimode), intensity, deviation


def _quantile(sorted_values: np.ndarray, q: float) -> float:
    """statmorph's quantile: the value at index ``int(q * n)`` of the sorted values (clamped)."""
    return float(sorted_values[min(max(int(q * len(sorted_values)), 0), len(sorted_values) - 1)])


def _second_peak(smooth: np.ndarray, source: np.ndarray, noise: float, p: MorphologyParams) -> float:
    """Second-brightest local maximum of the smoothed source over the brightest (0 with one maximum)."""
    from photutils.detection import find_peaks

    peaks = find_peaks(smooth, p.peak_nsigma * noise, box_size=p.peak_box, mask=~source)
    if peaks is None or len(peaks) == 0:
        return np.nan
    values = np.sort(np.asarray(peaks["peak_value"], dtype=np.float64))[::-1]
    return float(values[1] / values[0]) if len(values) > 1 else 0.0
