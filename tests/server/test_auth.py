"""Bearer tokens on a real server (issue 15): who may write labels, who may read, and what they are told."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from clients import PermissionDenied, SsaldClient, Unauthenticated
from proto import ssald_pb2
from server.app import create_server
from server.auth import WRITE_METHODS, bearer_token
from server.options import InsecureBind, Security, is_loopback
from tests.server.helpers import FIRST_OBJID, running_server, write_db

TOKEN = "write-token-5f1c9a7e2b"
READ_TOKEN = "read-token-0d3e8b6a41"
WRONG = "wrong-token-77aa31c0ee"


@pytest.fixture(scope="module")
def db_path(tmp_path_factory) -> Path:
    """A database of its own: these tests write labels."""
    path = tmp_path_factory.mktemp("auth") / "ssald.lance"
    write_db(path)
    return path


@contextlib.contextmanager
def _server(db_path: Path, **security) -> Iterator[str]:
    with running_server(db_path, refresh_s=0, security=Security(**security)) as address:
        yield address


@pytest.fixture(scope="module")
def writes_mode(db_path) -> Iterator[str]:
    with _server(db_path, token=TOKEN, read_token=READ_TOKEN) as address:
        yield address


@pytest.fixture(scope="module")
def all_mode(db_path) -> Iterator[str]:
    with _server(db_path, token=TOKEN, read_token=READ_TOKEN, auth="all") as address:
        yield address


def _n_labels(address: str) -> int:
    with SsaldClient(address, token=TOKEN) as client:
        return client.stats()["n_labels"]


def test_anonymous_submit_labels_is_unauthenticated_and_writes_nothing(writes_mode) -> None:
    before = _n_labels(writes_mode)
    with SsaldClient(writes_mode) as client, pytest.raises(Unauthenticated) as err:
        client.submit_labels([(FIRST_OBJID, "merger")])
    assert err.value.code == "UNAUTHENTICATED"
    assert "SubmitLabels needs a bearer token" in str(err.value)
    assert _n_labels(writes_mode) == before


def test_a_wrong_token_is_unauthenticated_and_not_echoed(writes_mode) -> None:
    before = _n_labels(writes_mode)
    with SsaldClient(writes_mode, token=WRONG) as client, pytest.raises(Unauthenticated) as err:
        client.submit_labels([(FIRST_OBJID, "merger")])
    assert "the bearer token is not valid" in str(err.value)
    assert WRONG not in str(err.value) and TOKEN not in str(err.value)
    assert _n_labels(writes_mode) == before


def test_the_token_writes(writes_mode) -> None:
    before = _n_labels(writes_mode)
    with SsaldClient(writes_mode, token=TOKEN) as client:
        assert client.submit_labels([(FIRST_OBJID, "merger")]).n_written == 1
    assert _n_labels(writes_mode) == before + 1


def test_the_read_token_may_not_write(writes_mode) -> None:
    with SsaldClient(writes_mode, token=READ_TOKEN) as client, pytest.raises(PermissionDenied) as err:
        client.submit_labels([(FIRST_OBJID, "merger")])
    assert err.value.code == "PERMISSION_DENIED" and "read-only token" in str(err.value)


def test_reads_need_no_token_in_writes_mode(writes_mode) -> None:
    with SsaldClient(writes_mode) as client:
        assert client.stats()["n_objects"] == 50
        assert len(client.find_similar(FIRST_OBJID, k=3)) == 3


@pytest.mark.parametrize("token", [None, WRONG])
def test_reads_are_refused_without_a_valid_token_in_all_mode(all_mode, token) -> None:
    with SsaldClient(all_mode, token=token) as client:
        with pytest.raises(Unauthenticated, match="Stats"):
            client.stats()
        with pytest.raises(Unauthenticated, match="FindSimilar"):
            client.find_similar(FIRST_OBJID, k=3)


@pytest.mark.parametrize("token", [TOKEN, READ_TOKEN])
def test_reads_pass_with_either_token_in_all_mode(all_mode, token) -> None:
    with SsaldClient(all_mode, token=token) as client:
        assert client.stats()["n_objects"] == 50


def test_health_stays_open_and_reflection_is_closed_in_all_mode(all_mode) -> None:
    with grpc.insecure_channel(all_mode) as channel:
        check = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert check.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as err:
            ProtoReflectionDescriptorDatabase(channel).get_services()
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_every_rpc_is_classified_as_a_read_or_a_write() -> None:
    """A new RPC fails here until it is placed: a write belongs in ``server.auth.WRITE_METHODS``."""
    service = ssald_pb2.DESCRIPTOR.services_by_name["Ssald"]
    methods = {f"/{service.full_name}/{m.name}" for m in service.methods}
    reads = {"FindSimilar", "GetObject", "Stats", "SearchVector", "FindSimilarToImage", "ConeSearch", "Anomalies",
             "NextToLabel", "Candidates", "GetStamp", "ObjectsInCone", "FindSimilarBatch",
             "FindSimilarToExamples", "MapPoints"}  # fmt: skip
    assert WRITE_METHODS == {"/ssald.v1.Ssald/SubmitLabels"}
    assert methods - WRITE_METHODS == {f"/ssald.v1.Ssald/{name}" for name in reads}


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ((("authorization", "Bearer abc"),), "abc"),
        ((("authorization", "bearer  abc "),), "abc"),
        ((("authorization", "Basic abc"),), None),
        ((("authorization", "Bearer "),), None),
        ((("x-other", "Bearer abc"),), None),
        (None, None),
    ],
)
def test_bearer_token_reads_only_the_bearer_scheme(metadata, expected) -> None:
    assert bearer_token(metadata) == expected


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.3.2.1", True), ("::1", True), ("[::1]", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("[::]", False), ("192.168.1.20", False), ("", False), ("example.org", False)],
)  # fmt: skip
def test_is_loopback(host, loopback) -> None:
    assert is_loopback(host) is loopback


def test_a_server_without_a_token_refuses_every_interface(db_path) -> None:
    with pytest.raises(InsecureBind, match=r"refusing to listen on '0\.0\.0\.0' without a token.*--insecure"):
        create_server(db_path, "0.0.0.0:0")
    for security in (Security(token=TOKEN), Security(insecure=True)):
        server, port = create_server(db_path, "0.0.0.0:0", security=security)
        server.stop(None)
        assert port > 0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"token": ""}, "the token is empty"),
        ({"token": "has space"}, "printable ASCII"),
        ({"read_token": READ_TOKEN}, "a read token needs a"),
        ({"token": TOKEN, "read_token": TOKEN}, "read token equals the token"),
        ({"auth": "all"}, "auth 'all' requires a token"),
        ({"auth": "some"}, "auth must be one of"),
        ({"tls_cert": "cert.pem"}, "both a certificate and its private key"),
        ({"tls_client_ca": "ca.pem"}, "client certificates"),
    ],
)
def test_contradictory_security_is_refused(fields, message) -> None:
    with pytest.raises(ValueError, match=message):
        Security(**fields)


def test_tokens_are_not_in_the_repr() -> None:
    text = repr(Security(token=TOKEN, read_token=READ_TOKEN))
    assert TOKEN not in text and READ_TOKEN not in text
    assert TOKEN not in repr(SsaldClient("127.0.0.1:1", token=TOKEN))
