"""The ``/api`` endpoints over HTTP (real uvicorn, real gRPC server): JSON and every table format give the
rows the client gives; failed RPCs keep their message and map to HTTP statuses; uploads are size-limited;
labelling beyond loopback needs the token; the reference pages are served without any CDN."""

from __future__ import annotations

import csv
import io

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest
from astropy.io import votable
from astropy.table import Table

from clients.client import SsaldClient
from clients.errors import SsaldError
from clients.web import WebOptions, check_exposure
from tests.clients.web.conftest import CENTRE, running_web

LABEL = "merger"


def _objids(fmt: str, body: bytes, key: str) -> list[int]:
    """The objid column of an answer in ``fmt``, parsed with the library each format is read with."""
    if fmt == "json":
        import json

        data = json.loads(body)
        return [int(row["objid"]) for row in (data[key] if key in data else [data])]  # GetObject: the object
    if fmt == "csv":
        return [int(row["objid"]) for row in csv.DictReader(io.StringIO(body.decode()))]
    if fmt == "votable":
        return [int(o) for o in votable.parse_single_table(io.BytesIO(body)).to_table()["objid"]]
    if fmt == "fits":
        return [int(o) for o in Table.read(io.BytesIO(body), format="fits")["objid"]]
    return [int(o) for o in pq.read_table(io.BytesIO(body)).column("objid").to_pylist()]


@pytest.fixture(scope="module")
def labelled(served):
    """The answer of ``POST /api/labels`` that labels six objects and trains the classifier of LABEL."""
    rows = served["rows"]
    labels = [{"objid": str(rows[20 + j]["objid"]), "label": LABEL if j < 3 else "spiral"} for j in range(6)]
    answer = httpx.post(f"{served['url']}/api/labels", json={"labels": labels, "retrain": True}, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _cases(served) -> dict[str, tuple[str, str, list[int]]]:
    """path -> (JSON key, download stem, objids the client gives for the same query)."""
    rows, first = served["rows"], served["rows"][0]["objid"]
    ra, dec = rows[30]["ra"], rows[30]["dec"]
    at, centre = f"{ra:g}{dec:+g}", f"{CENTRE[0]:g}{CENTRE[1]:+g}"
    with SsaldClient(served["address"]) as client:
        similar = [n.objid for n in client.find_similar(first, 5)]
        by_position = [n.objid for n in client.cone_search(ra, dec, k=4, z_max=0.2).neighbours]
        cone = [n.objid for n in client.cone_search(ra, dec, k=3).neighbours]
        in_cone = [o.objid for o in client.objects_in_cone(*CENTRE, 1800)]
        anomalies = [o.objid for o in client.anomalies(7, spec_class="GALAXY")]
        candidates = [c.objid for c in client.candidates(LABEL, 6)]
    return {
        f"/api/objects/{first}": ("objects", f"object-{first}", [first]),
        f"/api/similar?objid={first}&k=5": ("neighbours", f"similar-{first}", similar),
        f"/api/similar?ra={ra}&dec={dec}&k=4&z_max=0.2": ("neighbours", f"similar-{at}", by_position),
        f"/api/cone?ra={ra}&dec={dec}&k=3": ("neighbours", f"cone-{at}", cone),
        f"/api/cone/objects?ra={CENTRE[0]}&dec={CENTRE[1]}&radius=1800": ("objects", f"in-cone-{centre}", in_cone),
        "/api/anomalies?n=7&spec_class=GALAXY": ("anomalies", "anomalies", anomalies),
        f"/api/candidates?label={LABEL}&n=6": ("candidates", f"candidates-{LABEL}", candidates),
    }


@pytest.mark.parametrize("fmt", ["json", "csv", "votable", "fits", "parquet"])
def test_every_table_endpoint_answers_the_clients_rows_in_every_format(served, labelled, fmt):
    media = {"json": "application/json", "csv": "text/csv", "votable": "application/x-votable+xml",
             "fits": "application/fits", "parquet": "application/vnd.apache.parquet"}  # fmt: skip
    suffix = {"csv": ".csv", "votable": ".vot", "fits": ".fits", "parquet": ".parquet"}
    for path, (key, stem, expected) in _cases(served).items():
        assert expected, path  # every query finds rows, so an empty answer cannot pass
        answer = httpx.get(f"{served['url']}{path}{'&' if '?' in path else '?'}format={fmt}", timeout=30)
        assert answer.status_code == 200, (path, answer.text)
        assert answer.headers["content-type"].startswith(media[fmt]), path
        if fmt != "json":
            assert answer.headers["content-disposition"] == f'attachment; filename="{stem}{suffix[fmt]}"'
        assert _objids(fmt, answer.content, key) == expected, (path, fmt)


def test_json_answers_carry_ids_as_strings_and_the_extra_members(served, labelled):
    rows, url = served["rows"], served["url"]
    found = httpx.get(f"{url}/api/cone/objects", params={"ra": CENTRE[0], "dec": CENTRE[1], "radius": 1800, "limit": 3})
    body = found.json()
    assert body["n_found"] == 12 and len(body["objects"]) == 3
    assert [o["separation_arcsec"] for o in body["objects"]] == sorted(o["separation_arcsec"] for o in body["objects"])
    # 64-bit ids as strings: a float64 would round the SDSS objid's last digits.
    assert all(isinstance(o["objid"], str) for o in body["objects"]) and "embedding" not in body["objects"][0]
    one = httpx.get(f"{url}/api/objects/{rows[1]['objid']}", params={"with_embedding": "true"}).json()
    assert one["objid"] == str(rows[1]["objid"]) and one["specobjid"] == str(rows[1]["specobjid"])
    np.testing.assert_allclose(one["embedding"], rows[1]["embedding"], rtol=1e-6)
    cone = httpx.get(f"{url}/api/cone", params={"ra": rows[30]["ra"], "dec": rows[30]["dec"]}).json()
    assert cone["match"]["objid"] == str(rows[30]["objid"]) and cone["separation_arcsec"] < 0.01
    cands = httpx.get(f"{url}/api/candidates", params={"label": LABEL, "n": 3}).json()
    assert cands["run"]["label"] == LABEL and cands["run"]["n_positive"] == 3 and cands["stale"] is False
    assert labelled["n_written"] == 6 and labelled["label_counts"][LABEL] == 3
    stats = httpx.get(f"{url}/api/stats").json()
    assert stats["n_objects"] == 50 and stats["n_labels"] == 6


def test_an_empty_result_is_an_empty_table_with_its_columns(served):
    answer = httpx.get(
        f"{served['url']}/api/cone/objects", params={"ra": 10, "dec": -80, "radius": 10, "format": "votable"}
    )
    table = votable.parse_single_table(io.BytesIO(answer.content)).to_table()
    assert len(table) == 0 and {"objid", "ra", "dec", "separation_arcsec"} <= set(table.colnames)


def test_failed_rpcs_keep_the_servers_message_under_the_mapped_status(served):
    url, first = served["url"], served["rows"][0]["objid"]
    with SsaldClient(served["address"]) as client:
        messages = {}
        for name, call in {
            "unknown": lambda: client.get_object(3),
            "k": lambda: client.find_similar(first, k=0),
            "untrained": lambda: client.candidates("no_such_label"),
        }.items():
            with pytest.raises(SsaldError) as err:
                call()
            messages[name] = str(err.value)
    cases = [
        ("/api/objects/3", 404, "NOT_FOUND", messages["unknown"]),
        (f"/api/similar?objid={first}&k=0", 400, "INVALID_ARGUMENT", messages["k"]),
        ("/api/candidates?label=no_such_label", 409, "FAILED_PRECONDITION", messages["untrained"]),
        ("/api/stamp/3.png", 404, "NOT_FOUND", messages["unknown"]),
    ]
    for path, status, code, message in cases:
        answer = httpx.get(f"{url}{path}")
        assert (answer.status_code, answer.json()) == (status, {"error": message, "code": code}), path
    # Requests FastAPI cannot parse are 400s naming the parameter, not 422s.
    for path, words in [
        ("/api/similar?objid=abc", "objid"),
        ("/api/cone?ra=1", "dec"),
        ("/api/similar?k=3", "either objid"),
    ]:
        answer = httpx.get(f"{url}{path}")
        assert answer.status_code == 400 and words in answer.json()["error"], (path, answer.text)
    assert httpx.get(f"{url}/api/anomalies", params={"format": "xls"}).status_code == 400


def test_an_unreachable_server_is_503(served, tmp_path):
    with running_web("127.0.0.1:9") as url:  # nothing listens on the discard port
        answer = httpx.get(f"{url}/api/stats", timeout=60)
    assert answer.status_code == 503 and answer.json()["code"] == "UNAVAILABLE"


def test_uploads_above_the_limit_are_413_and_below_it_reach_the_server(served):
    with running_web(served["address"], WebOptions(max_upload_bytes=1000)) as url:
        big = httpx.post(f"{url}/api/similar/image", files={"image": ("big.fits", b"x" * 5000)})
        assert big.status_code == 413
        assert big.json()["error"] == "upload 'big.fits' is too large: more than 1000 bytes, the limit is 1000 bytes"
        # Small enough: the server answers (this one runs without a model: FAILED_PRECONDITION, its message).
        small = httpx.post(f"{url}/api/similar/image", files={"image": ("s.fits", b"SIMPLE  =" + b" " * 100)})
        assert small.status_code == 409 and "without --model" in small.json()["error"]
        assert httpx.post(f"{url}/api/similar/image").status_code == 400  # no file


def test_labelling_beyond_loopback_needs_the_token(served):
    objid = served["rows"][40]["objid"]
    body = {"labels": [{"objid": objid, "label": "elliptical"}]}
    with running_web(served["address"], WebOptions(exposed=True, token="s3cret")) as url:
        assert httpx.post(f"{url}/api/labels", json=body).status_code == 401
        assert httpx.post(f"{url}/api/labels", json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = httpx.post(f"{url}/api/labels", json=body, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and ok.json()["n_written"] == 1
        assert httpx.get(f"{url}/api/stats").status_code == 200  # reading needs no token
    with running_web(served["address"], WebOptions(exposed=True)) as url:
        refused = httpx.post(f"{url}/api/labels", json=body)
        assert refused.status_code == 403 and "without a token" in refused.json()["error"]
    unknown = httpx.post(f"{served['url']}/api/labels", json={"labels": [{"objid": 3, "label": "x"}]})
    assert unknown.status_code == 404 and "3" in unknown.json()["error"]


def test_only_loopback_is_served_without_a_token_or_insecure():
    assert check_exposure("127.0.0.1", insecure=False, token=None) is False
    assert check_exposure("localhost", insecure=False, token=None) is False
    assert check_exposure("::1", insecure=False, token=None) is False
    with pytest.raises(ValueError, match="refusing to serve the web app on '0.0.0.0'"):
        check_exposure("0.0.0.0", insecure=False, token=None)
    assert check_exposure("0.0.0.0", insecure=True, token=None) is True
    assert check_exposure("192.168.1.7", insecure=False, token="t") is True


def test_the_reference_pages_work_offline(served):
    url = served["url"]
    index, docs = httpx.get(f"{url}/"), httpx.get(f"{url}/docs")
    openapi = httpx.get(f"{url}/openapi.json").json()
    assert {"/api/similar", "/api/similar/image", "/api/cone/objects", "/scs", "/api/samp/send"} <= set(
        openapi["paths"]
    )
    for page in (index, docs):
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "/api/candidates" in page.text and "<script" not in page.text and "cdn" not in page.text.lower()
    assert "exclude_radius" in docs.text and "href='/docs'" in index.text
