"""A user's ``where`` is checked before it reaches the Lance planner (issue 15, faults 1, 8 and 11)."""

from __future__ import annotations

import grpc
import pytest

from proto import ssald_pb2, ssald_pb2_grpc
from ssald_index.filters import MAX_QUOTED_CHARS, MAX_WHERE_TERMS
from tests.server.helpers import serve_process, write_db

TIMEOUT = 30


def _filtered_requests(rows, where: str) -> dict[str, object]:
    """One request per RPC that takes a filter (FindSimilarToImage needs a model; its filter is the same)."""
    f = ssald_pb2.Filter(where=where)
    objid, vector = rows[0]["objid"], rows[0]["embedding"]
    return {
        "FindSimilar": ssald_pb2.FindSimilarRequest(objid=objid, k=3, filter=f),
        "SearchVector": ssald_pb2.SearchVectorRequest(vector=vector, k=3, filter=f),
        "ConeSearch": ssald_pb2.ConeSearchRequest(ra=rows[0]["ra"], dec=rows[0]["dec"], radius_arcsec=1, k=3, filter=f),
        "Anomalies": ssald_pb2.AnomaliesRequest(n=3, filter=f),
        "NextToLabel": ssald_pb2.NextToLabelRequest(label="merger", n=3, seed_objid=objid, filter=f),
        "Candidates": ssald_pb2.CandidatesRequest(label="merger", n=3, filter=f),
    }


def test_a_700_term_filter_is_refused_and_the_server_lives(tmp_path):
    # Before the fix this filter killed the server with SIGSEGV (planner recursion); the server runs in a
    # child process so that a regression fails this test instead of killing the test run.
    db_path = tmp_path / "ssald.lance"
    rows = write_db(db_path)
    where = "+".join(["z"] * 700) + " > 0"
    with serve_process(db_path) as (proc, address), grpc.insecure_channel(address) as channel:
        stub = ssald_pb2_grpc.SsaldStub(channel)
        for rpc, request in _filtered_requests(rows, where).items():
            with pytest.raises(grpc.RpcError) as err:
                getattr(stub, rpc)(request, timeout=TIMEOUT)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (rpc, err.value.details())
            details = err.value.details()
            assert f"has 701 terms (operands); at most {MAX_WHERE_TERMS}" in details, details
            assert len(details) < MAX_QUOTED_CHARS + 200 and "(1403 characters)" in details
        assert proc.poll() is None
        reply = stub.SearchVector(ssald_pb2.SearchVectorRequest(vector=rows[1]["embedding"], k=3), timeout=TIMEOUT)
        assert reply.neighbours[0].object.objid == rows[1]["objid"]


@pytest.mark.parametrize("where", ["objid = $1", "objid = :a", "objid = ?", "z > $x"])
def test_placeholders_are_invalid_argument(address, db, where):
    with grpc.insecure_channel(address) as channel:
        stub = ssald_pb2_grpc.SsaldStub(channel)
        for rpc, request in _filtered_requests(db[1], where).items():
            with pytest.raises(grpc.RpcError) as err:
                getattr(stub, rpc)(request, timeout=TIMEOUT)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (rpc, err.value.details())
            assert "placeholder" in err.value.details()


def test_a_filter_cannot_escape_its_parentheses(address, db):
    rows = db[1]
    query, excluded = rows[0], rows[1]["objid"]
    with grpc.insecure_channel(address) as channel:
        stub = ssald_pb2_grpc.SsaldStub(channel)
        for where in ["true)) OR ((true", "true) OR (true", "(true"]:
            request = ssald_pb2.SearchVectorRequest(
                vector=query["embedding"],
                k=5,
                exclude_objids=[query["objid"], excluded],
                filter=ssald_pb2.Filter(where=where),
            )
            with pytest.raises(grpc.RpcError) as err:
                stub.SearchVector(request, timeout=TIMEOUT)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, where
            assert "bracket" in err.value.details() or "did not open" in err.value.details()
        # Parentheses, ? and $1 inside a string literal are text, not SQL.
        ok = stub.SearchVector(
            ssald_pb2.SearchVectorRequest(
                vector=query["embedding"],
                k=5,
                exclude_objids=[query["objid"], excluded],
                filter=ssald_pb2.Filter(where="(source NOT LIKE '%)) OR ((?$1%') AND (z IS NULL OR z >= 0)"),
            ),
            timeout=TIMEOUT,
        )
        found = {n.object.objid for n in ok.neighbours}
        assert len(found) == 5 and not found & {query["objid"], excluded}
