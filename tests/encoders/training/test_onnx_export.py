"""ONNX export: contract metadata, checker, stable model id, parity with torch in ORT."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

from encoders.training.onnx_export import export_onnx
from encoders.training.train import load_backbone

CONTRACT_KEYS = {"bands", "stamp_size", "lupton_q", "lupton_stretch", "lupton_minimum", "embedding_dim", "model_id"}


def test_metadata_carries_the_contract(exported_model: Path, trained_run: Path) -> None:
    model = onnx.load(str(exported_model))
    onnx.checker.check_model(model)
    meta = {p.key: p.value for p in model.metadata_props}
    assert CONTRACT_KEYS | {"training_run"} <= set(meta)
    assert meta["bands"] == "g,r,z"
    assert meta["stamp_size"] == "32"
    assert meta["embedding_dim"] == "16"
    assert (meta["lupton_q"], meta["lupton_stretch"], meta["lupton_minimum"]) == ("8.0", "50.0", "0.0")
    assert re.fullmatch(r"[0-9a-f]{16}", meta["model_id"])
    assert meta["training_run"] == str(trained_run.resolve())
    assert json.loads(meta["training_config"])["widths"] == [8, 16]
    (inp,), (out,) = model.graph.input, model.graph.output
    assert inp.name == "stamps" and out.name == "embedding"
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims == ["N", 3, 32, 32]


def test_model_id_is_a_content_hash(exported_model: Path, trained_run: Path, tmp_path: Path) -> None:
    again = export_onnx(trained_run, tmp_path / "again.onnx")
    metas = [{p.key: p.value for p in onnx.load(str(f)).metadata_props} for f in (exported_model, again)]
    ids = [meta["model_id"] for meta in metas]
    assert ids[0] == ids[1]
    assert not list(tmp_path.glob(".*tmp*"))


@pytest.mark.parametrize("batch", [1, 7])
def test_onnx_runtime_matches_torch(exported_model: Path, trained_run: Path, batch: int) -> None:
    backbone, _ = load_backbone(trained_run)
    x = np.random.default_rng(batch).random((batch, 3, 32, 32), dtype=np.float32)
    with torch.no_grad():
        expected = F.normalize(backbone(torch.from_numpy(x)), dim=1).numpy()
    session = ort.InferenceSession(str(exported_model), providers=["CPUExecutionProvider"])
    (got,) = session.run(["embedding"], {"stamps": x})
    assert got.shape == (batch, 16) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_export_without_a_run_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no checkpoint.pt"):
        export_onnx(tmp_path, tmp_path / "m.onnx")


def test_fp16_export_keeps_float32_io_and_matches_torch(trained_run: Path, exported_model: Path, tmp_path: Path):
    half = export_onnx(trained_run, tmp_path / "half.onnx", precision="fp16")
    model = onnx.load(str(half))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["precision"] == "fp16" and meta["normalisation"] == "lupton"
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(init.data_type == onnx.TensorProto.FLOAT16 for init in model.graph.initializer)
    assert half.stat().st_size < 0.7 * exported_model.stat().st_size
    backbone, _ = load_backbone(trained_run)
    x = np.random.default_rng(0).random((5, 3, 32, 32), dtype=np.float32)
    with torch.no_grad():
        expected = F.normalize(backbone(torch.from_numpy(x)), dim=1).numpy()
    session = ort.InferenceSession(str(half), providers=["CPUExecutionProvider"])
    (got,) = session.run(["embedding"], {"stamps": x})
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=2e-2)
    assert np.min(np.sum(got * expected, axis=1)) > 0.999  # cosine similarity to the fp32 embedding
    with pytest.raises(ValueError, match="precision must be one of"):
        export_onnx(trained_run, tmp_path / "x.onnx", precision="int8")


def test_centre_view_is_concatenated_and_matches_an_independent_crop(trained_run: Path, tmp_path: Path) -> None:
    both = export_onnx(trained_run, tmp_path / "views.onnx", views="full,centre")
    meta = {p.key: p.value for p in onnx.load(str(both)).metadata_props}
    assert meta["views"] == "full,centre" and meta["embedding_dim"] == "32"
    backbone, _ = load_backbone(trained_run)
    x = np.random.default_rng(3).random((4, 3, 32, 32), dtype=np.float32)
    # the centre view, computed independently: pixels 8..23 enlarged 2x
    crop = torch.from_numpy(x[:, :, 8:24, 8:24].copy())
    zoom = torch.nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)(crop)
    with torch.no_grad():
        full = F.normalize(backbone(torch.from_numpy(x)), dim=1).numpy()
        centre = F.normalize(backbone(zoom), dim=1).numpy()
    session = ort.InferenceSession(str(both), providers=["CPUExecutionProvider"])
    (got,) = session.run(["embedding"], {"stamps": x})
    np.testing.assert_allclose(got, np.hstack([full, centre]) / np.sqrt(2), atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert (
        meta["model_id"]
        != {p.key: p.value for p in onnx.load(str(export_onnx(trained_run, tmp_path / "f.onnx"))).metadata_props}[
            "model_id"
        ]
    )
    with pytest.raises(ValueError, match="views must be distinct names"):
        export_onnx(trained_run, tmp_path / "bad.onnx", views="full,zoom")
