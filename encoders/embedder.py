"""ONNX Runtime embedder: the serving path from stamps to embeddings (no torch).

:class:`OnnxEmbedder` loads a model written by :func:`encoders.training.onnx_export.export_onnx`,
reads its preprocessing contract from the ONNX ``metadata_props`` (bands, stamp size,
Lupton parameters, embedding dimension, model id, how images are fitted to the stamp size)
and refuses input that breaks it.
Imports only onnxruntime and numpy (plus :mod:`encoders.normalise`), so the server
and ingest workers run without torch.

Execution providers: ``"cpu"``, ``"cuda"`` or ``"tensorrt"`` (or ONNX Runtime's own names and
``(name, options)`` pairs). ONNX Runtime quietly falls back to the CPU when an accelerator it was
asked for cannot start; the embedder checks the session it got and raises :class:`ProviderUnavailable`
naming what is missing instead. On CUDA each batch goes through IO binding: the stamps are copied
once into a device buffer, the embeddings are bound on the device and copied back once, and every
batch has the same shape (the last one is padded) so cuDNN tunes its convolutions once.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
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

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "PROVIDER_ALIASES",
    "REQUIRED_METADATA",
    "BatchSweep",
    "OnnxEmbedder",
    "ProviderUnavailable",
    "default_providers",
    "resolve_providers",
    "sweep_batch_size",
]

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

#: Short provider names accepted wherever providers are given (``--providers``, ``SSALD_PROVIDERS``).
PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}

#: Stamps per ONNX Runtime call when the caller gives none, by device. CPU: the batch the ingestion
#: figures were measured at; CUDA: large enough to fill an H100-class GPU with the default 64x64 ResNet
#: (:func:`sweep_batch_size` measures the best for a given model and card; docs/BENCHMARKS.md).
DEFAULT_BATCH_SIZE = {"cpu": 256, "cuda": 1024}

_ACCELERATORS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")

Provider = str | tuple[str, dict[str, Any]]


class ProviderUnavailable(RuntimeError):
    """An execution provider that was asked for is not in this ONNX Runtime build or could not start."""


def default_providers() -> list[str]:
    """``["CUDAExecutionProvider", "CPUExecutionProvider"]`` when CUDA is available, else CPU only."""
    available = ort.get_available_providers()
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _provider_name(provider: Provider) -> str:
    return provider[0] if isinstance(provider, tuple) else provider


def resolve_providers(providers: str | Sequence[Provider] | None = None) -> tuple[list[Provider], bool]:
    """The provider list for a session, and whether its accelerators are required.

    Parameters
    ----------
    providers : str or sequence, optional
        ``None``: the ``SSALD_PROVIDERS`` environment variable when set, else ``"auto"``.
        ``"auto"``: :func:`default_providers` (CUDA when this build has it, not required).
        ``"cpu"``, ``"cuda"``, ``"tensorrt"`` or a comma-separated list of them: those, then the ones below
        them (TensorRT falls back to CUDA for the nodes it does not take, both to the CPU), required.
        A sequence: ONNX Runtime names, aliases or ``(name, options)`` pairs, in order, required.

    Returns
    -------
    list
        Providers in order of preference, ending with ``CPUExecutionProvider``.
    bool
        True when the caller named the providers: an accelerator among them that does not start is an error.

    Raises
    ------
    ValueError
        If a name is neither an alias nor an ONNX Runtime provider name.
    """
    if providers is None:
        providers = os.environ.get("SSALD_PROVIDERS", "").strip() or "auto"
    if isinstance(providers, str):
        if providers.strip().lower() == "auto":
            return list(default_providers()), False
        providers = [p.strip() for p in providers.split(",") if p.strip()]
        chain: list[Provider] = []
        for name in providers:
            key = name.lower()
            below = {"tensorrt": ["tensorrt", "cuda", "cpu"], "cuda": ["cuda", "cpu"]}.get(key, [key])
            chain += [PROVIDER_ALIASES.get(k, k) for k in below]
        providers = chain
    out: list[Provider] = []
    for provider in providers:
        name = _provider_name(provider)
        name = PROVIDER_ALIASES.get(name.lower(), name)
        if name not in PROVIDER_ALIASES.values() and not name.endswith("ExecutionProvider"):
            raise ValueError(
                f"unknown execution provider {name!r}: expected one of {', '.join(PROVIDER_ALIASES)}, 'auto', "
                "or an ONNX Runtime provider name"
            )
        if name not in [_provider_name(p) for p in out]:
            out.append((name, provider[1]) if isinstance(provider, tuple) else name)
    if "CPUExecutionProvider" not in [_provider_name(p) for p in out]:
        out.append("CPUExecutionProvider")
    return out, True


def _preload_cuda_libraries() -> None:
    """Load the CUDA and cuDNN libraries of ``nvidia-*`` wheels wherever they are on ``sys.path``.

    ``onnxruntime.preload_dlls`` looks only in the site-packages beside onnxruntime itself; a CUDA torch
    installed elsewhere (another prefix, ``--target`` folders on ``PYTHONPATH``) brings the same libraries,
    which the CUDA provider then finds by soname once loaded. Libraries that fail to load are left to the
    provider, whose own error names them.
    """
    import ctypes

    spec = importlib.util.find_spec("nvidia")
    if spec is None or not spec.submodule_search_locations:
        return
    order = ("libcudart.so", "libcublasLt.so", "libcublas.so", "libcurand.so", "libcufft.so", "libnvrtc.so",
             "libcudnn_graph.so", "libcudnn_engines", "libcudnn_ops.so", "libcudnn_cnn.so", "libcudnn_adv.so",
             "libcudnn_heuristic.so", "libcudnn.so")  # fmt: skip
    libraries = [p for root in spec.submodule_search_locations for p in Path(root).glob("*/lib/lib*.so.*")]
    for prefix in order:
        for path in sorted(p for p in libraries if p.name.startswith(prefix)):
            try:
                ctypes.CDLL(os.fspath(path), mode=ctypes.RTLD_GLOBAL)
            except OSError:
                continue


def _with_options(providers: list[Provider], device_id: int) -> list[Provider]:
    """Give CUDA its device and TensorRT a device, fp16 and an engine cache (building engines takes minutes)."""
    out: list[Provider] = []
    for provider in providers:
        if isinstance(provider, tuple):
            out.append(provider)
        elif provider == "CUDAExecutionProvider":
            out.append((provider, {"device_id": device_id}))
        elif provider == "TensorrtExecutionProvider":
            cache = os.environ.get("SSALD_TRT_CACHE", os.path.join(tempfile.gettempdir(), "ssald_trt_cache"))
            options = {"device_id": device_id, "trt_fp16_enable": True, "trt_engine_cache_enable": True,
                       "trt_engine_cache_path": cache}  # fmt: skip
            out.append((provider, options))
        else:
            out.append(provider)
    return out


def _check_started(requested: list[Provider], started: list[str], path: Path) -> None:
    """Raise :class:`ProviderUnavailable` for an accelerator that was asked for but did not start."""
    available = ort.get_available_providers()
    build = f"onnxruntime {ort.__version__} (providers {', '.join(available)})"
    for name in (_provider_name(p) for p in requested):
        if name == "CPUExecutionProvider" or name in started:
            continue
        if name not in available:
            hint = (
                "install ssald[gpu] (onnxruntime-gpu) in place of ssald[cpu]"
                if name in _ACCELERATORS
                else "install an ONNX Runtime build that has it"
            )
            raise ProviderUnavailable(f"{name} was asked for but this ONNX Runtime build has none: {build}; {hint}")
        missing = (
            "TensorRT 10 libraries (libnvinfer) on the library path"
            if name == "TensorrtExecutionProvider"
            else "a visible NVIDIA GPU (nvidia-smi, CUDA_VISIBLE_DEVICES), a CUDA 13 driver, and the CUDA 13 "
            "runtime, cuBLAS, cuRAND and cuDNN 9 libraries (pip install nvidia-cuda-runtime nvidia-cublas "
            "nvidia-curand nvidia-cudnn-cu13, or a CUDA build of torch)"
        )
        raise ProviderUnavailable(
            f"{name} is in {build} but could not start for model {path} (the session fell back to "
            f"{', '.join(started)}; ONNX Runtime's warning above says why). It needs {missing}"
        )


class OnnxEmbedder:
    """Embed normalised stamps with an exported SSALD ONNX model.

    Parameters
    ----------
    path : str or Path
        The ``.onnx`` file.
    providers : str or list, optional
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"tensorrt"``, or a list of ONNX Runtime execution providers in
        order of preference (see :func:`resolve_providers`). Default: ``SSALD_PROVIDERS`` when set, else
        ``"auto"`` (CUDA first when this ONNX Runtime build has it).
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
    ProviderUnavailable
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
        requested, required = resolve_providers(providers)
        names = [_provider_name(p) for p in requested]
        if any(n in _ACCELERATORS for n in names) and any(n in ort.get_available_providers() for n in _ACCELERATORS):
            _preload_cuda_libraries()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle intra-op threads sleep instead of spinning: ingestion decodes stamps on the same cores, and a
        # spinning pool burns the CPU time the decoding workers need between batches.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if intra_op_threads is not None:
            options.intra_op_num_threads = int(intra_op_threads)
        if required:  # not in this build at all: say so before ONNX Runtime warns and falls back
            _check_started(requested, ort.get_available_providers(), self.path)
        self.session = ort.InferenceSession(
            os.fspath(self.path), sess_options=options, providers=_with_options(requested, device_id)
        )
        if required:
            _check_started(requested, self.session.get_providers(), self.path)
        self.device = "cuda" if any(p in _ACCELERATORS for p in self.session.get_providers()) else "cpu"
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
        """Stamps per call when none is given: :data:`DEFAULT_BATCH_SIZE` of :attr:`device`."""
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


@dataclass(frozen=True)
class BatchSweep:
    """What :func:`sweep_batch_size` measured.

    Attributes
    ----------
    best : int
        The smallest batch size within ``tolerance`` of the fastest rate (smaller batches hold less memory
        and wait less for the stamps to fill them).
    rates : dict of int to float
        Stamps per second at each batch size tried, in the order tried.
    stopped : str
        Why the sweep stopped before its last candidate (``""`` when it did not): out of memory, time, or
        the rate falling.
    """

    best: int
    rates: dict[int, float]
    stopped: str = ""


def sweep_batch_size(
    embedder: OnnxEmbedder,
    candidates: Sequence[int] = (256, 512, 1024, 2048, 4096, 8192),
    seconds_per_size: float = 1.0,
    max_seconds: float = 60.0,
    tolerance: float = 0.03,
    seed: int = 0,
) -> BatchSweep:
    """Measure the embedder's throughput at each batch size and return the best.

    Each size gets one warm-up call (memory allocation, cuDNN's algorithm search) and then as many timed
    calls as fit in ``seconds_per_size`` (at least two), on random stamps in [0, 1] resident in host memory:
    the cost of moving them to the device is part of what is measured, as it is in ingestion.

    Parameters
    ----------
    embedder : OnnxEmbedder
        The model and providers to measure.
    candidates : sequence of int
        Batch sizes, in increasing order.
    seconds_per_size : float
        Timed seconds per batch size.
    max_seconds : float
        Stop trying larger sizes once the sweep has run this long.
    tolerance : float
        ``best`` is the smallest size whose rate is within this fraction of the fastest.
    seed : int
        Seeds the random stamps.

    Returns
    -------
    BatchSweep

    Raises
    ------
    ValueError
        If ``candidates`` is empty or holds a size below 1.
    """
    sizes = [int(c) for c in candidates]
    if not sizes or min(sizes) < 1:
        raise ValueError(f"candidates must be batch sizes >= 1, got {list(candidates)}")
    shape = (len(embedder.bands), embedder.stamp_size, embedder.stamp_size)
    stamps = np.random.default_rng(seed).random((max(sizes), *shape), dtype=np.float32)
    rates: dict[int, float] = {}
    stopped = ""
    start = time.perf_counter()
    for size in sizes:
        if time.perf_counter() - start > max_seconds:
            stopped = f"time: {max_seconds:.0f} s spent before batch {size}"
            break
        batch = stamps[:size]
        try:
            embedder.embed(batch, batch_size=size, check_range=False)
            calls, t0 = 0, time.perf_counter()
            while calls < 2 or time.perf_counter() - t0 < seconds_per_size:
                embedder.embed(batch, batch_size=size, check_range=False)
                calls += 1
            rates[size] = calls * size / (time.perf_counter() - t0)
        except (MemoryError, RuntimeError) as exc:  # ORT raises RuntimeError subclasses when memory runs out
            stopped = f"batch {size} failed: {str(exc).splitlines()[0][:200]}"
            break
        if len(rates) >= 3 and rates[size] < 0.8 * max(rates.values()):
            stopped = f"rate falling at batch {size}"
            break
    if not rates:
        raise RuntimeError(f"no batch size could be measured: {stopped}")
    fastest = max(rates.values())
    best = min(b for b, r in rates.items() if r >= (1 - tolerance) * fastest)
    return BatchSweep(best, rates, stopped)
