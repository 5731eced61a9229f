"""FindSimilarBatch and FindSimilarToExamples against a real server over real tables (issue 16)."""

from __future__ import annotations

import threading
import time

import grpc
import numpy as np
import pytest

from proto import ssald_pb2, ssald_pb2_grpc
from server.service import SsaldServicer
from ssald_index.batch import MAX_BATCH_INPUTS
from tests.server.helpers import exact_neighbours, make_rows, running_server, write_db

TIMEOUT = 30.0
N_CLASS, CLASSES, DIM = 30, ("ring", "merger", "spiral", "elliptical"), 16


@pytest.fixture(scope="module")
def stub(address):
    with grpc.insecure_channel(address) as channel:
        yield ssald_pb2_grpc.SsaldStub(channel)


def _classed_rows() -> list[dict]:
    """120 rows, 30 per class, each class a noisy cloud around its own direction; one near-twin of row 0
    (same class, 1 arcsec away on the sky) is appended last."""
    rng = np.random.default_rng(11)
    centres = rng.normal(size=(len(CLASSES), DIM))
    rows = make_rows(n=N_CLASS * len(CLASSES) + 1, dim=DIM, seed=11)
    for i, row in enumerate(rows[:-1]):
        c = i % len(CLASSES)
        v = centres[c] + rng.normal(scale=0.9, size=DIM)
        row["embedding"] = (v / np.linalg.norm(v)).astype(np.float32).tolist()
        row["truth_class"] = CLASSES[c]
    twin = rows[-1]
    twin.update(truth_class=CLASSES[0], ra=rows[0]["ra"], dec=rows[0]["dec"] + 1.0 / 3600)
    v = np.asarray(rows[0]["embedding"]) + 0.01 * rng.normal(size=DIM)
    twin["embedding"] = (v / np.linalg.norm(v)).astype(np.float32).tolist()
    return rows


@pytest.fixture(scope="module")
def classed(tmp_path_factory):
    """(rows, stub) of a real server over the 121-row table with classes."""
    rows = _classed_rows()
    path = tmp_path_factory.mktemp("classed") / "ssald.lance"
    write_db(path, rows)
    with running_server(path) as address, grpc.insecure_channel(address) as channel:
        yield rows, ssald_pb2_grpc.SsaldStub(channel)


def _rocchio_top(rows: list[dict], positives: list[int], negatives: list[int], weight: float, k: int) -> list[int]:
    """Brute-force reference: cosine top-k to unit(mean unit positives - weight x mean unit negatives)."""
    ids = np.array([r["objid"] for r in rows])
    vectors = np.array([r["embedding"] for r in rows], dtype=np.float64)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    query = vectors[np.isin(ids, positives)].mean(axis=0)
    if negatives:
        query -= weight * vectors[np.isin(ids, negatives)].mean(axis=0)
    distance = 1.0 - vectors @ (query / np.linalg.norm(query))
    order = [j for j in np.argsort(distance, kind="stable") if ids[j] not in {*positives, *negatives}]
    return [int(ids[j]) for j in order[:k]]


def _batch(stub, **fields) -> list[ssald_pb2.BatchNeighbours]:
    return list(stub.FindSimilarBatch(ssald_pb2.FindSimilarBatchRequest(**fields), timeout=TIMEOUT))


def test_batch_answers_every_input_in_order_and_a_bad_objid_alone_fails(stub, db):
    _, rows = db
    objids = [rows[0]["objid"], 5, rows[2]["objid"], rows[7]["objid"]]
    replies = _batch(stub, objids=objids, k=6)
    assert [r.index for r in replies] == [0, 1, 2, 3]
    for reply, objid in zip(replies, objids):
        assert reply.objid == objid
        if objid == 5:
            assert reply.HasField("error") and not reply.neighbours
            assert reply.error.code == "NOT_FOUND" and "objid 5" in reply.error.message
        else:
            assert not reply.HasField("error")
            assert [n.object.objid for n in reply.neighbours] == [o for o, _ in exact_neighbours(rows, objid, 6)]


def test_batch_positions_resolve_like_cone_search(stub, db):
    _, rows = db
    near = ssald_pb2.SkyPosition(ra=rows[4]["ra"], dec=rows[4]["dec"] + 0.5 / 3600)
    empty = ssald_pb2.SkyPosition(ra=rows[4]["ra"], dec=rows[4]["dec"] + 1.0)  # 1 degree from row 4
    replies = _batch(
        stub,
        objids=[rows[1]["objid"]],
        positions=[near, empty, ssald_pb2.SkyPosition(ra=400.0, dec=0.0)],
        radius_arcsec=5.0,
        k=4,
    )
    assert [r.index for r in replies] == [0, 1, 2, 3]
    cone = stub.ConeSearch(
        ssald_pb2.ConeSearchRequest(ra=near.ra, dec=near.dec, radius_arcsec=5.0, k=4), timeout=TIMEOUT
    )
    matched = replies[1]
    assert matched.objid == matched.match.objid == cone.match.objid == rows[4]["objid"]
    assert matched.separation_arcsec == pytest.approx(0.5, abs=1e-3)
    assert [n.object.objid for n in matched.neighbours] == [n.object.objid for n in cone.neighbours]
    assert replies[2].error.code == "NOT_FOUND" and "no object within 5 arcsec" in replies[2].error.message
    assert not replies[2].HasField("objid")
    assert replies[3].error.code == "INVALID_ARGUMENT" and "ra must be in [0, 360)" in replies[3].error.message
    assert len(replies[0].neighbours) == 4 and not replies[0].HasField("error")


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"objids": list(range(1, MAX_BATCH_INPUTS + 2)), "k": 3}, f"at most {MAX_BATCH_INPUTS} inputs"),
        ({"k": 3}, "at least one objid or position"),
        ({"objids": [1], "k": 0}, "k must be"),
        ({"positions": [ssald_pb2.SkyPosition(ra=1.0, dec=1.0)], "k": 3}, "radius_arcsec must be in (0, 3600]"),
        ({"objids": [1], "k": 3, "space": "colour"}, "colour"),
        ({"objids": "first", "k": 3, "filter": ssald_pb2.Filter(where="nonsense >")}, "bad filter"),
    ],
    ids=["too-many", "empty", "bad-k", "no-radius", "bad-space", "bad-filter"],
)
def test_batch_whole_request_problems_fail_the_call_before_any_result(stub, db, fields, words):
    if fields.get("objids") == "first":
        fields = {**fields, "objids": [db[1][0]["objid"]]}
    received = []
    with pytest.raises(grpc.RpcError) as err:
        for reply in stub.FindSimilarBatch(ssald_pb2.FindSimilarBatchRequest(**fields), timeout=TIMEOUT):
            received.append(reply)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in err.value.details()
    assert received == []


def test_batch_stops_working_when_the_client_cancels(stub, db, monkeypatch):
    """The in-process server answers slowly (20 ms an input); a cancelled call stops its loop."""
    _, rows = db
    answered = []
    lock = threading.Lock()
    original = SsaldServicer._neighbours_of

    def slow(self, objid, request):
        time.sleep(0.02)
        with lock:
            answered.append(objid)
        return original(self, objid, request)

    monkeypatch.setattr(SsaldServicer, "_neighbours_of", slow)
    n = 2000
    call = stub.FindSimilarBatch(
        ssald_pb2.FindSimilarBatchRequest(objids=[rows[i % len(rows)]["objid"] for i in range(n)], k=3),
        timeout=TIMEOUT,
    )
    first = [next(call) for _ in range(3)]
    assert [r.index for r in first] == [0, 1, 2]
    call.cancel()
    time.sleep(0.5)
    with lock:
        after_cancel = len(answered)
    time.sleep(0.5)
    with lock:
        assert len(answered) == after_cancel, "the server kept answering a cancelled batch"
    assert after_cancel < 100


def test_examples_query_is_rocchio_excludes_the_examples_and_finds_their_class(classed):
    rows, stub = classed
    rings = [r["objid"] for r in rows[:-1] if r["truth_class"] == "ring"]
    positives = rings[1:4]
    reply = stub.FindSimilarToExamples(
        ssald_pb2.FindSimilarToExamplesRequest(positive_objids=positives, k=10), timeout=TIMEOUT
    )
    found = [n.object.objid for n in reply.neighbours]
    assert found == _rocchio_top(rows, positives, [], 0.5, 10)
    assert not set(found) & set(positives)
    precision = np.mean([n.object.truth_class == "ring" for n in reply.neighbours])
    assert precision >= 0.8  # the class is a quarter of the table


def test_negatives_turn_the_query_away_from_them(classed):
    rows, stub = classed
    by_class = {c: [r["objid"] for r in rows[:-1] if r["truth_class"] == c] for c in CLASSES}
    positives, negatives = by_class["ring"][:3], by_class["merger"][:3]
    plain = stub.FindSimilarToExamples(
        ssald_pb2.FindSimilarToExamplesRequest(positive_objids=positives, k=20), timeout=TIMEOUT
    )
    unlike = stub.FindSimilarToExamples(
        ssald_pb2.FindSimilarToExamplesRequest(
            positive_objids=positives, negative_objids=negatives, negative_weight=1.0, k=20
        ),
        timeout=TIMEOUT,
    )
    found = [n.object.objid for n in unlike.neighbours]
    assert found == _rocchio_top(rows, positives, negatives, 1.0, 20)
    assert found != [n.object.objid for n in plain.neighbours]
    assert not set(found) & {*positives, *negatives}
    mergers = {n.object.objid for n in plain.neighbours if n.object.truth_class == "merger"}
    assert len({o for o in found if o in set(by_class["merger"])}) <= len(mergers)


def test_examples_sky_exclusion_drops_an_examples_neighbour_on_the_sky(classed):
    rows, stub = classed
    twin = rows[-1]["objid"]  # 1 arcsec from rows[0], nearly its embedding
    request = ssald_pb2.FindSimilarToExamplesRequest(positive_objids=[rows[0]["objid"]], k=5)
    assert stub.FindSimilarToExamples(request, timeout=TIMEOUT).neighbours[0].object.objid == twin
    request.exclude_radius_arcsec = 3.0
    found = [n.object.objid for n in stub.FindSimilarToExamples(request, timeout=TIMEOUT).neighbours]
    assert twin not in found and len(found) == 5
    request.exclude_radius_arcsec, request.exclude_objids[:] = 0.0, [twin]
    assert twin not in [n.object.objid for n in stub.FindSimilarToExamples(request, timeout=TIMEOUT).neighbours]


@pytest.mark.parametrize(
    "fields, code, words",
    [
        ({"positive_objids": ["row0", 77, 78]}, grpc.StatusCode.NOT_FOUND, "example objids 77, 78"),
        ({"negative_objids": ["row0"]}, grpc.StatusCode.INVALID_ARGUMENT, "at least one positive"),
        (
            {"positive_objids": ["row0"], "negative_objids": ["row0"]},
            grpc.StatusCode.INVALID_ARGUMENT,
            "both positive and negative",
        ),
        (
            {"positive_objids": ["row0"], "negative_objids": [None], "negative_weight": 11.0},
            grpc.StatusCode.INVALID_ARGUMENT,
            "negative_weight must lie in [0, 10]",
        ),
        ({"positive_objids": ["row0"], "k": 0}, grpc.StatusCode.INVALID_ARGUMENT, "k must be"),
    ],
    ids=["unknown", "no-positive", "both", "weight", "bad-k"],
)
def test_examples_errors_name_the_problem(stub, db, fields, code, words):
    _, rows = db
    swap = {"row0": rows[0]["objid"], None: rows[1]["objid"]}
    request = {"k": 5, **{k: [swap.get(o, o) for o in v] if isinstance(v, list) else v for k, v in fields.items()}}
    with pytest.raises(grpc.RpcError) as err:
        stub.FindSimilarToExamples(ssald_pb2.FindSimilarToExamplesRequest(**request), timeout=TIMEOUT)
    assert err.value.code() == code
    assert words in err.value.details()
