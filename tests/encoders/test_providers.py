"""Execution providers: names and lists, clear errors for accelerators that cannot start, the batch-size sweep."""

from __future__ import annotations

from pathlib import Path

import pytest

from encoders.embedder import OnnxEmbedder
from encoders.providers import (
    DEFAULT_BATCH_SIZE,
    ProviderUnavailable,
    default_providers,
    resolve_providers,
    sweep_batch_size,
)

CPU, CUDA, TRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"


@pytest.fixture(scope="module")
def embedder(exported_model: Path) -> OnnxEmbedder:
    return OnnxEmbedder(exported_model, providers=["CPUExecutionProvider"], intra_op_threads=1)


def test_default_providers_prefer_cuda() -> None:
    import onnxruntime as ort

    providers = default_providers()
    assert providers[-1] == "CPUExecutionProvider"
    cuda = "CUDAExecutionProvider"
    assert (cuda in providers) == (cuda in ort.get_available_providers())


def test_provider_names_and_lists_resolve(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSALD_PROVIDERS", raising=False)
    assert resolve_providers("cpu") == ([CPU], True)
    assert resolve_providers("cuda") == ([CUDA, CPU], True)
    assert resolve_providers("tensorrt") == ([TRT, CUDA, CPU], True)
    assert resolve_providers("CUDA, cpu") == ([CUDA, CPU], True)
    assert resolve_providers([CUDA]) == ([CUDA, CPU], True)
    assert resolve_providers([(CUDA, {"device_id": 1}), "cpu"]) == ([(CUDA, {"device_id": 1}), CPU], True)
    assert resolve_providers("auto") == (default_providers(), False)
    assert resolve_providers(None) == (default_providers(), False)
    monkeypatch.setenv("SSALD_PROVIDERS", "cuda")
    assert resolve_providers(None) == ([CUDA, CPU], True)
    with pytest.raises(ValueError, match="unknown execution provider 'gpu'"):
        resolve_providers("gpu")


def test_cuda_asked_for_without_it_is_a_clear_error(exported_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime as ort

    if CUDA in ort.get_available_providers():
        pytest.skip("this ONNX Runtime build has CUDA: the missing-build message cannot be seen here")
    with pytest.raises(ProviderUnavailable, match=r"CUDAExecutionProvider was asked for .* install ssald\[gpu\]"):
        OnnxEmbedder(exported_model, providers="cuda")
    monkeypatch.setenv("SSALD_PROVIDERS", "cuda")
    with pytest.raises(ProviderUnavailable):
        OnnxEmbedder(exported_model)
    # A build that has CUDA but cannot start it (no GPU, no libraries): ONNX Runtime falls back to the CPU quietly.
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
    with pytest.raises(ProviderUnavailable, match=r"is in onnxruntime .* but could not start .* cuDNN 9"):
        OnnxEmbedder(exported_model, providers="cuda")


def test_auto_falls_back_to_the_cpu_without_error(exported_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSALD_PROVIDERS", raising=False)
    emb = OnnxEmbedder(exported_model, providers="auto")
    if emb.device == "cpu":
        assert emb.providers == [CPU] and not emb.io_binding
        assert emb.default_batch_size == DEFAULT_BATCH_SIZE["cpu"]


def test_sweep_batch_size_returns_a_measured_size(embedder: OnnxEmbedder) -> None:
    sweep = sweep_batch_size(embedder, (2, 4, 8), seconds_per_size=0.01)
    assert list(sweep.rates) == [2, 4, 8][: len(sweep.rates)] and sweep.best in sweep.rates
    assert all(r > 0 for r in sweep.rates.values())
    with pytest.raises(ValueError, match="batch sizes >= 1"):
        sweep_batch_size(embedder, ())
