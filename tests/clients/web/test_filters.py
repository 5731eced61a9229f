"""Every filter query parameter reaches the gRPC filter (real uvicorn, real gRPC server, a real table with
morphology): z range, spectral and BPT classes, magnitude and morphology ranges, SQL, and the exclusion
radius, on /api/similar and on the batch and example searches. Each answer is the client's for the same
filter and holds exactly the objects that pass it."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest

from clients.client import SsaldClient
from clients.web.api import MAGNITUDES, MORPHOLOGY, filter_arguments
from tests.clients.web.conftest import running_web
from tests.server.helpers import make_rows, running_server, write_db

#: Objects 1..5 lie within 1 degree of object 0 on the sky and next to it in the embedding.
N_NEAR = 5


def _rows() -> list[dict[str, Any]]:
    rows = make_rows(seed=5)
    rng = np.random.default_rng(5)
    base = np.asarray(rows[0]["embedding"])
    for i, row in enumerate(rows):
        if i % 5 == 1 and row["spec_class"]:
            row["spec_class"], row["bpt_class"] = "QSO", "LINER"
        row["morph_gini"] = None if i % 7 == 0 else float(np.float32(rng.uniform(0.3, 0.7)))
        row["morph_asymmetry"] = float(np.float32(rng.uniform(0.0, 0.5)))
        if 1 <= i <= N_NEAR:
            row["ra"], row["dec"] = 150.0 + 0.1 * i, 2.0
            vector = base + 0.05 * rng.normal(size=base.size)
            row["embedding"] = (vector / np.linalg.norm(vector)).astype(np.float32).tolist()
    rows[0]["ra"], rows[0]["dec"] = 150.0, 2.0
    return rows


@pytest.fixture(scope="module")
def morph(tmp_path_factory):
    """``rows``, ``address`` and ``url`` of a 50-object table with classes, magnitudes and morphology."""
    rows = _rows()
    db = tmp_path_factory.mktemp("filters") / "db"
    write_db(db, rows)
    with running_server(db, refresh_s=0) as address, running_web(address) as url:
        yield {"rows": rows, "address": address, "url": url}


def _between(value: float | None, low: float | None, high: float | None) -> bool:
    return value is not None and (low is None or value >= low) and (high is None or value <= high)


#: name -> (query parameters, the client's filter keywords, which rows pass)
CASES = {
    "z range": ({"z_min": 0.1, "z_max": 0.2}, {"z_min": 0.1, "z_max": 0.2}, lambda r: _between(r["z"], 0.1, 0.2)),
    "spec class": ({"spec_class": "QSO"}, {"spec_class": ["QSO"]}, lambda r: r["spec_class"] == "QSO"),
    "BPT classes": (
        {"bpt_class": ["LINER", "Seyfert"]},
        {"bpt_class": ["LINER", "Seyfert"]},
        lambda r: r["bpt_class"] in ("LINER", "Seyfert"),
    ),
    "magnitudes": (
        {"mag_r_min": 16.5, "mag_r_max": 20.0, "mag_g_max": 21.0},
        {"magnitudes": {"mag_r": (16.5, 20.0), "mag_g": (None, 21.0)}},
        lambda r: _between(r["mag_r"], 16.5, 20.0) and _between(r["mag_g"], None, 21.0),
    ),
    "morphology": (
        {"morph_gini_min": 0.45, "morph_asymmetry_max": 0.3},
        {"where": "morph_gini >= 0.45 AND morph_asymmetry <= 0.3"},
        lambda r: _between(r["morph_gini"], 0.45, None) and _between(r["morph_asymmetry"], None, 0.3),
    ),
    "morphology and SQL": (
        {"morph_gini_max": 0.5, "where": "z_err IS NOT NULL"},
        {"where": "morph_gini <= 0.5 AND z_err IS NOT NULL"},
        lambda r: _between(r["morph_gini"], None, 0.5) and r["z_err"] is not None,
    ),
}


def _ids(answer: httpx.Response, key: str = "neighbours") -> list[int]:
    assert answer.status_code == 200, answer.text
    return [int(n["objid"]) for n in answer.json()[key]]


@pytest.mark.parametrize("case", list(CASES))
def test_each_filter_parameter_reaches_the_grpc_filter(morph, case):
    params, keywords, passes = CASES[case]
    rows, url, query = morph["rows"], morph["url"], morph["rows"][0]["objid"]
    k = len(rows) - 1  # every other object: the filtered answer is exactly the objects that pass
    found = _ids(httpx.get(f"{url}/api/similar", params={"objid": query, "k": k, **params}))
    with SsaldClient(morph["address"]) as client:
        assert found == [n.objid for n in client.find_similar(query, k=k, **keywords)]
        everything = [n.objid for n in client.find_similar(query, k=k)]
    expected = {r["objid"] for r in rows[1:] if passes(r)}
    assert found and set(found) == expected and len(found) < len(everything), case


def test_the_exclusion_radius_reaches_similar_batch_and_examples(morph):
    rows, url = morph["rows"], morph["url"]
    query, near = rows[0]["objid"], {r["objid"] for r in rows[1 : N_NEAR + 1]}
    plain = _ids(httpx.get(f"{url}/api/similar", params={"objid": query, "k": 8}))
    assert set(plain[:N_NEAR]) == near  # the near objects are the nearest neighbours too
    excluded = _ids(httpx.get(f"{url}/api/similar", params={"objid": query, "k": 8, "exclude_radius": 3600}))
    with SsaldClient(morph["address"]) as client:
        assert excluded == [n.objid for n in client.find_similar(query, k=8, exclude_radius_arcsec=3600)]
    assert not set(excluded) & near and len(excluded) == 8
    by_position = _ids(
        httpx.get(f"{url}/api/similar", params={"ra": 150.0, "dec": 2.0, "k": 8, "exclude_radius": 3600})
    )
    assert by_position == excluded
    batch = httpx.post(
        f"{url}/api/similar/batch", params={"k": 8}, json={"text": f"{query}\n150 2", "exclude_radius": 3600}
    )
    assert [[int(n["objid"]) for n in r["neighbours"]] for r in batch.json()["results"]] == [excluded, excluded]
    body = {"positives": [query], "exclude_radius": 3600}
    examples = _ids(httpx.post(f"{url}/api/similar/examples", params={"k": 8}, json=body))
    assert not set(examples) & near and len(examples) == 8


def test_the_range_filters_reach_the_batch_examples_and_cone_queries(morph):
    rows, url = morph["rows"], morph["url"]
    query = rows[0]["objid"]
    params = {"k": 49, "mag_r_max": 19.0, "morph_gini_min": 0.4}
    passes = [_between(r["mag_r"], None, 19.0) and _between(r["morph_gini"], 0.4, None) for r in rows]
    expected = {r["objid"] for r, ok in zip(rows[1:], passes[1:]) if ok}
    batch = httpx.post(f"{url}/api/similar/batch", params=params, json={"text": str(query)})
    assert {int(n["objid"]) for n in batch.json()["results"][0]["neighbours"]} == expected and expected
    examples = _ids(httpx.post(f"{url}/api/similar/examples", params=params, json={"positives": [query]}))
    assert set(examples) == expected
    cone = httpx.get(
        f"{url}/api/cone/objects", params={"ra": 150, "dec": 2, "radius": 3600, "morph_gini_min": 0.4}
    ).json()
    inside = {r["objid"] for r in rows[: N_NEAR + 1] if _between(r["morph_gini"], 0.4, None)}
    assert {int(o["objid"]) for o in cone["objects"]} == inside and cone["n_found"] == len(inside) < N_NEAR + 1


def test_bad_range_parameters_are_400_naming_them(morph):
    url, query = morph["url"], morph["rows"][0]["objid"]
    cases = [
        ({"mag_r_min": 20, "mag_r_max": 18}, "mag_r_min (20) is above mag_r_max (18): the range holds nothing"),
        ({"morph_gini_min": "abc"}, "morph_gini_min"),
        ({"mag_u_max": "inf"}, "mag_u_max"),
        # A table without a column (e.g. written before morphology existed) says which: the server's 400.
        ({"where": "morph_nosuch > 1"}, "No field named morph_nosuch"),
    ]
    for params, words in cases:
        answer = httpx.get(f"{url}/api/similar", params={"objid": query, **params})
        assert answer.status_code == 400 and words in answer.json()["error"], (params, answer.text)


def test_the_range_columns_are_the_tables_and_the_pages_get_them(morph):
    from ssald_index.schema import MAGNITUDE_COLUMNS, MORPHOLOGY_FEATURES

    assert MAGNITUDES == MAGNITUDE_COLUMNS and MORPHOLOGY == MORPHOLOGY_FEATURES
    settings = httpx.get(f"{morph['url']}/api/settings").json()
    assert settings["magnitudes"] == list(MAGNITUDES) and settings["morphology"] == list(MORPHOLOGY)
    assert filter_arguments(where="z > 0.1", ranges={"morph_m20_max": -1.5, "mag_z_min": 14.0}) == {
        "z_min": None, "z_max": None, "spec_class": [], "bpt_class": [],
        "magnitudes": {"mag_z": (14.0, None)}, "where": "morph_m20 <= -1.5 AND (z > 0.1)",
    }  # fmt: skip
