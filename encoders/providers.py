"""ONNX Runtime execution providers: names, defaults, and sessions that really run where they were asked to.

Providers are named ``"cpu"``, ``"cuda"`` or ``"tensorrt"`` (or by ONNX Runtime's own names and
``(name, options)`` pairs). ONNX Runtime quietly falls back to the CPU when an accelerator it was asked for
cannot start; :func:`open_session` checks the session it got and raises :class:`ProviderUnavailable` naming
what is missing instead. :data:`DEFAULT_BATCH_SIZE` is the batch each device runs well at, and
:func:`sweep_batch_size` measures the best one for a given model and card.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnxruntime as ort

__all__ = [
    "ACCELERATORS",
    "DEFAULT_BATCH_SIZE",
    "PROVIDER_ALIASES",
    "BatchSweep",
    "Provider",
    "ProviderUnavailable",
    "default_providers",
    "open_session",
    "provider_name",
    "resolve_providers",
    "sweep_batch_size",
]

#: Short provider names accepted wherever providers are given (``--providers``, ``SSALD_PROVIDERS``).
PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}

#: Stamps per ONNX Runtime call when the caller gives none, by device: on the CPU a batch that keeps
#: inference efficient without holding many stamps, on CUDA one large enough to keep a data-centre GPU busy
#: with the default 64x64 ResNet (docs/BENCHMARKS.md has the measurements).
DEFAULT_BATCH_SIZE = {"cpu": 256, "cuda": 1024}

#: Providers that run on a GPU; a session using one of them is on device ``"cuda"``.
ACCELERATORS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")

#: An ONNX Runtime provider name or alias, or a ``(name, options)`` pair.
Provider = str | tuple[str, dict[str, Any]]


class ProviderUnavailable(RuntimeError):
    """An execution provider that was asked for is not in this ONNX Runtime build or could not start."""


def default_providers() -> list[str]:
    """``["CUDAExecutionProvider", "CPUExecutionProvider"]`` when CUDA is available, else CPU only."""
    available = ort.get_available_providers()
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def provider_name(provider: Provider) -> str:
    """The name of a provider given as a name or a ``(name, options)`` pair."""
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
        name = provider_name(provider)
        name = PROVIDER_ALIASES.get(name.lower(), name)
        if name not in PROVIDER_ALIASES.values() and not name.endswith("ExecutionProvider"):
            raise ValueError(
                f"unknown execution provider {name!r}: expected one of {', '.join(PROVIDER_ALIASES)}, 'auto', "
                "or an ONNX Runtime provider name"
            )
        if name not in [provider_name(p) for p in out]:
            out.append((name, provider[1]) if isinstance(provider, tuple) else name)
    if "CPUExecutionProvider" not in [provider_name(p) for p in out]:
        out.append("CPUExecutionProvider")
    return out, True


def open_session(
    path: Path,
    providers: str | Sequence[Provider] | None = None,
    intra_op_threads: int | None = None,
    device_id: int = 0,
) -> ort.InferenceSession:
    """An ONNX Runtime session of the model at ``path`` on the providers asked for.

    Parameters
    ----------
    path : Path
        The ``.onnx`` file.
    providers : str or sequence, optional
        As for :func:`resolve_providers`.
    intra_op_threads : int, optional
        Threads of the CPU provider; default lets ONNX Runtime use every core.
    device_id : int
        GPU of the CUDA and TensorRT providers.

    Returns
    -------
    onnxruntime.InferenceSession

    Raises
    ------
    ValueError
        If a provider name is unknown.
    ProviderUnavailable
        If an accelerator was named (not ``"auto"``) and this ONNX Runtime build lacks it or it could not
        start (ONNX Runtime itself would quietly run on the CPU).
    """
    requested, required = resolve_providers(providers)
    names = [provider_name(p) for p in requested]
    if any(n in ACCELERATORS for n in names) and any(n in ort.get_available_providers() for n in ACCELERATORS):
        _preload_cuda_libraries()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle intra-op threads sleep instead of spinning: ingestion decodes stamps on the same cores, and a
    # spinning pool burns the CPU time the decoding workers need between batches.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if intra_op_threads is not None:
        options.intra_op_num_threads = int(intra_op_threads)
    if required:  # not in this build at all: say so before ONNX Runtime warns and falls back
        _check_started(requested, ort.get_available_providers(), path)
    session = ort.InferenceSession(os.fspath(path), sess_options=options, providers=_with_options(requested, device_id))
    if required:
        _check_started(requested, session.get_providers(), path)
    return session


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
    for name in (provider_name(p) for p in requested):
        if name == "CPUExecutionProvider" or name in started:
            continue
        if name not in available:
            hint = (
                "install ssald[gpu] (onnxruntime-gpu) in place of ssald[cpu]"
                if name in ACCELERATORS
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


class _Embedder(Protocol):
    """What :func:`sweep_batch_size` needs of an :class:`~encoders.embedder.OnnxEmbedder`."""

    @property
    def bands(self) -> tuple[str, ...]: ...

    @property
    def stamp_size(self) -> int: ...

    def embed(self, normalised: np.ndarray, batch_size: int | None = None, check_range: bool = True) -> np.ndarray: ...


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
    embedder: _Embedder,
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
    embedder : encoders.embedder.OnnxEmbedder
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
    RuntimeError
        If not even the first batch size could be run.
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
