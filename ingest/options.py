"""What an ingest run reads (:class:`IngestInput`) and how it runs (:class:`IngestOptions`), defaults in one place.

Standard library only, so that the ``ssald ingest`` parser can take its flag defaults from here without
loading numpy.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from encoders.fit import Fit

__all__ = ["ENGINES", "MAX_NAN_FRACTION", "IngestInput", "IngestOptions"]

#: Stamps with a larger fraction of non-finite pixels are quarantined (default of ``--max-nan-fraction``).
MAX_NAN_FRACTION = 0.2

#: ``local``: worker processes and threads on this machine; ``ray``: the same stages as Ray Data.
ENGINES = ("local", "ray")


@dataclass(frozen=True)
class IngestInput:
    """Where the stamps and the catalogue are, and how to read them.

    Parameters
    ----------
    data : path or None
        Folder of stamps (``data/stamps/*``, ``data/images/*`` or ``data/*``: FITS, NPY, PNG/JPEG), folder of
        per-band FITS (with ``band_pattern``), or an HDF5/NPZ/NPY array file; ``None`` with ``frames``.
    catalogue : path, optional
        Catalogue joined on objid (see :func:`ingest.catalogue.read_catalogue`); needed for ``frames``.
    bands : sequence of str, optional
        Band names for formats that carry none (PNG/JPEG planes bluest first, NPY, arrays).
    band_pattern : str, optional
        Per-band file names, e.g. ``"{objid}_{band}.fits"``.
    frames : sequence of path
        Survey frames with WCS; one cutout of ``cutout_size`` per catalogue row.
    cutout_size : int, optional
        Cutout side in pixels (default: the model's stamp size).
    column_map : mapping, optional
        ``{schema_column: catalogue_column}`` overriding the catalogue aliases.
    images_key, objid_key : str
        Dataset names in HDF5/NPZ inputs (``objid_key`` also names the ``.npy`` of objids beside an array).
    """

    data: str | os.PathLike[str] | None
    catalogue: str | os.PathLike[str] | None = None
    bands: Sequence[str] | None = None
    band_pattern: str | None = None
    frames: Sequence[str | os.PathLike[str]] = ()
    cutout_size: int | None = None
    column_map: Mapping[str, str] | None = None
    images_key: str = "images"
    objid_key: str = "objid"

    def __post_init__(self) -> None:
        object.__setattr__(self, "frames", tuple(self.frames or ()))
        if self.bands is not None:
            object.__setattr__(self, "bands", tuple(str(b) for b in self.bands))


@dataclass(frozen=True)
class IngestOptions:
    """How an ingest run works: batching, processes, validation, the model's fit, what to replace.

    Parameters
    ----------
    batch_size : int, optional
        Stamps per ONNX Runtime call (default: the embedder's, 256 on the CPU, 1024 on CUDA).
    chunk_size : int
        Stamps per table commit: a crash loses at most the chunk in flight.
    progress : bool
        Show a progress bar.
    workers : int, optional
        Decoding processes; ``0``: none, a thread of this process decodes (default:
        :func:`ingest.job.default_workers`).
    intra_op_threads : int, optional
        ONNX Runtime CPU threads (default: all cores).
    engine : {"local", "ray"}
        ``"ray"`` runs the same stages as Ray Data (:mod:`ingest.ray_engine`).
    max_nan_fraction : float
        Stamps with a larger fraction of non-finite pixels are quarantined.
    fit : {"none", "crop", "bin", "resample"} or Fit, optional
        How stamps are brought to the model's size (:class:`encoders.fit.Fit`). Default: the model's contract
        (its ``fit`` metadata), so stamps are fitted as the training stamps were; a different fit warns.
    fit_fraction : float, optional
        ``resample``'s central fraction (default: the model's when ``fit`` is the model's mode, else 0.5).
    reembed : bool
        Allow a table holding another model's embeddings: every input stamp is embedded with this
        model and rows of other models left without a stamp are removed, so the table never mixes models.
    refresh : bool
        Re-embed objids this model has already embedded (default: skip them, which makes re-runs resume).
    morphology : bool
        Measure each stamp's non-parametric morphology into the ``morph_*`` columns (:mod:`encoders.morphology`;
        the local engine only: the Ray engine leaves them null).
    providers : str or sequence of str, optional
        ONNX Runtime execution providers (:func:`encoders.providers.resolve_providers`): ``"cuda"`` insists on
        the GPU and fails when it cannot start; default ``SSALD_PROVIDERS``, else CUDA when usable, else CPU.

    Raises
    ------
    ValueError
        If ``batch_size`` or ``chunk_size`` is below 1, or ``engine`` is unknown.
    """

    batch_size: int | None = None
    chunk_size: int = 2048
    progress: bool = True
    workers: int | None = None
    intra_op_threads: int | None = None
    engine: str = "local"
    max_nan_fraction: float = MAX_NAN_FRACTION
    fit: str | Fit | None = None
    fit_fraction: float | None = None
    reembed: bool = False
    refresh: bool = False
    morphology: bool = True
    providers: str | Sequence[str] | None = None

    def __post_init__(self) -> None:
        if (self.batch_size is not None and self.batch_size < 1) or self.chunk_size < 1:
            raise ValueError(f"batch_size and chunk_size must be >= 1, got {self.batch_size} and {self.chunk_size}")
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be 'local' or 'ray', got {self.engine!r}")
