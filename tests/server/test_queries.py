"""Every query RPC over a real ingested survey (real ONNX model): results against brute force, status codes."""

from __future__ import annotations

import io
import time

import grpc
import numpy as np
import pyarrow as pa
import pytest

from proto import ssald_pb2, ssald_pb2_grpc
from ssald_index.schema import objects_schema
from ssald_index.store import ObjectStore
from tests.server.helpers import make_rows, running_server, write_db

TIMEOUT = 30.0


@pytest.fixture(scope="module")
def ingested(survey, tiny_model, tmp_path_factory):
    """(db path, table rows as a pyarrow Table) of the survey ingested with the tiny model."""
    from ingest.job import ingest
    from ingest.options import IngestInput, IngestOptions

    db = tmp_path_factory.mktemp("ingested") / "db"
    ingest(IngestInput(survey, catalogue=survey / "catalogue.fits"), tiny_model, db, IngestOptions(progress=False))
    return db, ObjectStore.open(db).table.to_arrow()


@pytest.fixture(scope="module")
def stub(ingested, tiny_model):
    with running_server(ingested[0], model_path=tiny_model) as address, grpc.insecure_channel(address) as channel:
        yield ssald_pb2_grpc.SsaldStub(channel)


def _vectors(rows: pa.Table) -> np.ndarray:
    return np.stack(rows.column("embedding").to_numpy(zero_copy_only=False)).astype(np.float64)


def _exact(rows: pa.Table, query: np.ndarray, k: int, keep: np.ndarray | None = None) -> list[int]:
    vec = _vectors(rows)
    dist = 1.0 - vec @ query / (np.linalg.norm(vec, axis=1) * np.linalg.norm(query))
    if keep is not None:
        dist[~keep] = np.inf
    return rows.column("objid").to_numpy()[np.argsort(dist, kind="stable")[:k]].tolist()


def _code(call, request) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as err:
        call(request, timeout=TIMEOUT)
    return err.value.code()


def test_search_vector_matches_brute_force(stub, ingested):
    _, rows = ingested
    query = _vectors(rows)[11] + 0.05
    reply = stub.SearchVector(ssald_pb2.SearchVectorRequest(vector=query.tolist(), k=8), timeout=TIMEOUT)
    assert [n.object.objid for n in reply.neighbours] == _exact(rows, query, 8)
    bad = ssald_pb2.SearchVectorRequest(vector=[1.0, 2.0], k=3)
    assert _code(stub.SearchVector, bad) == grpc.StatusCode.INVALID_ARGUMENT


def test_image_query_finds_the_object_itself(stub, ingested, survey):
    _, rows = ingested
    objid = int(rows.column("objid")[5].as_py())
    image = (survey / "stamps" / f"{objid}.fits").read_bytes()
    reply = stub.FindSimilarToImage(ssald_pb2.FindSimilarToImageRequest(image=image, k=5), timeout=TIMEOUT)
    assert reply.neighbours[0].object.objid == objid
    assert reply.neighbours[0].distance == pytest.approx(0.0, abs=1e-4)
    assert [n.object.objid for n in reply.neighbours] == _exact(rows, _vectors(rows)[5], 5)


def test_a_gzipped_fits_upload_is_read_like_the_plain_file(stub, ingested, survey):
    import gzip

    _, rows = ingested
    objid = int(rows.column("objid")[5].as_py())
    image = gzip.compress((survey / "stamps" / f"{objid}.fits").read_bytes())
    reply = stub.FindSimilarToImage(ssald_pb2.FindSimilarToImageRequest(image=image, k=5), timeout=TIMEOUT)
    assert reply.neighbours[0].object.objid == objid
    assert [n.object.objid for n in reply.neighbours] == _exact(rows, _vectors(rows)[5], 5)


def test_a_gzip_bomb_is_refused_without_inflating_it(stub):
    import zlib

    squeeze = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    bomb = b"".join(squeeze.compress(bytes(2**20)) for _ in range(200)) + squeeze.flush()  # 200 MiB of zeros
    assert len(bomb) < 1_000_000
    with pytest.raises(grpc.RpcError) as err:
        stub.FindSimilarToImage(ssald_pb2.FindSimilarToImageRequest(image=bomb, k=3), timeout=TIMEOUT)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "limit" in err.value.details()


@pytest.mark.parametrize("payload", [b"not an image", b"", "npy-wrong-shape"])
def test_bad_images_are_invalid_argument(stub, payload):
    if payload == "npy-wrong-shape":
        buf = io.BytesIO()
        np.save(buf, np.ones((2, 8, 8), np.float32))
        payload = buf.getvalue()
    request = ssald_pb2.FindSimilarToImageRequest(image=payload, k=3)
    assert _code(stub.FindSimilarToImage, request) == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("fill", [np.nan, np.inf, "mixed"])
def test_an_image_without_finite_pixels_is_invalid_argument(stub, ingested, survey, fill):
    """Non-finite pixels become 0 before embedding; an image with nothing else would search with a blank."""
    from astropy.io import fits

    objid = int(ingested[1].column("objid")[5].as_py())
    data = fits.getdata(survey / "stamps" / f"{objid}.fits").astype(np.float32)
    data[...] = np.nan if fill == "mixed" else fill
    if fill == "mixed":
        data.flat[::2] = -np.inf
    buf = io.BytesIO()
    np.save(buf, data)
    with pytest.raises(grpc.RpcError) as err:
        stub.FindSimilarToImage(ssald_pb2.FindSimilarToImageRequest(image=buf.getvalue(), k=3), timeout=TIMEOUT)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "no finite pixels" in err.value.details()


def test_image_query_without_model_is_failed_precondition(address):
    with grpc.insecure_channel(address) as channel:
        stub = ssald_pb2_grpc.SsaldStub(channel)
        request = ssald_pb2.FindSimilarToImageRequest(image=b"x", k=3)
        assert _code(stub.FindSimilarToImage, request) == grpc.StatusCode.FAILED_PRECONDITION


def test_cone_search_matches_the_object_and_its_neighbours(stub, ingested):
    _, rows = ingested
    i = 20
    ra, dec = rows.column("ra")[i].as_py(), rows.column("dec")[i].as_py()
    request = ssald_pb2.ConeSearchRequest(ra=ra, dec=dec + 0.5 / 3600, radius_arcsec=5.0, k=4)
    reply = stub.ConeSearch(request, timeout=TIMEOUT)
    assert reply.match.objid == rows.column("objid")[i].as_py()
    assert reply.separation_arcsec == pytest.approx(0.5, abs=1e-3)
    keep = rows.column("objid").to_numpy() != reply.match.objid
    assert [n.object.objid for n in reply.neighbours] == _exact(rows, _vectors(rows)[i], 4, keep)
    far = ssald_pb2.ConeSearchRequest(ra=(ra + 90) % 360, dec=0.0, radius_arcsec=1.0, k=4)
    assert _code(stub.ConeSearch, far) == grpc.StatusCode.NOT_FOUND
    assert _code(stub.ConeSearch, ssald_pb2.ConeSearchRequest(ra=400, dec=0, radius_arcsec=1, k=4)) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )


def test_find_similar_with_filter_and_sky_exclusion(stub, ingested):
    _, rows = ingested
    z = np.array([np.nan if v is None else v for v in rows.column("z").to_pylist()])
    query = int(rows.column("objid")[0].as_py())
    f = ssald_pb2.Filter(z_min=0.05, spec_class=["GALAXY"])
    request = ssald_pb2.FindSimilarRequest(objid=query, k=6, filter=f, exclude_radius_arcsec=1.0)
    reply = stub.FindSimilar(request, timeout=TIMEOUT)
    spec = np.array(rows.column("spec_class").to_pylist(), dtype=object)
    keep = (z >= np.float32(0.05)) & (spec == "GALAXY") & (rows.column("objid").to_numpy() != query)
    assert [n.object.objid for n in reply.neighbours] == _exact(rows, _vectors(rows)[0], 6, keep)
    bad = ssald_pb2.FindSimilarRequest(objid=query, k=6, filter=ssald_pb2.Filter(where="nonsense >"))
    assert _code(stub.FindSimilar, bad) == grpc.StatusCode.INVALID_ARGUMENT


def test_anomalies_are_the_stored_top_scores(stub, ingested):
    _, rows = ingested
    scores = np.array(rows.column("density_score").to_pylist(), dtype=np.float64)
    assert np.isfinite(scores).all()  # ingest's finalize scored every object
    order = np.lexsort((rows.column("objid").to_numpy(), -scores))
    reply = stub.Anomalies(ssald_pb2.AnomaliesRequest(n=10), timeout=TIMEOUT)
    assert [a.object.objid for a in reply.anomalies] == rows.column("objid").to_numpy()[order[:10]].tolist()
    assert reply.anomalies[0].object.density_model.startswith("knn10:")
    assert _code(stub.Anomalies, ssald_pb2.AnomaliesRequest(n=0)) == grpc.StatusCode.INVALID_ARGUMENT


def test_stats_report_indexes_and_scores(stub, ingested):
    _, rows = ingested
    reply = stub.Stats(ssald_pb2.StatsRequest(), timeout=TIMEOUT)
    assert reply.n_scored == reply.n_objects == rows.num_rows
    columns = {i.column: i for i in reply.indexes}
    assert columns["objid"].index_type == "BTREE" and columns["objid"].unindexed_rows == 0


def test_server_follows_new_table_versions(tmp_path):
    db = tmp_path / "db"
    rows = write_db(db)
    with running_server(db, refresh_s=0.2) as address, grpc.insecure_channel(address) as channel:
        stub = ssald_pb2_grpc.SsaldStub(channel)
        assert stub.Stats(ssald_pb2.StatsRequest(), timeout=TIMEOUT).n_objects == len(rows)
        more = make_rows(n=5, seed=3)
        for i, row in enumerate(more):
            row["objid"] = 42 + i
        ObjectStore.write(db, pa.Table.from_pylist(more, schema=objects_schema(16)))
        deadline = time.monotonic() + 20
        while stub.Stats(ssald_pb2.StatsRequest(), timeout=TIMEOUT).n_objects != len(rows) + 5:
            assert time.monotonic() < deadline, "the server never saw the new rows"
            time.sleep(0.1)
        obj = stub.GetObject(ssald_pb2.GetObjectRequest(objid=44), timeout=TIMEOUT)
        assert obj.objid == 44
        reply = stub.SearchVector(ssald_pb2.SearchVectorRequest(vector=more[2]["embedding"], k=1), timeout=TIMEOUT)
        assert reply.neighbours[0].object.objid == 44


def test_gallery_command_draws_query_and_neighbours(ingested, tmp_path):
    import subprocess
    import sys

    db, rows = ingested
    objid = int(rows.column("objid")[3].as_py())
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "clients.cli",
            "gallery",
            str(objid),
            "--db",
            str(db),
            "--out",
            str(tmp_path / "g.png"),
            "-k",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert f"objid {objid} and 5 neighbours" in out.stdout
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_map_command_with_thumbnails(ingested, tmp_path):
    import subprocess
    import sys

    db, _ = ingested
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "clients.cli",
            "map",
            "--db",
            str(db),
            "--out",
            str(tmp_path / "m.png"),
            "--projection",
            "pca",
            "--clusters",
            "4",
            "--color",
            "truth_class",
            "--thumbnails",
            "--grid",
            "4",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "240 objects mapped, coloured by truth_class" in out.stdout
    from PIL import Image

    with Image.open(tmp_path / "m.png") as image:
        assert image.size[0] == 2 * image.size[1]  # map and mosaic side by side
