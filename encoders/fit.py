"""Bring stamps of any size to the model's stamp size: the one implementation for training, ingestion and serving.

A :class:`Fit` says how an image of ``H x W`` pixels becomes the model's ``size x size`` input:

``none``
    Not at all: a stamp of another size is refused (ingestion quarantines it).
``crop``
    The central ``size x size`` pixels (stamps smaller than ``size`` are left as they are, and refused).
``bin``
    The mean of ``k x k`` pixel blocks, for square stamps whose side is ``k`` times ``size``.
``resample``
    The central square of side ``fraction * min(H, W)``, area-averaged onto ``size x size`` pixels: each
    output pixel is the mean of the input it covers, weighted by the overlapped area, so any factor
    (``424 -> 64`` with ``fraction=0.5`` is ``3.3125``) keeps the mean flux per pixel. A region smaller than
    ``size`` is enlarged the same way (piecewise constant).

The model records its fit in the ONNX metadata (``fit``, ``fit_fraction``; :meth:`Fit.to_metadata`), so
ingestion and the server fit uploads exactly as the training stamps were fitted. NumPy only: this module is
on the serving path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["DEFAULT_FIT_FRACTION", "FIT_MODES", "Fit", "area_weights"]

FIT_MODES = ("none", "crop", "bin", "resample")
#: Side of the central square kept by ``resample``, as a fraction of the image's shorter side. Galaxy
#: Zoo-style cutouts (e.g. SDSS 424 px JPEGs scaled to the Petrosian radius) put the galaxy in the central
#: third to half of the image; half keeps all of it with some sky around it.
DEFAULT_FIT_FRACTION = 0.5


def area_weights(n_in: int, start: float, length: float, n_out: int) -> np.ndarray:
    """Area-averaging weights from the input interval ``[start, start + length)`` onto ``n_out`` output pixels.

    Parameters
    ----------
    n_in : int
        Input pixels along the axis; pixel ``j`` covers ``[j, j + 1)``.
    start, length : float
        The interval that is resampled (it may begin and end inside a pixel).
    n_out : int
        Output pixels; pixel ``i`` covers ``[start + i * length / n_out, start + (i + 1) * length / n_out)``.

    Returns
    -------
    numpy.ndarray
        float64 ``(n_out, n_in)``: the overlap of output pixel ``i`` with input pixel ``j`` divided by the output
        pixel's length, so each row sums to 1 when the interval lies inside ``[0, n_in]``.
    """
    edges = start + length * np.arange(n_out + 1, dtype=np.float64) / n_out
    pixels = np.arange(n_in + 1, dtype=np.float64)
    overlap = np.minimum(edges[1:, None], pixels[None, 1:]) - np.maximum(edges[:-1, None], pixels[None, :-1])
    return np.clip(overlap, 0.0, None) * (n_out / length)


@dataclass(frozen=True)
class Fit:
    """How stamps are brought to the model's size (see the module docstring).

    Parameters
    ----------
    mode : {"none", "crop", "bin", "resample"}
        The method.
    fraction : float
        ``resample`` only: side of the central square kept, as a fraction of the shorter side, in (0, 1].

    Raises
    ------
    ValueError
        If ``mode`` is not one of :data:`FIT_MODES` or ``fraction`` is not in (0, 1].
    """

    mode: str = "none"
    fraction: float = DEFAULT_FIT_FRACTION

    def __post_init__(self) -> None:
        if self.mode not in FIT_MODES:
            raise ValueError(f"fit must be one of {', '.join(FIT_MODES)}, got {self.mode!r}")
        try:
            fraction = float(self.fraction)
        except (TypeError, ValueError):
            raise ValueError(f"fit fraction must be a number in (0, 1], got {self.fraction!r}") from None
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fit fraction must be in (0, 1], got {self.fraction!r}")
        object.__setattr__(self, "fraction", fraction)

    def __str__(self) -> str:
        return f"resample {self.fraction:g}" if self.mode == "resample" else self.mode

    def apply(self, data: np.ndarray, size: int) -> np.ndarray:
        """Fit ``(..., H, W)`` pixels (e.g. one ``(B, H, W)`` cube) to ``(..., size, size)``.

        Parameters
        ----------
        data : numpy.ndarray
            float32 pixels; non-finite pixels are left out of ``resample``'s averages (an output pixel with no
            finite input is NaN) and propagate within their block under ``bin``.
        size : int
            The model's stamp side.

        Returns
        -------
        numpy.ndarray
            float32. ``none`` returns ``data`` itself; ``crop`` and ``bin`` return stamps they cannot fit
            (smaller, or not a whole multiple for ``bin``) unchanged, for the caller's shape check to refuse;
            ``resample`` always returns ``(..., size, size)``, enlarging a region smaller than ``size``.
        """
        if int(size) < 1:
            raise ValueError(f"fit size must be >= 1, got {size!r}")
        if data.ndim < 2:
            raise ValueError(f"fit expects pixels of shape (..., H, W), got shape {data.shape}")
        size = int(size)
        h, w = data.shape[-2:]
        if self.mode == "crop" and h >= size and w >= size:
            top, left = (h - size) // 2, (w - size) // 2
            return np.ascontiguousarray(data[..., top : top + size, left : left + size])
        if self.mode == "bin" and h == w and h % size == 0 and h > size:
            k = h // size
            return data.reshape(*data.shape[:-2], size, k, size, k).mean(axis=(-3, -1), dtype=np.float32)
        if self.mode == "resample":
            return _resample(data, size, self.fraction)
        return data

    def to_metadata(self) -> dict[str, str]:
        """The ONNX ``metadata_props`` entries of this fit: ``fit`` and ``fit_fraction``."""
        return {"fit": self.mode, "fit_fraction": repr(self.fraction)}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> Fit:
        """Inverse of :meth:`to_metadata`; a model without ``fit`` was trained on stamps as they were (``none``).

        Raises
        ------
        ValueError
            If the values are malformed (the message names them).
        """
        return cls(metadata.get("fit", "none"), metadata.get("fit_fraction", DEFAULT_FIT_FRACTION))


def _taps(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The non-zero weights of each row of :func:`area_weights` (a consecutive run) as ``(index, weight)`` pairs."""
    n_in = weights.shape[1]
    nonzero = weights > 0
    index = nonzero.argmax(axis=1)[:, None] + np.arange(int(nonzero.sum(axis=1).max()))
    inside = index < n_in
    index = np.minimum(index, n_in - 1)
    return index, np.where(inside, np.take_along_axis(weights, index, axis=1), 0.0).astype(np.float32)


def _separable(
    region: np.ndarray, rows: tuple[np.ndarray, np.ndarray], cols: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    # A few gathers per axis instead of a matrix product: no BLAS threads, which oversubscribe busy cores.
    (iy, wy), (ix, wx) = rows, cols
    out = sum(wy[:, t, None] * region[..., iy[:, t], :] for t in range(iy.shape[1]))
    return sum(wx[:, t] * out[..., ix[:, t]] for t in range(ix.shape[1]))


def _resample(data: np.ndarray, size: int, fraction: float) -> np.ndarray:
    """Area-average the central square of side ``fraction * min(H, W)`` onto ``size x size`` pixels."""
    h, w = data.shape[-2:]
    side = fraction * min(h, w)
    top, left = (h - side) / 2, (w - side) / 2
    r0, r1 = int(np.floor(top)), int(np.ceil(top + side))
    c0, c1 = int(np.floor(left)), int(np.ceil(left + side))
    rows = _taps(area_weights(r1 - r0, top - r0, side, size))
    cols = _taps(area_weights(c1 - c0, left - c0, side, size))
    region = np.asarray(data[..., r0:r1, c0:c1], dtype=np.float32)
    finite = np.isfinite(region)
    if finite.all():
        return np.ascontiguousarray(_separable(region, rows, cols), dtype=np.float32)
    total = _separable(np.where(finite, region, np.float32(0)), rows, cols)
    weight = _separable(finite.astype(np.float32), rows, cols)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(weight > 1e-6, total / weight, np.nan)
    return np.ascontiguousarray(out, dtype=np.float32)
