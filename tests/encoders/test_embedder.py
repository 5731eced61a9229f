"""OnnxEmbedder: contract properties, shape checks with clear messages, IO binding, no torch import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from encoders.embedder import OnnxEmbedder
from encoders.normalise import LuptonParams, lupton_asinh
from encoders.providers import DEFAULT_BATCH_SIZE, ProviderUnavailable

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def embedder(exported_model: Path) -> OnnxEmbedder:
    return OnnxEmbedder(exported_model, providers=["CPUExecutionProvider"], intra_op_threads=1)


def test_properties_come_from_the_metadata(embedder: OnnxEmbedder) -> None:
    assert embedder.bands == ("g", "r", "z")
    assert embedder.stamp_size == 32
    assert embedder.embedding_dim == 16
    assert embedder.lupton == LuptonParams()
    assert len(embedder.model_id) == 16 and embedder.metadata["model_id"] == embedder.model_id
    assert embedder.providers == ["CPUExecutionProvider"]
    assert embedder.model_id in repr(embedder)


def test_embed_batches_and_single_stamps(embedder: OnnxEmbedder, tiny_stamps: np.ndarray) -> None:
    full = embedder.embed(tiny_stamps)
    assert full.shape == (16, 16) and full.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(full, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(embedder.embed(tiny_stamps, batch_size=5), full, atol=1e-6)
    np.testing.assert_allclose(embedder.embed(tiny_stamps[3]), full[3:4], atol=1e-6)
    assert embedder.embed(tiny_stamps[:0]).shape == (0, 16)


def test_embed_raw_applies_the_models_normalisation(embedder: OnnxEmbedder) -> None:
    raw = np.random.default_rng(0).normal(10, 30, size=(3, 3, 32, 32)).astype(">f4")
    expected = embedder.embed(lupton_asinh(raw, embedder.lupton))
    np.testing.assert_allclose(embedder.embed_raw(raw, batch_size=2), expected, atol=1e-6)


def test_refuses_input_that_breaks_the_contract(embedder: OnnxEmbedder) -> None:
    mid = embedder.model_id
    with pytest.raises(ValueError, match=rf"stamps have 5 bands but model {mid} expects 3 \(g,r,z\)"):
        embedder.embed(np.zeros((2, 5, 32, 32), np.float32))
    with pytest.raises(ValueError, match=rf"stamps are 64x64 pixels but model {mid} expects 32x32"):
        embedder.embed(np.zeros((2, 3, 64, 64), np.float32))
    with pytest.raises(ValueError, match=r"must have shape \(N, 3, 32, 32\), got \(32, 32\)"):
        embedder.embed(np.zeros((32, 32), np.float32))
    with pytest.raises(ValueError, match="cubes have 1 bands"):
        embedder.embed_raw(np.zeros((1, 1, 32, 32)))


def test_refuses_stamps_that_are_not_normalised(embedder: OnnxEmbedder) -> None:
    mid = embedder.model_id
    with pytest.raises(ValueError, match=rf"values in \[0, 37\] but model {mid} expects stamps normalised to \[0, 1\]"):
        embedder.embed(np.full((1, 3, 32, 32), 37.0, np.float32) * np.eye(32, dtype=np.float32))
    bad = np.zeros((1, 3, 32, 32), np.float32)
    bad[0, 1, 2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        embedder.embed(bad)
    assert embedder.normalisation == "lupton"
    assert embedder.embed_raw(bad).shape == (1, 16)  # raw cubes: non-finite pixels count as 0
    # A caller that normalised the stamps itself may skip the range pass; the shape contract still holds.
    good = np.random.default_rng(0).random((2, 3, 32, 32), dtype=np.float32)
    np.testing.assert_array_equal(embedder.embed(good, check_range=False), embedder.embed(good))
    with pytest.raises(ValueError, match="stamps have 5 bands"):
        embedder.embed(np.zeros((2, 5, 32, 32), np.float32), check_range=False)


def test_identity_normalised_model(tmp_path: Path, tiny_stamps: np.ndarray, tiny_config: dict) -> None:
    from encoders.training.onnx_export import export_onnx
    from encoders.training.train import TrainConfig, train

    run = train(tiny_stamps, tmp_path / "run", TrainConfig(**tiny_config, normalisation="identity"), progress=False)
    emb = OnnxEmbedder(export_onnx(run, tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert emb.normalisation == "identity" and emb.metadata["normalisation"] == "identity"
    images = np.random.default_rng(0).uniform(-0.5, 1.5, size=(4, 3, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(emb.embed_raw(images), emb.embed(np.clip(images, 0, 1)), atol=1e-6)


def test_refuses_models_without_the_contract(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["stamps"], ["embedding"])],
        "bare",
        [helper.make_tensor_value_info("stamps", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 4])],
    )
    path = tmp_path / "bare.onnx"
    # onnx writes IR version 14 by default, newer than this onnxruntime reads.
    model = helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    with pytest.raises(ValueError, match=r"lacks metadata \['bands', .*'model_id'\]"):
        OnnxEmbedder(path, providers=["CPUExecutionProvider"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        OnnxEmbedder(tmp_path / "missing.onnx")


def test_serving_modules_do_not_import_torch() -> None:
    code = (
        "import encoders.embedder, encoders.providers, encoders.normalise, encoders.stamps, sys; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def _cuda_works(model: Path) -> bool:
    try:
        return OnnxEmbedder(model, providers="cuda").device == "cuda"
    except ProviderUnavailable:
        return False


def test_io_binding_path_matches_the_plain_call(exported_model: Path, tiny_stamps: np.ndarray) -> None:
    plain = OnnxEmbedder(exported_model, providers="cpu", intra_op_threads=1)
    bound = OnnxEmbedder(exported_model, providers="cpu", intra_op_threads=1, io_binding=True)
    assert bound.io_binding and not plain.io_binding and bound.device == "cpu"
    expected = plain.embed(tiny_stamps)
    # 16 stamps in batches of 5: three full batches and a short one (the bound buffers are reallocated).
    np.testing.assert_allclose(bound.embed(tiny_stamps, batch_size=5), expected, atol=1e-6)
    np.testing.assert_allclose(bound.embed(tiny_stamps), expected, atol=1e-6)
    assert bound.embed(tiny_stamps[:0]).shape == (0, 16)


def test_cuda_embeddings_match_the_cpu(exported_model: Path, tiny_stamps: np.ndarray) -> None:
    if not _cuda_works(exported_model):
        pytest.skip("no usable CUDA execution provider")
    cpu = OnnxEmbedder(exported_model, providers="cpu").embed(tiny_stamps)
    gpu = OnnxEmbedder(exported_model, providers="cuda")
    assert gpu.io_binding and gpu.default_batch_size == DEFAULT_BATCH_SIZE["cuda"]
    np.testing.assert_allclose(gpu.embed(tiny_stamps, batch_size=5), cpu, atol=2e-3)


def test_without_onnx_runtime_the_error_says_what_to_install() -> None:
    code = "import sys; sys.modules['onnxruntime'] = None; import encoders.embedder"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "install ssald[cpu]" in result.stderr and "ssald[gpu]" in result.stderr
