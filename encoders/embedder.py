"""ONNX Runtime embedder: the serving path from stamps to embeddings (no torch).

:class:`OnnxEmbedder` loads a model written by :func:`encoders.training.onnx_export.export_onnx`,
reads its preprocessing contract from the ONNX ``metadata_props`` (bands, stamp size,
Lupton parameters, embedding dimension, model id, how images are fitted to the stamp size)
and refuses input that breaks it. Imports only onnxruntime and numpy (plus :mod:`encoders.normalise`),
so the server and ingest workers run without torch.

The session runs on the execution providers of :mod:`encoders.providers`. On CUDA each batch goes through
IO binding: the stamps are copied once into a device buffer, the embeddings are bound on the device and
copied back once, and every batch has the same shape (the last one is padded) so cuDNN tunes its
convolutions once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

try:
    import onnxruntime as ort
except ImportError as _exc:  # neither extra installed
    raise ImportError(
        "ONNX Runtime is not installed: install ssald[cpu] (pip install -e '.[cpu]') or, on a machine with "
        "an NVIDIA GPU, ssald[gpu] (onnxruntime-gpu); never both"
    ) from _exc

from encoders.fit import Fit
from encoders.normalise import NORMALISATIONS, LuptonParams, normaliser
from encoders.providers import ACCELERATORS, DEFAULT_BATCH_SIZE, Provider, open_session

__all__ = ["REQUIRED_METADATA", "OnnxEmbedder"]

#: Metadata keys every SSALD model must carry (docs/CONTRACTS.md).
REQUIRED_METADATA = (
    "bands",
    "stamp_size",
    "lupton_q",
    "lupton_stretch",
    "lupton_minimum",
    "embedding_dim",
    "model_id",
)


class OnnxEmbedder:
    """Embed normalised stamps with an exported SSALD ONNX model.

    Parameters
    ----------
    path : str or Path
        The ``.onnx`` file.
    providers : str or list, optional
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"tensorrt"``, or a list of ONNX Runtime execution providers in
        order of preference (see :func:`encoders.providers.resolve_providers`). Default:
        ``SSALD_PROVIDERS`` when set, else ``"auto"`` (CUDA first when this ONNX Runtime build has it).
    intra_op_threads : int, optional
        Threads of the CPU provider; default lets ONNX Runtime use every core.
    io_binding : bool, optional
        Run batches through IO binding (one copy of the stamps into a buffer on the session's device, the
        embeddings bound there and copied back once). Default: on CUDA only, where it saves ONNX Runtime's
        own staging copies; on the CPU the plain call is as fast.
    device_id : int
        GPU of the CUDA and TensorRT providers.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the model lacks the metadata of the contract or its values are malformed, or a provider name
        is unknown.
    encoders.providers.ProviderUnavailable
        If an accelerator was named (not ``"auto"``) and this ONNX Runtime build lacks it or it could not
        start (ONNX Runtime itself would quietly run on the CPU).

    Examples
    --------
    >>> emb = OnnxEmbedder("model.onnx", providers="cuda")   # doctest: +SKIP
    >>> vectors = emb.embed_raw(cubes)                       # doctest: +SKIP
    """

    def __init__(
        self,
        path: str | Path,
        providers: str | Sequence[Provider] | None = None,
        intra_op_threads: int | None = None,
        io_binding: bool | None = None,
        device_id: int = 0,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"ONNX model {self.path} does not exist")
        self.session = open_session(self.path, providers, intra_op_threads, device_id)
        self.device = "cuda" if any(p in ACCELERATORS for p in self.session.get_providers()) else "cpu"
        self.device_id = int(device_id)
        self.io_binding = self.device == "cuda" if io_binding is None else bool(io_binding)
        self._binding: Any = None
        self._bound: tuple[Any, Any] | None = None
        self._input = self.session.get_inputs()[0].name
        self._output = self.session.get_outputs()[0].name
        # float32 in and out is the contract (an fp16 export casts inside the graph); a model that takes
        # float16 directly is fed float16.
        float16 = self.session.get_inputs()[0].type == "tensor(float16)"
        self._input_dtype = np.dtype(np.float16 if float16 else np.float32)
        self._metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        missing = [k for k in REQUIRED_METADATA if k not in self._metadata]
        if missing:
            raise ValueError(
                f"ONNX model {self.path} lacks metadata {missing} required by docs/CONTRACTS.md; "
                "export it with encoders.training.onnx_export.export_onnx"
            )
        try:
            self._bands = tuple(b.strip() for b in self._metadata["bands"].split(","))
            self._stamp_size = int(self._metadata["stamp_size"])
            self._embedding_dim = int(self._metadata["embedding_dim"])
        except ValueError as exc:
            raise ValueError(f"ONNX model {self.path} has malformed metadata: {exc}") from exc
        self._lupton = LuptonParams.from_metadata(self._metadata)
        self._normalisation = self._metadata.get("normalisation", "lupton")  # models before it was recorded
        if self._normalisation not in NORMALISATIONS:
            raise ValueError(
                f"ONNX model {self.path} has normalisation={self._normalisation!r}; "
                f"this embedder knows {NORMALISATIONS}"
            )
        self._normalise = normaliser(self._normalisation, self._lupton)
        try:
            self._fit = Fit.from_metadata(self._metadata)
        except ValueError as exc:
            raise ValueError(f"ONNX model {self.path} has malformed fit metadata: {exc}") from exc

    @property
    def bands(self) -> tuple[str, ...]:
        """Band names the model expects, in input-plane order."""
        return self._bands

    @property
    def stamp_size(self) -> int:
        """Stamp side in pixels the model expects."""
        return self._stamp_size

    @property
    def embedding_dim(self) -> int:
        """Dimension ``D`` of the embeddings."""
        return self._embedding_dim

    @property
    def model_id(self) -> str:
        """Content hash identifying the model's weights."""
        return self._metadata["model_id"]

    @property
    def lupton(self) -> LuptonParams:
        """Normalisation the model was trained with."""
        return self._lupton

    @property
    def normalisation(self) -> str:
        """``"lupton"`` (raw fluxes are Lupton-stretched) or ``"identity"`` (images already in [0, 1])."""
        return self._normalisation

    @property
    def fit(self) -> Fit:
        """How images are brought to :attr:`stamp_size`, as the training stamps were (``none`` for older models)."""
        return self._fit

    @property
    def metadata(self) -> dict[str, str]:
        """A copy of all ONNX ``metadata_props``."""
        return dict(self._metadata)

    @property
    def providers(self) -> list[str]:
        """Execution providers the session actually uses."""
        return self.session.get_providers()

    @property
    def default_batch_size(self) -> int:
        """Stamps per call when none is given: :data:`encoders.providers.DEFAULT_BATCH_SIZE` of :attr:`device`."""
        return DEFAULT_BATCH_SIZE[self.device]

    def __repr__(self) -> str:
        return (
            f"OnnxEmbedder({str(self.path)!r}, model_id={self.model_id!r}, bands={','.join(self.bands)}, "
            f"stamp_size={self.stamp_size}, embedding_dim={self.embedding_dim}, providers={self.providers})"
        )

    def _check(self, stamps: np.ndarray, what: str) -> np.ndarray:
        array = np.asarray(stamps)
        if array.ndim == 3:
            array = array[np.newaxis]
        expected = (len(self.bands), self.stamp_size, self.stamp_size)
        if array.ndim != 4:
            raise ValueError(f"{what} must have shape (N, {', '.join(map(str, expected))}), got {array.shape}")
        if array.shape[1] != expected[0]:
            raise ValueError(
                f"{what} have {array.shape[1]} bands but model {self.model_id} expects "
                f"{expected[0]} ({','.join(self.bands)})"
            )
        if array.shape[2:] != expected[1:]:
            raise ValueError(
                f"{what} are {array.shape[2]}x{array.shape[3]} pixels but model {self.model_id} "
                f"expects {self.stamp_size}x{self.stamp_size}"
            )
        if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
            raise ValueError(f"{what} have dtype {array.dtype}; expected a numeric array")
        return array

    def _check_normalised(self, array: np.ndarray) -> None:
        """Refuse stamps that cannot be the output of the model's normalisation (values in [0, 1])."""
        if array.size == 0:
            return
        if not np.all(np.isfinite(array)):
            raise ValueError(f"stamps contain NaN or infinite values; model {self.model_id} expects finite input")
        lo, hi = float(array.min()), float(array.max())
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise ValueError(
                f"stamps have values in [{lo:.4g}, {hi:.4g}] but model {self.model_id} expects stamps "
                f"normalised to [0, 1] ({self.normalisation}); pass raw cubes to embed_raw instead"
            )

    def embed(self, normalised: np.ndarray, batch_size: int | None = None, check_range: bool = True) -> np.ndarray:
        """Embed stamps already normalised with :attr:`lupton`.

        Parameters
        ----------
        normalised : numpy.ndarray
            ``(N, n_bands, stamp_size, stamp_size)`` (or one ``(n_bands, H, W)`` stamp).
        batch_size : int, optional
            Stamps per ONNX Runtime call (default :attr:`default_batch_size`).
        check_range : bool
            Refuse values that are not finite or outside [0, 1]; a caller that normalised the stamps
            itself with the model's normaliser (ingestion) skips this pass over the pixels.

        Returns
        -------
        numpy.ndarray
            float32 ``(N, embedding_dim)``, rows of unit L2 norm.

        Raises
        ------
        ValueError
            If the band count, stamp size or rank differ from the model's contract, or (with
            ``check_range``) the values are not finite and within [0, 1] (the range of every normalisation).
        """
        array = self._check(normalised, "stamps")
        if check_range:
            self._check_normalised(array)
        batch_size = self.default_batch_size if batch_size is None else int(batch_size)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        out = np.empty((len(array), self.embedding_dim), dtype=np.float32)
        for start in range(0, len(array), batch_size):
            chunk = np.ascontiguousarray(array[start : start + batch_size], dtype=self._input_dtype)
            if self.io_binding:
                out[start : start + len(chunk)] = self._run_bound(chunk, batch_size)
            else:
                out[start : start + len(chunk)] = self.session.run([self._output], {self._input: chunk})[0]
        return out

    def _run_bound(self, chunk: np.ndarray, batch_size: int) -> np.ndarray:
        """One batch through IO binding: stamps copied once into the device buffer, embeddings read back once.

        The buffers are kept between calls and reallocated only when the batch shape changes. On CUDA a
        short batch is padded to ``batch_size`` so that every call has one shape: cuDNN picks its convolution
        algorithms per input shape, and a new shape costs a new search.
        """
        n = len(chunk)
        rows = max(n, batch_size) if self.device == "cuda" else n
        if rows != n:
            padded = np.zeros((rows, *chunk.shape[1:]), dtype=chunk.dtype)
            padded[:n] = chunk
            chunk = padded
        if self._bound is None or self._bound[0].shape()[0] != rows:
            self._binding = self.session.io_binding()
            stamps = ort.OrtValue.ortvalue_from_shape_and_type(chunk.shape, chunk.dtype, self.device, self.device_id)
            vectors = ort.OrtValue.ortvalue_from_shape_and_type(
                (rows, self.embedding_dim), np.float32, self.device, self.device_id
            )
            self._binding.bind_ortvalue_input(self._input, stamps)
            self._binding.bind_ortvalue_output(self._output, vectors)
            self._bound = (stamps, vectors)
        stamps, vectors = self._bound
        stamps.update_inplace(chunk)
        self.session.run_with_iobinding(self._binding)
        return vectors.numpy()[:n]

    def embed_raw(self, cubes: np.ndarray | Sequence[np.ndarray], batch_size: int | None = None) -> np.ndarray:
        """Normalise raw cubes as the model was trained (:attr:`normalisation`, :attr:`lupton`), then embed them.

        Parameters
        ----------
        cubes : numpy.ndarray or sequence of numpy.ndarray
            Raw fluxes ``(N, n_bands, H, W)`` or one ``(n_bands, H, W)`` cube.
        batch_size : int, optional
            Stamps per ONNX Runtime call (normalisation is done per batch too; default :attr:`default_batch_size`).

        Returns
        -------
        numpy.ndarray
            float32 ``(N, embedding_dim)``.
        """
        array = self._check(np.asarray(cubes), "cubes")
        batch_size = self.default_batch_size if batch_size is None else int(batch_size)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        out = np.empty((len(array), self.embedding_dim), dtype=np.float32)
        for start in range(0, len(array), batch_size):
            chunk = self._normalise(array[start : start + batch_size])
            out[start : start + len(chunk)] = self.embed(chunk, batch_size=batch_size)
        return out
