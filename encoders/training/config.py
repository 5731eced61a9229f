"""Configuration of a VICReg training run (:class:`TrainConfig`), defaults in one place.

The augmentation parameters are declared once, in :class:`AugmentParams`: :class:`TrainConfig` and
:class:`~encoders.training.augment.GalaxyAugment` both extend it, so their fields and defaults cannot drift
apart. No torch here, so a run directory's ``config.json`` can be read without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from encoders.fit import DEFAULT_FIT_FRACTION, Fit
from encoders.normalise import LuptonParams

__all__ = ["ARCH_FIELDS", "PRESETS", "AugmentParams", "TrainConfig"]

#: Fields that fix the architecture or the input contract: a checkpoint can only be
#: resumed by a config that agrees on all of them.
ARCH_FIELDS = (
    "widths", "blocks", "stem_stride", "expander_dims", "bands", "stamp_size", "lupton", "normalisation", "fit",
    "fit_fraction",
)  # fmt: skip


#: Named sets of :class:`TrainConfig` values for kinds of input; explicit settings override them.
#: ``survey``: the defaults (Lupton-stretched multi-band fluxes). ``composite``: 8-bit colour composites
#: (Galaxy Zoo, Legacy Survey viewer JPEG/PNG) as they come: already stretched (identity normalisation), with
#: brightness and colour jitter (such encoders otherwise order galaxies by colour and flux first), arbitrary
#: rotations, size scaling and blur, little noise (faint tidal features sit a few 8-bit levels above the sky)
#: and no integer shift (the affine jitters the centre). docs/BENCHMARKS.md has the study behind it.
PRESETS: dict[str, dict[str, Any]] = {
    "survey": {},
    "composite": {
        "normalisation": "identity", "max_angle": 180.0, "scale_range": (0.75, 1.33), "crop_jitter": 3.0,
        "blur_sigma": (0.0, 1.0), "noise_sigma": (0.0, 0.01), "max_shift": 0, "brightness": 0.5,
        "colour": 0.3, "grey_prob": 0.2,
    },
}  # fmt: skip


@dataclass
class AugmentParams:
    """The optional augmentations' parameters, declared once (see :class:`~encoders.training.augment.GalaxyAugment`).

    The defaults are the ``survey`` training defaults: integer shifts and a little Gaussian noise; every
    transform that resamples or dims pixels is off (they cost CPU time and blur close pairs of nuclei).

    Parameters
    ----------
    max_shift : int
        Largest integer shift in pixels of :func:`~encoders.training.augment.random_shift` (0 disables it).
    noise_sigma : tuple of float
        ``(low, high)`` of the Gaussian-noise level of :func:`~encoders.training.augment.gaussian_noise`
        (``(0, 0)`` disables it).
    max_angle : float
        Arbitrary-angle rotation range of :func:`~encoders.training.augment.random_affine` in degrees.
    scale_range : tuple of float
        Size scaling of :func:`~encoders.training.augment.random_affine` (``(1, 1)`` disables it).
    crop_jitter : float
        Sub-pixel centre jitter of :func:`~encoders.training.augment.random_affine` in pixels.
    blur_sigma : tuple of float
        Extra PSF width range of :func:`~encoders.training.augment.psf_blur` in pixels.
    band_noise : tuple of float
        Per-band noise level range of :func:`~encoders.training.augment.per_band_noise`.
    max_ebv : float
        Largest colour excess of :func:`~encoders.training.augment.redden`.
    band_drop : float
        Probability of :func:`~encoders.training.augment.band_dropout`.
    brightness, colour, grey_prob : float
        Ranges and probability of :func:`~encoders.training.augment.colour_jitter` (all 0 disables it).
    """

    max_shift: int = 4
    noise_sigma: tuple[float, float] = (0.0, 0.05)
    max_angle: float = 0.0
    scale_range: tuple[float, float] = (1.0, 1.0)
    crop_jitter: float = 0.0
    blur_sigma: tuple[float, float] = (0.0, 0.0)
    band_noise: tuple[float, float] = (0.0, 0.0)
    max_ebv: float = 0.0
    band_drop: float = 0.0
    brightness: float = 0.0
    colour: float = 0.0
    grey_prob: float = 0.0

    def __post_init__(self) -> None:
        for name in ("noise_sigma", "scale_range", "blur_sigma", "band_noise"):
            setattr(self, name, tuple(getattr(self, name)))

    def augment_params(self) -> dict[str, Any]:
        """This object's augmentation parameters only, by name."""
        return {f.name: getattr(self, f.name) for f in fields(AugmentParams)}


@dataclass
class TrainConfig(AugmentParams):
    """Everything that defines a training run (written to ``config.json``).

    Parameters
    ----------
    epochs : int
        Total number of passes over the stamps (a resumed run continues to this).
    batch_size : int
        Stamps per step (two augmented views each); capped at the number of stamps.
    lr : float
        Peak learning rate, reached after the warm-up (VICReg with LARS: ``0.2 * batch_size / 256``).
    weight_decay : float
        Weight decay (AdamW: decoupled; LARS: L2, paper 1e-6); not applied to biases and norm layers.
    optimizer : str
        ``"adamw"`` (default; robust at small batch sizes on CPU) or ``"lars"`` (the paper's).
    warmup_epochs : float
        Linear warm-up length from 0 to ``lr``; then cosine decay to ``lr * min_lr_ratio``.
    min_lr_ratio : float
        Final learning rate as a fraction of ``lr``.
    grad_clip : float
        Maximum global gradient norm (``0`` disables clipping).
    widths, blocks, stem_stride
        :class:`~encoders.training.backbone.ResNetEncoder` architecture.
    expander_dims : tuple of int
        :class:`~encoders.training.vicreg.Expander` widths.
    sim_coeff, std_coeff, cov_coeff : float
        VICReg weights (paper defaults 25, 25, 1).
    max_shift, noise_sigma, max_angle, scale_range, crop_jitter, blur_sigma, band_noise, max_ebv, ...
        The augmentations (also ``band_drop``, ``brightness``, ``colour``, ``grey_prob``), inherited from
        :class:`AugmentParams`, which documents them and holds their defaults.
    centre_prob : float
        Probability that a training stamp is shown, in both views, as its central half enlarged 2x
        (:func:`~encoders.training.augment.centre_view`); for encoders exported with ``--views full,centre``.
    seed : int
        Seeds weights, shuffling and augmentations (each epoch is reproducible).
    bands : tuple of str
        Band names, one per input plane (stored in the exported model).
    stamp_size : int
        Stamp side in pixels (stamps are square): the model's input, after ``fit``.
    fit, fit_fraction
        How the stamp files were brought to ``stamp_size`` (:class:`encoders.fit.Fit`; recorded, and
        exported as the model's ``fit`` and ``fit_fraction`` metadata so ingestion and the server do the same).
    lupton : LuptonParams
        Normalisation applied to the stamps (recorded; :func:`train` takes stamps
        already normalised with it).
    normalisation : str
        ``"lupton"`` (fluxes) or ``"identity"`` (images already stretched to [0, 1], e.g. PNG
        composites); recorded in the exported model.
    num_workers : int
        DataLoader worker processes fetching batches.
    max_steps : int or None
        Stop after this many optimiser steps in total, even mid-epoch.
    threads : int or None
        torch intra-op threads; ``None`` uses every CPU core this process may use.
    device : str
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda[:i]"``.
    precision : str
        ``"auto"``, ``"bf16"``, ``"fp16"`` (CUDA only, with gradient scaling) or ``"fp32"``.
        ``"auto"`` uses bfloat16 autocast on CUDA and on CPUs with native bfloat16
        (AVX512-BF16 / AMX), where it is much faster than float32 for this network;
        otherwise float32. Weights, optimiser and the VICReg loss stay float32 either way.
    log_every : int
        Steps per ``metrics.jsonl`` window line.
    diag_samples : int
        Stamps (a fixed, evenly spaced subset) embedded after every epoch for the
        diagnostics of :mod:`encoders.training.diagnostics` in ``metrics.jsonl``; 0 disables them.
    keep_checkpoints : bool
        Also keep a copy of the checkpoint of every epoch (and of the initial weights) as
        ``checkpoints/epoch_XXX.pt``, for studies across training.
    """

    epochs: int = 8
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.01
    grad_clip: float = 5.0
    widths: tuple[int, ...] = (32, 64, 128, 256)
    blocks: tuple[int, ...] = (1, 1, 1, 1)
    stem_stride: int = 2
    expander_dims: tuple[int, ...] = (512, 512, 512)
    sim_coeff: float = 25.0
    std_coeff: float = 25.0
    cov_coeff: float = 1.0
    centre_prob: float = 0.0
    seed: int = 0
    bands: tuple[str, ...] = ("u", "g", "r", "i", "z")
    stamp_size: int = 64
    lupton: LuptonParams = field(default_factory=LuptonParams)
    normalisation: str = "lupton"
    fit: str = "none"
    fit_fraction: float = DEFAULT_FIT_FRACTION
    num_workers: int = 0
    max_steps: int | None = None
    threads: int | None = None
    device: str = "auto"
    precision: str = "auto"
    log_every: int = 10
    diag_samples: int = 512
    keep_checkpoints: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("widths", "blocks", "expander_dims", "bands"):
            setattr(self, name, tuple(getattr(self, name)))
        self.bands = tuple(str(b) for b in self.bands)
        if isinstance(self.lupton, Mapping):
            self.lupton = LuptonParams.from_dict(self.lupton)
        for name in ("epochs", "batch_size", "stamp_size", "log_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        if self.lr <= 0:
            raise ValueError(f"TrainConfig.lr must be > 0, got {self.lr!r}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"TrainConfig.max_steps must be >= 1 or None, got {self.max_steps!r}")
        if not self.bands:
            raise ValueError("TrainConfig.bands must name at least one band")
        if self.precision not in ("auto", "bf16", "fp16", "fp32"):
            raise ValueError(f"TrainConfig.precision must be 'auto', 'bf16', 'fp16' or 'fp32', got {self.precision!r}")
        if self.optimizer not in ("adamw", "lars"):
            raise ValueError(f"TrainConfig.optimizer must be 'adamw' or 'lars', got {self.optimizer!r}")
        if self.normalisation not in ("lupton", "identity"):
            raise ValueError(f"TrainConfig.normalisation must be 'lupton' or 'identity', got {self.normalisation!r}")
        try:
            self.fit_fraction = Fit(self.fit, self.fit_fraction).fraction
        except ValueError as exc:
            raise ValueError(f"TrainConfig: {exc}") from None

    @property
    def fitting(self) -> Fit:
        """The :class:`~encoders.fit.Fit` of ``fit`` and ``fit_fraction``."""
        return Fit(self.fit, self.fit_fraction)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/``torch.load(weights_only=True)``-safe values."""
        out = asdict(self)
        out["lupton"] = self.lupton.to_dict()
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`.

        Raises
        ------
        ValueError
            On keys that are not :class:`TrainConfig` fields.
        """
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"TrainConfig.from_dict got unknown keys {sorted(unknown)}")
        return cls(**dict(data))
