"""The servicer through real gRPC stubs, over a real LanceDB table: results and status codes."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from proto import ssald_pb2, ssald_pb2_grpc
from server.convert import object_to_proto
from server.service import SsaldServicer
from ssald_index.store import MAX_K
from tests.server.helpers import MODEL_ID, N_OBJECTS, exact_neighbours

TIMEOUT = 10.0


@pytest.fixture(scope="module")
def stub(address):
    with grpc.insecure_channel(address) as channel:
        yield ssald_pb2_grpc.SsaldStub(channel)


def test_find_similar_matches_brute_force(stub, db) -> None:
    _, rows = db
    query = rows[4]["objid"]
    reply = stub.FindSimilar(ssald_pb2.FindSimilarRequest(objid=query, k=7), timeout=TIMEOUT)
    got = [(n.object.objid, n.distance) for n in reply.neighbours]
    expected = exact_neighbours(rows, query, 7)
    assert [objid for objid, _ in got] == [objid for objid, _ in expected]
    np.testing.assert_allclose([d for _, d in got], [d for _, d in expected], atol=1e-5)
    assert reply.model_id == MODEL_ID
    assert all(not n.object.embedding for n in reply.neighbours)


def test_find_similar_k_equal_to_all_others(stub, db) -> None:
    _, rows = db
    reply = stub.FindSimilar(ssald_pb2.FindSimilarRequest(objid=rows[0]["objid"], k=MAX_K), timeout=TIMEOUT)
    ids = [n.object.objid for n in reply.neighbours]
    assert len(ids) == N_OBJECTS - 1 and rows[0]["objid"] not in ids


def test_get_object_round_trips_nulls_and_embedding(stub, db) -> None:
    _, rows = db
    for row in rows[:4]:
        request = ssald_pb2.GetObjectRequest(objid=row["objid"], with_embedding=True)
        obj = stub.GetObject(request, timeout=TIMEOUT)
        for name in ("mag_r", "specobjid", "z", "spec_class", "bpt_class", "truth_class"):
            assert obj.HasField(name) == (row[name] is not None), name
            if row[name] is not None:
                assert getattr(obj, name) == row[name], name  # float32 values survive exactly
        for name in ("objid", "ra", "dec", "model_id"):
            assert getattr(obj, name) == row[name], name
        assert obj.source == row["source"].rsplit("/", 1)[-1]  # the stamp's file name, no server folder
        np.testing.assert_array_equal(np.float32(obj.embedding), np.float32(row["embedding"]))
    bare = stub.GetObject(ssald_pb2.GetObjectRequest(objid=rows[0]["objid"]), timeout=TIMEOUT)
    assert len(bare.embedding) == 0


def test_stats(stub) -> None:
    reply = stub.Stats(ssald_pb2.StatsRequest(), timeout=TIMEOUT)
    assert (reply.n_objects, reply.model_id, reply.embedding_dim) == (N_OBJECTS, MODEL_ID, 16)


@pytest.mark.parametrize("rpc", ["FindSimilar", "GetObject"])
def test_unknown_objid_is_not_found(stub, rpc) -> None:
    if rpc == "FindSimilar":
        request = ssald_pb2.FindSimilarRequest(objid=42, k=3)
    else:
        request = ssald_pb2.GetObjectRequest(objid=42)
    with pytest.raises(grpc.RpcError) as info:
        getattr(stub, rpc)(request, timeout=TIMEOUT)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert "42" in info.value.details()


@pytest.mark.parametrize("objid", [-(2**63), -1, 0, 2**63 - 1])
@pytest.mark.parametrize("rpc", ["FindSimilar", "GetObject", "GetStamp", "NextToLabel", "SubmitLabels"])
def test_objids_outside_the_table_range_are_not_found(stub, rpc, objid) -> None:
    """Objids are 1..2**63-1: any other int64, -2**63 included, is an unknown objid, never a storage error."""
    request = {
        "FindSimilar": ssald_pb2.FindSimilarRequest(objid=objid, k=3),
        "GetObject": ssald_pb2.GetObjectRequest(objid=objid),
        "GetStamp": ssald_pb2.GetStampRequest(objid=objid),
        "NextToLabel": ssald_pb2.NextToLabelRequest(label="x", n=3, seed_objid=objid),
        "SubmitLabels": ssald_pb2.SubmitLabelsRequest(labels=[ssald_pb2.LabelEntry(objid=objid, label="x")]),
    }[rpc]
    with pytest.raises(grpc.RpcError) as info:
        getattr(stub, rpc)(request, timeout=TIMEOUT)
    assert (info.value.code(), str(objid) in info.value.details()) == (grpc.StatusCode.NOT_FOUND, True)


@pytest.mark.parametrize(
    ("vector", "named"),
    [
        ([1e-45] * 16, "smallest normal"),
        ([1e-40] + [0.0] * 15, "smallest normal"),
        ([3e38] * 16, "norm of inf"),
        ([0.0] * 16, "all its elements are 0"),
        ([1.0] * 15 + [float("nan")], "element 15 is nan"),
        ([float("-inf")] + [1.0] * 15, "element 0 is -inf"),
    ],
)
def test_a_query_vector_without_a_direction_is_invalid_argument(stub, vector, named) -> None:
    """Subnormal, overflowing, zero or non-finite queries are refused with the reason, not answered with nothing."""
    with pytest.raises(grpc.RpcError) as info:
        stub.SearchVector(ssald_pb2.SearchVectorRequest(vector=vector, k=3), timeout=TIMEOUT)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert named in info.value.details()


def test_a_tiny_but_normal_query_vector_is_searched(stub, db) -> None:
    _, rows = db
    query = np.asarray(rows[4]["embedding"], dtype=np.float32) * np.float32(1e-19)
    reply = stub.SearchVector(ssald_pb2.SearchVectorRequest(vector=query.tolist(), k=1), timeout=TIMEOUT)
    assert [n.object.objid for n in reply.neighbours] == [rows[4]["objid"]]


@pytest.mark.parametrize("k", [0, -3, MAX_K + 1])
def test_bad_k_is_invalid_argument(stub, db, k) -> None:
    with pytest.raises(grpc.RpcError) as info:
        stub.FindSimilar(ssald_pb2.FindSimilarRequest(objid=db[1][0]["objid"], k=k), timeout=TIMEOUT)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert str(k) in info.value.details() and f"1 and {MAX_K}" in info.value.details()


def test_object_to_proto_leaves_nulls_unset_and_ignores_extra_keys() -> None:
    msg = object_to_proto({"objid": 5, "z": None, "spec_class": "QSO", "distance": 0.3, "cluster": 2})
    assert msg.objid == 5 and not msg.HasField("z") and msg.spec_class == "QSO"


class _Aborted(Exception):
    pass


class _Context:
    def abort(self, code, details):
        self.code, self.details = code, details
        raise _Aborted


class _BrokenHandle:
    model_id = ""

    def store(self):
        raise OSError("disk on fire")


def test_unexpected_errors_become_internal() -> None:
    context = _Context()
    with pytest.raises(_Aborted):
        SsaldServicer(_BrokenHandle()).Stats(ssald_pb2.StatsRequest(), context)
    assert context.code == grpc.StatusCode.INTERNAL and "disk on fire" in context.details
