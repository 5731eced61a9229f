"""The endpoints the pages use (real uvicorn, real gRPC server over a real table with a stored map): the map
in bulk, batch and example searches, the labelling queue, cross-match marks on candidates, and the static
pages themselves (served, no CDN)."""

from __future__ import annotations

import io
import json
import re

import httpx
import numpy as np
import pytest
from astropy.io import votable

from clients.client import SsaldClient
from clients.errors import SsaldError
from clients.web import WebOptions
from clients.web.browse import parse_batch
from clients.web.crossmatch import Reference
from tests.clients.web.conftest import running_web
from tests.server.helpers import make_rows, running_server, write_db

N_MAPPED = 40
LABEL = "ring"


@pytest.fixture(scope="module")
def mapped(tmp_path_factory):
    """``rows``, ``address``, ``url`` (its cross-match catalogue: rows 2 by objid and 5 by position) of a
    50-object table whose first 40 objects have a stored map, and ``reference`` (the catalogue's path)."""
    rows = make_rows(seed=3)
    for i, row in enumerate(rows):
        if i < N_MAPPED:
            row.update(cluster=i % 4, map_x=float(np.float32(i * 0.5)), map_y=float(np.float32(-i)))
    tmp = tmp_path_factory.mktemp("mapped")
    write_db(tmp / "db", rows)
    reference = tmp / "gothic.csv"
    near = (rows[5]["ra"], rows[5]["dec"] + 1.0 / 3600)  # 1 arcsec from row 5
    reference.write_text(
        f"Number,objID,RA,DEC\nG1,{rows[2]['objid']},10.0,-5.0\nG2,,{near[0]!r},{near[1]!r}\nG3,,200.0,80.0\n"
    )
    options = WebOptions(reference=Reference.read(reference, radius_arcsec=2.0))
    with running_server(tmp / "db", refresh_s=0) as address, running_web(address, options) as url:
        yield {"rows": rows, "address": address, "url": url, "reference": reference}


def _unpack(answer: httpx.Response) -> tuple[np.ndarray, np.ndarray, list[str]]:
    n = int(answer.headers["x-map-count"])
    objids = np.frombuffer(answer.content[: 8 * n], dtype="<i8")
    floats = np.frombuffer(answer.content[8 * n :], dtype="<f4").reshape(3, n)
    return objids, floats, json.loads(answer.headers["x-map-categories"])


def test_the_map_comes_packed_with_every_mapped_object_and_its_colour(mapped):
    rows, url = mapped["rows"], mapped["url"]
    answer = httpx.get(f"{url}/api/map.bin", params={"color_by": "cluster"})
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/octet-stream"
    objids, (x, y, values), categories = _unpack(answer)
    mapped_rows = sorted(rows[:N_MAPPED], key=lambda r: r["objid"])  # objects without a map are left out
    assert objids.tolist() == [r["objid"] for r in mapped_rows] and len(answer.content) == 20 * N_MAPPED
    np.testing.assert_array_equal(x, [r["map_x"] for r in mapped_rows])
    np.testing.assert_array_equal(y, [r["map_y"] for r in mapped_rows])
    np.testing.assert_array_equal(values, [r["cluster"] for r in mapped_rows])
    assert categories == []
    # A class: codes into the sorted names; an object without one is NaN.
    objids, (_, _, codes), categories = _unpack(httpx.get(f"{url}/api/map.bin", params={"color_by": "truth_class"}))
    assert categories == sorted({r["truth_class"] for r in mapped_rows if r["truth_class"]})
    named = [categories[int(c)] if np.isfinite(c) else None for c in codes]
    assert named == [r["truth_class"] for r in mapped_rows] and None in named


def test_the_map_by_label_and_by_score_follows_the_labels(mapped):
    rows, url = mapped["rows"], mapped["url"]
    refused = httpx.get(f"{url}/api/map.bin", params={"color_by": "score", "label": LABEL})
    assert refused.status_code == 409 and LABEL in refused.json()["error"]
    labels = [{"objid": rows[i]["objid"], "label": LABEL if i < 3 else f"not_{LABEL}"} for i in range(6)]
    assert httpx.post(f"{url}/api/labels", json={"labels": labels, "retrain": True}, timeout=60).status_code == 200
    objids, (_, _, codes), categories = _unpack(
        httpx.get(f"{url}/api/map.bin", params={"color_by": "label", "label": LABEL})
    )
    assert categories == [LABEL, f"not_{LABEL}", "other"]
    given = {rows[i]["objid"]: (0.0 if i < 3 else 1.0) for i in range(6)}
    assert {o: c for o, c in zip(objids.tolist(), codes.tolist()) if np.isfinite(c)} == given
    objids, (_, _, scores), _ = _unpack(httpx.get(f"{url}/api/map.bin", params={"color_by": "score", "label": LABEL}))
    with SsaldClient(mapped["address"]) as client:
        top = client.candidates(LABEL, n=N_MAPPED)
    stored = {c.objid: c.score for c in top.candidates}
    mapped_scores = {o: s for o, s in zip(objids.tolist(), scores.tolist()) if o in stored}
    assert mapped_scores and all(abs(s - stored[o]) < 1e-6 for o, s in mapped_scores.items())
    bad = httpx.get(f"{url}/api/map.bin", params={"color_by": "colour"})
    assert bad.status_code == 400 and "cluster" in bad.json()["error"]
    assert httpx.get(f"{url}/api/map.bin", params={"color_by": "label"}).status_code == 400  # no label


def test_a_pasted_list_gives_one_result_per_line_in_order(mapped):
    rows, url = mapped["rows"], mapped["url"]
    text = "\n".join(
        [
            f"{rows[7]['ra']} {rows[7]['dec']}",  # a position first: the server answers objids first
            str(rows[1]["objid"]),
            "# a comment line",
            "3",  # no such objid
            f"{rows[9]['ra']}, {rows[9]['dec']}",
        ]
    )
    answer = httpx.post(f"{url}/api/similar/batch", params={"k": 4}, json={"text": text}, timeout=30)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    with SsaldClient(mapped["address"]) as client:
        expected = {i: [n.objid for n in client.find_similar(rows[i]["objid"], 4)] for i in (1, 7, 9)}
    assert [r["index"] for r in results] == [0, 1, 2, 3]
    assert [r["objid"] for r in results] == [str(rows[7]["objid"]), str(rows[1]["objid"]), "3", str(rows[9]["objid"])]
    for line, row in ((0, 7), (1, 1), (3, 9)):
        assert [int(n["objid"]) for n in results[line]["neighbours"]] == expected[row] and results[line][
            "error"
        ] is None
    assert results[2]["code"] == "NOT_FOUND" and "3" in results[2]["error"] and results[2]["neighbours"] == []
    bad = httpx.post(f"{url}/api/similar/batch", json={"text": "12 x\n"})
    assert (
        bad.status_code == 400 and bad.json()["error"] == "line 1 ('12 x') is neither an objid nor 'RA DEC' in degrees"
    )
    assert httpx.post(f"{url}/api/similar/batch", json={"text": "# nothing\n"}).status_code == 400


def test_parse_batch_reads_objids_and_positions():
    assert parse_batch("1237648720693755918\n 150.1 -2.5 \n10,+20\n") == [
        ("1237648720693755918", 1237648720693755918),
        ("150.1 -2.5", (150.1, -2.5)),
        ("10,+20", (10.0, 20.0)),
    ]
    with pytest.raises(SsaldError, match="line 2"):
        parse_batch("1\n1 2 3\n")


def test_more_like_these_unlike_those_matches_the_client_in_json_and_votable(mapped):
    rows, url = mapped["rows"], mapped["url"]
    body = {"positives": [rows[0]["objid"], rows[4]["objid"]], "negatives": [rows[8]["objid"]]}
    with SsaldClient(mapped["address"]) as client:
        expected = [n.objid for n in client.find_similar_to_examples(body["positives"], body["negatives"], k=6)]
    found = httpx.post(f"{url}/api/similar/examples", params={"k": 6}, json=body).json()
    assert [int(n["objid"]) for n in found["neighbours"]] == expected and len(expected) == 6
    vot = httpx.post(f"{url}/api/similar/examples", params={"k": 6, "format": "votable"}, json=body)
    table = votable.parse_single_table(io.BytesIO(vot.content)).to_table()
    assert [int(o) for o in table["objid"]] == expected and "distance" in table.colnames
    missing = httpx.post(f"{url}/api/similar/examples", json={"positives": [3]})
    assert missing.status_code == 404
    assert httpx.post(f"{url}/api/similar/examples", json={"positives": []}).status_code == 400


def test_the_labelling_queue_proposes_unlabelled_objects_and_honours_exclusions(mapped):
    rows, url = mapped["rows"], mapped["url"]
    first = httpx.get(f"{url}/api/label/next", params={"label": "bar", "n": 5, "strategy": "random"}).json()
    ids = [item["objid"] for item in first["items"]]
    assert len(ids) == 5 and all(isinstance(i, str) for i in ids) and first["strategy"].endswith("random")
    assert {"reason", "ra", "dec", "z"} <= set(first["items"][0])
    params = [("label", "bar"), ("n", len(rows)), ("strategy", "random")]
    every = {i["objid"] for i in httpx.get(f"{url}/api/label/next", params=params).json()["items"]}
    rest = httpx.get(f"{url}/api/label/next", params=params + [("exclude", i) for i in ids]).json()["items"]
    assert set(ids) <= every and {i["objid"] for i in rest} == every - set(ids)
    bad = httpx.get(f"{url}/api/label/next", params={"label": "bar", "strategy": "psychic"})
    assert bad.status_code == 400 and "psychic" in bad.json()["error"]


def test_candidates_are_marked_against_the_crossmatch_catalogue(mapped):
    rows, url = mapped["rows"], mapped["url"]
    labels = [{"objid": rows[i]["objid"], "label": "lens" if i % 2 else "not_lens"} for i in range(10, 16)]
    assert httpx.post(f"{url}/api/labels", json={"labels": labels, "retrain": True}, timeout=60).status_code == 200
    found = httpx.get(f"{url}/api/candidates", params={"label": "lens", "n": 50}).json()
    assert found["reference"] == {"name": "gothic.csv", "radius_arcsec": 2.0}
    marks = {int(c["objid"]): (c["known"], c["known_by"], c["reference_id"]) for c in found["candidates"]}
    assert marks[rows[2]["objid"]] == (True, "objid", "G1")
    assert marks[rows[5]["objid"]] == (True, "position", "G2")
    assert sum(known for known, _, _ in marks.values()) == 2 and len(marks) == 50
    by_id = {int(c["objid"]): c for c in found["candidates"]}
    assert abs(by_id[rows[5]["objid"]]["reference_sep_arcsec"] - 1.0) < 0.01
    vot = httpx.get(f"{url}/api/candidates", params={"label": "lens", "n": 50, "format": "votable"})
    assert vot.headers["content-disposition"] == 'attachment; filename="candidates-lens.vot"'
    table = votable.parse_single_table(io.BytesIO(vot.content)).to_table()
    known = {int(o): str(r) for o, k, r in zip(table["objid"], table["known"], table["reference_id"]) if k}
    assert known == {rows[2]["objid"]: "G1", rows[5]["objid"]: "G2"}
    assert httpx.get(f"{url}/api/settings").json()["reference"]["name"] == "gothic.csv"


def test_a_catalogue_without_positions_or_objids_is_refused(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("name,flux\na,1\n")
    with pytest.raises(ValueError, match=r"bad.csv' has no objid and no RA/Dec columns \(columns: name, flux\)"):
        Reference.read(path)
    with pytest.raises(ValueError, match="cannot read cross-match catalogue"):
        Reference.read(tmp_path / "missing.fits")


def test_the_pages_are_served_as_plain_modules_with_nothing_from_outside(mapped):
    url = mapped["url"]
    page = httpx.get(f"{url}/ui/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="app.js">' in page.text and "href='/ui/'" in httpx.get(f"{url}/").text
    seen, todo = set(), ["app.js", "style.css"]
    while todo:  # every module the app imports, transitively
        name = todo.pop()
        seen.add(name)
        answer = httpx.get(f"{url}/ui/{name}")
        assert answer.status_code == 200, name
        kind = "text/css" if name.endswith(".css") else "text/javascript"
        assert answer.headers["content-type"].startswith(kind), (name, answer.headers["content-type"])
        assert not re.search(r"""(?:import|from|url\()\s*["']?(?:https?:)?//""", answer.text), name
        todo += [m for m in re.findall(r'from "\./([\w.]+)"', answer.text) if m not in seen]
    assert {"app.js", "common.js", "search.js", "label.js", "map.js", "candidates.js"} <= seen


def test_a_list_of_objids_is_exported_as_their_catalogue_rows(mapped):
    rows, url = mapped["rows"], mapped["url"]
    chosen = [rows[3]["objid"], rows[1]["objid"], rows[3]["objid"], rows[45]["objid"]]
    vot = httpx.post(f"{url}/api/objects", params={"format": "votable"}, json={"objids": chosen}, timeout=30)
    assert vot.headers["content-disposition"] == 'attachment; filename="selection.vot"'
    table = votable.parse_single_table(io.BytesIO(vot.content)).to_table()
    assert [int(o) for o in table["objid"]] == [rows[3]["objid"], rows[1]["objid"], rows[45]["objid"]]
    np.testing.assert_allclose(np.asarray(table["ra"]), [rows[i]["ra"] for i in (3, 1, 45)])
    np.testing.assert_allclose(np.asarray(table["map_x"][:2]), [rows[3]["map_x"], rows[1]["map_x"]])
    assert np.ma.is_masked(table["map_x"][2])  # object 45 has no map position
    found = httpx.post(f"{url}/api/objects", json={"objids": [str(rows[7]["objid"])]}).json()["objects"]
    assert [(o["objid"], o["z"]) for o in found] == [(str(rows[7]["objid"]), rows[7]["z"])]
    with SsaldClient(mapped["address"]) as client, pytest.raises(SsaldError) as err:
        client.get_object(3)
    missing = httpx.post(f"{url}/api/objects", json={"objids": [rows[0]["objid"], 3]})
    assert missing.status_code == 404 and missing.json()["error"] == str(err.value)
    assert httpx.post(f"{url}/api/objects", json={"objids": []}).status_code == 400
    too_many = httpx.post(f"{url}/api/objects", json={"objids": list(range(1, 10_002))})
    assert too_many.status_code == 400 and "objids" in too_many.json()["error"]
