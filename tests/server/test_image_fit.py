"""Image folders as they come: train with ``--fit resample``, export, ingest with the model's fit, query by upload."""

from __future__ import annotations

import warnings
from pathlib import Path

import grpc
import numpy as np
import pytest

from clients.cli import main as ssald
from proto import ssald_pb2, ssald_pb2_grpc
from tests.server.helpers import running_server

N_IMAGES = 20
SIDE = 100  # not a multiple of the model's 16 px: resample's 50 px centre is 3.125 pixels per stamp pixel


def _jpeg_folder(root: Path) -> Path:
    """``N_IMAGES`` 100x100 RGB JPEGs named by objid: a blob of varying size, position and colour on strong noise
    (texture everywhere, so the tiny model's embeddings of one image fitted two ways differ measurably)."""
    from PIL import Image

    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:SIDE, :SIDE]
    for i in range(N_IMAGES):
        cy, cx = SIDE / 2 + rng.uniform(-15, 15, size=2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * rng.uniform(3, 15) ** 2))
        noise = rng.uniform(0, 1, size=(SIDE, SIDE, 3)) * rng.uniform(10, 120, size=3)
        rgb = blob[..., None] * rng.uniform(60, 255, size=3) + noise
        Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(root / f"{1000 + i}.jpeg", quality=92)
    return root


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(image folder, model, database): trained and ingested through the ``ssald`` command line."""
    tmp = tmp_path_factory.mktemp("fit")
    images, run, model, db = _jpeg_folder(tmp / "images_as_they_come"), tmp / "run", tmp / "model.onnx", tmp / "db"
    assert ssald(
        ["train", "--data", str(images), "--run", str(run), "--fit", "resample", "--stamp-size", "16",
         "--normalisation", "identity", "--arch", "small", "--width", "8", "--expander", "32", "32",
         "--epochs", "1", "--batch-size", "8", "--max-steps", "2", "--threads", "1", "--precision", "fp32",
         "--labels", "none", "--no-progress"]
    ) == 0  # fmt: skip
    assert ssald(["export", "--run", str(run), "--out", str(model)]) == 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert ssald(["ingest", "--data", str(images), "--model", str(model), "--db", str(db), "--workers", "0",
                      "--threads", "1", "--no-progress", "--strict"]) == 0  # fmt: skip
    assert not [w for w in caught if "differs" in str(w.message)]  # no --fit: the model's, silently
    return images, model, db


def test_the_model_records_its_fit(fitted) -> None:
    from encoders.embedder import OnnxEmbedder
    from encoders.fit import Fit

    emb = OnnxEmbedder(fitted[1], providers=["CPUExecutionProvider"])
    assert emb.metadata["fit"] == "resample" and float(emb.metadata["fit_fraction"]) == 0.5
    assert emb.fit == Fit("resample", 0.5) and emb.stamp_size == 16


def test_ingest_embeds_the_images_fitted_as_the_model_says(fitted) -> None:
    from encoders.embedder import OnnxEmbedder
    from encoders.fit import Fit
    from encoders.stamps import read_stamp
    from ssald_index.store import ObjectStore

    images, model, db = fitted
    rows = ObjectStore.open(db).table.to_arrow().sort_by("objid")
    assert rows.column("objid").to_pylist() == list(range(1000, 1000 + N_IMAGES))  # none quarantined
    stored = np.stack(rows.column("embedding").to_numpy(zero_copy_only=False))
    emb = OnnxEmbedder(model, providers=["CPUExecutionProvider"])
    pixels = np.stack([read_stamp(images / f"{objid}.jpeg").data for objid in range(1000, 1000 + N_IMAGES)])
    as_trained = emb.embed_raw(Fit("resample", 0.5).apply(pixels, 16))
    whole = emb.embed_raw(Fit("resample", 1.0).apply(pixels, 16))
    assert np.abs(1 - (stored * as_trained).sum(axis=1)).max() < 1e-6
    assert (1 - (stored * whole).sum(axis=1)).min() > 1e-5  # the check above can tell fits apart


def test_an_uploaded_image_finds_itself(fitted) -> None:
    images, model, db = fitted
    objid = 1007
    with running_server(db, model_path=model) as address, grpc.insecure_channel(address) as channel:
        stub = ssald_pb2_grpc.SsaldStub(channel)
        request = ssald_pb2.FindSimilarToImageRequest(image=(images / f"{objid}.jpeg").read_bytes(), k=3)
        reply = stub.FindSimilarToImage(request, timeout=30)
    assert reply.neighbours[0].object.objid == objid
    assert reply.neighbours[0].distance == pytest.approx(0.0, abs=1e-6)


def test_an_explicit_fit_that_differs_from_the_model_warns(fitted, tmp_path) -> None:
    from ingest.job import ingest
    from ingest.options import IngestOptions

    images, model, _ = fitted
    with pytest.warns(UserWarning, match=r"fit crop differs from model .*contract \(fit resample 0.5"):
        summary = ingest(images, model, tmp_path / "db", IngestOptions(fit="crop", workers=0, progress=False))
    assert summary.ingested == N_IMAGES  # crop also gives 16 px stamps: the override is honoured
    with pytest.warns(UserWarning, match="fit resample 0.8 differs"):
        ingest(images, model, tmp_path / "db2", IngestOptions(fit_fraction=0.8, workers=0, progress=False))
