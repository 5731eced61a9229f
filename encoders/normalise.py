"""Lupton et al. (2004) asinh normalisation for stamps with any number of bands.

This is the single normaliser shared by training and ingestion: the ONNX model is
trained on, and fed with, ``lupton_asinh(cube, params)`` where ``params`` travel in
the model's metadata (see ``docs/CONTRACTS.md``). NumPy and numba only, so the serving
path never needs torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numba import njit

__all__ = [
    "NORMALISATIONS",
    "LuptonParams",
    "PixelStats",
    "identity_stats",
    "lupton_asinh",
    "lupton_stats",
    "normaliser",
    "normaliser_stats",
]

#: Normalisations a model can be trained with (recorded in its ONNX metadata as ``normalisation``).
NORMALISATIONS = ("lupton", "identity")

#: Fraction of ``stretch`` at which the slope of the stretch is fixed (astropy's ``frac``).
_FRAC = 0.1


@dataclass(frozen=True)
class LuptonParams:
    """Parameters of the Lupton asinh stretch.

    Parameters
    ----------
    q : float
        Asinh softening parameter ``Q`` (Lupton et al. 2004; astropy default 8).
        Larger values make the stretch more logarithmic. Must be > 0.
    stretch : float
        Linear stretch, in the flux units of the stamps. Must be > 0. The mapping is
        linear below ``stretch / q`` and logarithmic above it, and the band-mean
        intensity saturates (maps to 1) at ``stretch * sinh(asinh(0.1 q) / 0.1) / q``,
        i.e. about ``95 * stretch`` for ``q = 8``.
    minimum : float
        Flux subtracted from every band before stretching (the black level).

    Notes
    -----
    The default ``stretch = 50`` suits sky-subtracted fluxes whose sky noise is sigma ~ 1 per band and
    whose galaxy peaks are tens to thousands (the synthetic survey's units). It balances two needs:

    * saturation must be rare, because colour-preserving saturation flattens a core into a plateau and
      two nuclei a few pixels apart into one blob. The reddest band of a red core, about twice the
      band-mean intensity ``I``, saturates first, at ``f(I) = 0.5``: ``I ~ 120`` for ``stretch = 50``;
    * faint structure must stay visible: the stretch is linear below ``stretch / q = 6`` flux units and
      logarithmic above, so tidal features a few sigma above the sky stay above its noise. The network
      sees float32, so the small amplitude of faint light costs no precision.

    Of the stretches compared it let the encoder rank dual nuclei and mergers as most anomalous
    (docs/BENCHMARKS.md). For real nanomaggy cutouts (Legacy Survey, sky sigma ~ 0.005) scale ``stretch``
    by the ratio of noise levels (``stretch ~ 0.2``).
    """

    q: float = 8.0
    stretch: float = 50.0
    minimum: float = 0.0

    def __post_init__(self) -> None:
        for name in ("q", "stretch", "minimum"):
            value = getattr(self, name)
            if not isinstance(value, (int, float, np.floating, np.integer)) or not math.isfinite(value):
                raise ValueError(f"LuptonParams.{name} must be a finite number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.q <= 0:
            raise ValueError(f"LuptonParams.q must be > 0, got {self.q!r}")
        if self.stretch <= 0:
            raise ValueError(f"LuptonParams.stretch must be > 0, got {self.stretch!r}")

    def to_dict(self) -> dict[str, float]:
        """Return ``{"q": ..., "stretch": ..., "minimum": ...}`` (JSON-serialisable)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LuptonParams:
        """Build from the mapping written by :meth:`to_dict`.

        Raises
        ------
        ValueError
            If a key is unknown or a value is not a valid number.
        """
        unknown = set(data) - {"q", "stretch", "minimum"}
        if unknown:
            raise ValueError(
                f"LuptonParams.from_dict got unknown keys {sorted(unknown)}; "
                "expected a subset of ['minimum', 'q', 'stretch']"
            )
        return cls(**{k: float(v) for k, v in data.items()})

    def to_metadata(self) -> dict[str, str]:
        """Return the ONNX ``metadata_props`` entries (``lupton_q`` ...) as strings."""
        return {f"lupton_{k}": repr(v) for k, v in self.to_dict().items()}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> LuptonParams:
        """Build from ONNX ``metadata_props`` (keys ``lupton_q``, ``lupton_stretch``, ``lupton_minimum``).

        Raises
        ------
        ValueError
            If a key is missing or its value is not a number.
        """
        values = {}
        for key in ("q", "stretch", "minimum"):
            meta_key = f"lupton_{key}"
            if meta_key not in metadata:
                raise ValueError(f"model metadata lacks {meta_key!r}; keys present: {sorted(metadata)}")
            try:
                values[key] = float(metadata[meta_key])
            except ValueError:
                raise ValueError(f"model metadata {meta_key}={metadata[meta_key]!r} is not a number") from None
        return cls(**values)


@dataclass(frozen=True)
class PixelStats:
    """What the normaliser saw in each raw stamp, for validation (:func:`ingest.pipeline.quality_problem`).

    Attributes
    ----------
    finite : numpy.ndarray
        int64 ``(N,)``: finite pixels per stamp (all bands).
    low, high : numpy.ndarray
        float32 ``(N,)``: smallest and largest finite pixel (``inf`` / ``-inf`` when there is none).
    size : int
        Pixels per stamp (all bands).
    """

    finite: np.ndarray
    low: np.ndarray
    high: np.ndarray
    size: int


def _compiled(fn: Callable) -> Callable:
    """``fn`` compiled by numba without the GIL, its machine code cached on disk (beside this file, else in
    the user's cache folder) so that later processes (every ingest worker) skip the compilation; where neither
    folder is writable (a read-only install and home), compiled afresh in each process instead of failing."""
    try:
        return njit(nogil=True, cache=True)(fn)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return njit(nogil=True)(fn)


@_compiled
def _offset_pass(x, minimum, scale, out, y, finite, low, high):  # pragma: no cover - compiled
    """``out = x - minimum`` (``x`` = 0 where not finite), ``y = scale * sum_b out``, and the count and range
    of the finite pixels."""
    n, b, h, w = x.shape
    for s in range(n):
        count = 0
        lo = np.float32(np.inf)
        hi = np.float32(-np.inf)
        plane = y[s]
        plane[:] = 0.0
        for k in range(b):
            for i in range(h):
                for j in range(w):
                    v = x[s, k, i, j]
                    if np.isfinite(v):
                        count += 1
                        lo = min(lo, v)
                        hi = max(hi, v)
                    else:
                        v = np.float32(0.0)
                    v = v - minimum
                    out[s, k, i, j] = v
                    plane[i, j] += v
        for i in range(h):
            for j in range(w):
                plane[i, j] *= scale
        finite[s] = count
        low[s] = lo
        high[s] = hi


@_compiled
def _stretch_pass(out, y, asinh_y, gain, peak):  # pragma: no cover - compiled
    """``out *= gain * asinh(y) / y`` (0 where ``y <= 0``), clipped below at 0, then divided by the band maximum
    where it exceeds 1 and clipped to [0, 1]."""
    n, b, h, w = out.shape
    for s in range(n):
        ratio = asinh_y[s]
        pk = peak[s]
        for i in range(h):
            for j in range(w):
                r = gain * ratio[i, j] / y[s, i, j] if y[s, i, j] > 0 else np.float32(0.0)
                ratio[i, j] = r if np.isfinite(r) else np.float32(0.0)
                pk[i, j] = 0.0
        for k in range(b):
            for i in range(h):
                for j in range(w):
                    v = max(out[s, k, i, j] * ratio[i, j], np.float32(0.0))
                    out[s, k, i, j] = v
                    pk[i, j] = max(pk[i, j], v)
        for i in range(h):
            for j in range(w):
                pk[i, j] = np.float32(1.0) / pk[i, j] if pk[i, j] > 1.0 else np.float32(1.0)
        for k in range(b):
            for i in range(h):
                for j in range(w):
                    out[s, k, i, j] = min(max(out[s, k, i, j] * pk[i, j], np.float32(0.0)), np.float32(1.0))


def _as_stamps(cube: Any, name: str) -> tuple[np.ndarray, tuple[int, ...]]:
    """``cube`` as a native float32 C-ordered ``(N, B, H, W)`` array, and its original shape."""
    x = np.asarray(cube)
    if x.ndim < 3:
        raise ValueError(f"{name} expects an array of shape (..., n_bands, H, W), got shape {x.shape}")
    if x.shape[-3] < 1:
        raise ValueError(f"{name} expects at least one band, got shape {x.shape}")
    flat = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, *x.shape[-3:])
    return flat, x.shape


def _offset(x: np.ndarray, minimum: float, scale: float) -> tuple[np.ndarray, np.ndarray, PixelStats]:
    n, _, h, w = x.shape
    out, y = np.empty_like(x), np.empty((n, h, w), np.float32)
    finite, low, high = np.empty(n, np.int64), np.empty(n, np.float32), np.empty(n, np.float32)
    if n:
        _offset_pass(x, np.float32(minimum), np.float32(scale), out, y, finite, low, high)
    return out, y, PixelStats(finite, low, high, int(np.prod(x.shape[1:])))


def lupton_stats(cube: np.ndarray, params: LuptonParams = LuptonParams()) -> tuple[np.ndarray, PixelStats]:
    """:func:`lupton_asinh` of stamps ``(..., B, H, W)``, and what it saw of their raw pixels (one
    :class:`PixelStats` entry a stamp, the leading axes flattened in C order)."""
    x, shape = _as_stamps(cube, "lupton_asinh")
    soften = params.q / params.stretch
    out, y, stats = _offset(x, params.minimum, soften / x.shape[1])  # y = soften * band-mean intensity
    if len(x):
        with np.errstate(invalid="ignore", over="ignore"):
            asinh_y = np.arcsinh(y)  # NumPy's vectorised arcsinh beats numba's scalar one
        gain = np.float32(soften * _FRAC / math.asinh(_FRAC * params.q))
        _stretch_pass(out, y, asinh_y, gain, np.empty_like(y))
    return out.reshape(shape), stats


def lupton_asinh(cube: np.ndarray, params: LuptonParams = LuptonParams()) -> np.ndarray:
    """Colour-preserving Lupton asinh stretch of stamps with any number of bands.

    Parameters
    ----------
    cube : numpy.ndarray
        Fluxes of shape ``(..., n_bands, H, W)`` with ``n_bands >= 1``, any float or
        integer dtype and byte order. Non-finite values (NaN, inf) are treated as 0.
    params : LuptonParams
        Stretch parameters.

    Returns
    -------
    numpy.ndarray
        float32 array of the same shape with values in ``[0, 1]``.

    Raises
    ------
    ValueError
        If ``cube`` has fewer than 3 dimensions or a zero-length band axis.

    Notes
    -----
    Following Lupton et al. (2004, PASP 116, 133) and ``astropy.visualization.make_lupton_rgb``:

    1. ``x_b = flux_b - minimum`` for every band ``b``;
    2. ``I = mean_b x_b`` (the band-mean intensity);
    3. ``f(I) = asinh(I q / stretch) * frac / asinh(frac q)`` with ``frac = 0.1``;
    4. ``X_b = x_b f(I) / I`` (0 where ``I <= 0``), clipped below at 0, so that band
       ratios (colours) are preserved;
    5. where ``max_b X_b > 1`` every band is divided by that maximum (saturated pixels
       keep their colour instead of turning white);
    6. the result is clipped to ``[0, 1]``.

    For three bands, ``255 * lupton_asinh(stack([r, g, b]))`` matches astropy's
    ``make_lupton_rgb(r, g, b, minimum=minimum, stretch=stretch, Q=q)`` to within
    the uint8 rounding. Steps 1-2 and 4-6 run as two compiled passes (numba) over each
    stamp and step 3 as one NumPy call, so that normalisation keeps up with inference during
    ingestion (an element-wise NumPy version did not).
    """
    return lupton_stats(cube, params)[0]


def identity_stats(cube: np.ndarray) -> tuple[np.ndarray, PixelStats]:
    """The ``"identity"`` normalisation (non-finite -> 0, clip to [0, 1]) and what it saw of the pixels."""
    x, shape = _as_stamps(cube, "identity normalisation")
    out, _, stats = _offset(x, 0.0, 0.0)
    np.clip(out, 0.0, 1.0, out=out)
    return out.reshape(shape), stats


def normaliser(kind: str = "lupton", params: LuptonParams = LuptonParams()) -> Callable[[np.ndarray], np.ndarray]:
    """The function turning raw cubes into model input (one implementation for training and serving).

    Parameters
    ----------
    kind : str
        ``"lupton"``: :func:`lupton_asinh` with ``params`` (fluxes); ``"identity"``: float32
        values with non-finite ones set to 0, clipped to [0, 1] (images already stretched, e.g.
        8-bit PNG composites, which :func:`encoders.stamps.read_stamp` scales to [0, 1]).
    params : LuptonParams
        Stretch of the ``"lupton"`` normalisation.

    Returns
    -------
    callable
        ``f(cube (..., B, H, W)) -> float32 array in [0, 1]``.

    Raises
    ------
    ValueError
        If ``kind`` is not one of :data:`NORMALISATIONS`.
    """
    stats = normaliser_stats(kind, params)
    return lambda cube: stats(cube)[0]


def normaliser_stats(
    kind: str = "lupton", params: LuptonParams = LuptonParams()
) -> Callable[[np.ndarray], tuple[np.ndarray, PixelStats]]:
    """:func:`normaliser` that also returns the :class:`PixelStats` of the raw stamps (ingestion validates on them).

    Raises
    ------
    ValueError
        If ``kind`` is not one of :data:`NORMALISATIONS`.
    """
    if kind == "lupton":
        return lambda cube: lupton_stats(cube, params)
    if kind == "identity":
        return identity_stats
    raise ValueError(f"unknown normalisation {kind!r}; expected one of {NORMALISATIONS}")
