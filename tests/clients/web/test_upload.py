"""Search by an uploaded stamp through the web app (real uvicorn, real gRPC server with a real ONNX model):
a FITS stamp of the survey, and PNG and JPEG images for a model trained on colour images, give the
neighbours ``SsaldClient.find_similar_to_image`` gives, filters included."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import numpy as np
import pytest

from clients.cli import main as ssald
from clients.client import SsaldClient
from tests.clients.web.conftest import running_web
from tests.server.helpers import running_server

N_IMAGES = 12
SIDE = 48


def _colour_images(root: Path) -> Path:
    """``N_IMAGES`` RGB PNGs named by objid (3000..): a coloured blob of varying size and place on noise."""
    from PIL import Image

    root.mkdir(parents=True)
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:SIDE, :SIDE]
    for i in range(N_IMAGES):
        cy, cx = SIDE / 2 + rng.uniform(-8, 8, size=2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * rng.uniform(2, 9) ** 2))
        rgb = blob[..., None] * rng.uniform(60, 255, size=3) + rng.uniform(0, 60, size=(SIDE, SIDE, 3))
        Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(root / f"{3000 + i}.png")
    return root


@pytest.fixture(scope="module")
def colour(tmp_path_factory):
    """``images``, ``address`` and ``url`` of a table of colour images embedded by a model trained on them
    (``ssald train --fit resample``, ``export``, ``ingest``), served with that model."""
    tmp = tmp_path_factory.mktemp("colour")
    images, run, model, db = _colour_images(tmp / "images"), tmp / "run", tmp / "model.onnx", tmp / "db"
    assert ssald(
        ["train", "--data", str(images), "--run", str(run), "--fit", "resample", "--stamp-size", "16",
         "--normalisation", "identity", "--arch", "small", "--width", "8", "--expander", "32", "32",
         "--epochs", "1", "--batch-size", "6", "--max-steps", "1", "--threads", "1", "--precision", "fp32",
         "--labels", "none", "--no-progress"]
    ) == 0  # fmt: skip
    assert ssald(["export", "--run", str(run), "--out", str(model)]) == 0
    assert ssald(["ingest", "--data", str(images), "--model", str(model), "--db", str(db), "--workers", "0",
                  "--threads", "1", "--no-progress", "--strict"]) == 0  # fmt: skip
    with running_server(db, refresh_s=0, model_path=model) as address, running_web(address) as url:
        yield {"images": images, "address": address, "url": url}


def _upload(url: str, name: str, payload: bytes, **params) -> list[tuple[int, float]]:
    answer = httpx.post(f"{url}/api/similar/image", params=params, files={"image": (name, payload)}, timeout=60)
    assert answer.status_code == 200, answer.text
    return [(int(n["objid"]), n["distance"]) for n in answer.json()["neighbours"]]


def _client(address: str, payload: bytes, **filters) -> list[tuple[int, float]]:
    with SsaldClient(address, timeout=60) as client:
        return [(n.objid, n.distance) for n in client.find_similar_to_image(payload, **filters)]


def test_a_fits_stamp_upload_gives_the_clients_neighbours(site):
    rows = site["rows"]
    objid = rows[3]["objid"]
    payload = (site["survey"] / "stamps" / f"{objid}.fits").read_bytes()
    found = _upload(site["url"], f"{objid}.fits", payload, k=6)
    assert found == _client(site["address"], payload, k=6)
    assert found[0][0] == objid and found[0][1] == pytest.approx(0.0, abs=1e-5)  # the stamp finds its object
    # Filters reach the image query too: a z range leaves out what it should.
    filtered = _upload(site["url"], "s.fits", payload, k=6, z_min=0.05, z_max=0.12, mag_r_max=18.0)
    keywords = {"z_min": 0.05, "z_max": 0.12, "magnitudes": {"mag_r": (None, 18.0)}}
    assert filtered == _client(site["address"], payload, k=6, **keywords)
    assert filtered != found


def test_png_and_jpeg_uploads_give_the_clients_neighbours(colour):
    from PIL import Image

    objid = 3005
    png = (colour["images"] / f"{objid}.png").read_bytes()
    found = _upload(colour["url"], "x.png", png, k=4)
    assert found == _client(colour["address"], png, k=4)
    assert found[0][0] == objid and found[0][1] == pytest.approx(0.0, abs=1e-5)
    jpeg = io.BytesIO()
    Image.open(io.BytesIO(png)).save(jpeg, format="JPEG", quality=90)
    assert jpeg.getvalue().startswith(b"\xff\xd8")
    by_jpeg = _upload(colour["url"], "x.jpg", jpeg.getvalue(), k=4)
    assert by_jpeg == _client(colour["address"], jpeg.getvalue(), k=4) and len(by_jpeg) == 4


def test_an_image_that_does_not_fit_the_model_is_the_servers_400(site, colour):
    png = (colour["images"] / "3000.png").read_bytes()  # 3 colour planes; the survey's model takes 5 bands
    answer = httpx.post(f"{site['url']}/api/similar/image", files={"image": ("c.png", png)})
    with SsaldClient(site["address"]) as client, pytest.raises(Exception) as err:
        client.find_similar_to_image(png)
    assert answer.status_code == 400 and answer.json() == {"error": str(err.value), "code": "INVALID_ARGUMENT"}
