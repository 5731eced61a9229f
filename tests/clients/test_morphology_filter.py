"""Morphology columns as query filters, through the client and a real gRPC server."""

from __future__ import annotations

import numpy as np
import pytest

from clients import InvalidArgument, SsaldClient
from tests.server.helpers import make_rows, running_server, write_db


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    rows = make_rows()
    rng = np.random.default_rng(3)
    for i, row in enumerate(rows):
        # Every fifth object unmeasured (null), as after a failed measurement.
        row["morph_asymmetry"] = None if i % 5 == 0 else float(np.float32(rng.uniform(0, 0.6)))
        row["morph_flag"] = 1 if i % 5 == 0 else 0
        row["density_score"] = float(np.float32(rng.uniform()))
    db = tmp_path_factory.mktemp("morph") / "db"
    write_db(db, rows)
    with running_server(db) as address, SsaldClient(address, timeout=30.0) as client:
        yield client, rows


def _asymmetric(rows):
    return {r["objid"] for r in rows if r["morph_asymmetry"] is not None and r["morph_asymmetry"] > 0.3}


def test_find_similar_where_on_morphology(served):
    client, rows = served
    wanted = _asymmetric(rows)
    assert 5 <= len(wanted) < len(rows) - 10
    query = rows[1]["objid"]
    found = client.find_similar(query, k=len(rows), where="morph_asymmetry > 0.3")
    assert {n.objid for n in found} == wanted - {query}
    both = client.find_similar(query, k=len(rows), where="morph_asymmetry > 0.3", spec_class="GALAXY")
    assert {n.objid for n in both} == {r["objid"] for r in rows if r["objid"] in wanted and r["spec_class"]} - {query}


def test_anomalies_and_cone_search_take_the_morphology_filter(served):
    client, rows = served
    wanted = _asymmetric(rows)
    top = client.anomalies(len(rows), where="morph_asymmetry > 0.3")
    assert {a.objid for a in top} == wanted
    row = rows[2]  # the position's match is any object; the filter selects its neighbours
    cone = client.cone_search(row["ra"], row["dec"], 1.0, k=len(rows), where="morph_asymmetry > 0.3")
    assert cone.match.objid == row["objid"]
    assert {n.objid for n in cone.neighbours} == wanted - {row["objid"]}
    failed = client.anomalies(len(rows), where="morph_flag != 0")
    assert {a.objid for a in failed} == {r["objid"] for r in rows if r["morph_flag"]}


def test_unknown_morphology_column_is_an_invalid_argument(served):
    client, rows = served
    with pytest.raises(InvalidArgument):
        client.find_similar(rows[1]["objid"], k=5, where="morph_asymetry > 0.3")
