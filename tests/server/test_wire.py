"""Undecodable requests (issue 15, fault 4): INVALID_ARGUMENT on every RPC, no traceback, server alive after."""

from __future__ import annotations

import logging

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from proto import ssald_pb2, ssald_pb2_grpc
from server.convert import MAX_STATUS_BYTES
from server.wire import SSALD_SERVICE, Undecodable, checked_deserializer
from tests.server.helpers import N_OBJECTS

TIMEOUT = 10.0
# Each fails to parse as every request message: a truncated varint tag, a length past the end, wire
# type 7 (none such), and text.
GARBAGE = [b"\xff" * 16, b"\x0a\xff", b"\x07", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\xff"]
METHODS = [method.name for method in SSALD_SERVICE.methods]


def _raw_call(channel: grpc.Channel, method: str, body: bytes) -> grpc.RpcError:
    path = f"/{SSALD_SERVICE.full_name}/{method}"
    call = channel.unary_unary(path, request_serializer=None, response_deserializer=None)
    with pytest.raises(grpc.RpcError) as info:
        call(body, timeout=TIMEOUT)
    return info.value


@pytest.mark.parametrize("method", METHODS)
def test_garbage_is_invalid_argument_on_every_rpc(address, method, caplog) -> None:
    """Before: grpcio's deserializer raised, so INTERNAL "Exception deserializing request!" and a traceback."""
    expected_type = SSALD_SERVICE.methods_by_name[method].input_type.full_name
    with grpc.insecure_channel(address) as channel, caplog.at_level(logging.DEBUG):
        for body in GARBAGE:
            error = _raw_call(channel, method, body)
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (body, error.details())
            expected = f"request is not a valid {expected_type}: {len(body)} bytes that do not parse as it"
            assert error.details() == expected
            assert len(error.details().encode()) <= MAX_STATUS_BYTES
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_server_answers_after_garbage(address) -> None:
    with grpc.insecure_channel(address) as channel:
        for method in METHODS:
            _raw_call(channel, method, GARBAGE[0])
        stats = ssald_pb2_grpc.SsaldStub(channel).Stats(ssald_pb2.StatsRequest(), timeout=TIMEOUT)
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT)
    assert stats.n_objects == N_OBJECTS
    assert health.status == health_pb2.HealthCheckResponse.SERVING


def test_valid_bytes_still_reach_the_servicer(address, db) -> None:
    """The checked handlers pass parsed requests on unchanged (raw bytes in, raw bytes out)."""
    objid = db[1][3]["objid"]
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(
            f"/{SSALD_SERVICE.full_name}/GetObject", request_serializer=None, response_deserializer=None
        )
        answer = call(ssald_pb2.GetObjectRequest(objid=objid).SerializeToString(), timeout=TIMEOUT)
    assert ssald_pb2.Object.FromString(answer).objid == objid


def test_checked_deserializer_marks_only_bad_bytes() -> None:
    deserialize = checked_deserializer(ssald_pb2.FindSimilarRequest)
    assert deserialize(ssald_pb2.FindSimilarRequest(objid=5, k=3).SerializeToString()).k == 3
    assert deserialize(b"\x0a\xff") == Undecodable("ssald.v1.FindSimilarRequest", 2)
