"""Server assembly: health, reflection, a table that appears late, model checks, the serving process."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import types

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from proto import ssald_pb2, ssald_pb2_grpc
from server.app import SERVICE_NAME, create_server
from tests.server.helpers import MODEL_ID, N_OBJECTS, running_server, write_db

TIMEOUT = 10.0
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _health(address: str, service: str) -> int:
    with grpc.insecure_channel(address) as channel:
        request = health_pb2.HealthCheckRequest(service=service)
        return health_pb2_grpc.HealthStub(channel).Check(request, timeout=TIMEOUT).status


def test_health_is_serving(address) -> None:
    assert _health(address, "") == SERVING
    assert _health(address, "ssald.v1.Ssald") == SERVING


def test_reflection_lists_the_service(address) -> None:
    with grpc.insecure_channel(address) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = set(database.get_services())
        assert {"ssald.v1.Ssald", "grpc.health.v1.Health"} <= services
        assert database.FindFileContainingSymbol("ssald.v1.Ssald").package == "ssald.v1"


def test_table_not_ready_is_unavailable_until_it_appears(tmp_path) -> None:
    db_path = tmp_path / "late.lance"
    with running_server(db_path) as address, grpc.insecure_channel(address) as channel:
        stub = ssald_pb2_grpc.SsaldStub(channel)
        for call, request in [
            (stub.Stats, ssald_pb2.StatsRequest()),
            (stub.FindSimilar, ssald_pb2.FindSimilarRequest(objid=1, k=3)),
            (stub.GetObject, ssald_pb2.GetObjectRequest(objid=1)),
        ]:
            with pytest.raises(grpc.RpcError) as info:
                call(request, timeout=TIMEOUT)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert _health(address, "") == SERVING
        assert _health(address, SERVICE_NAME) == NOT_SERVING

        write_db(db_path)
        assert _health(address, SERVICE_NAME) == SERVING
        assert stub.Stats(ssald_pb2.StatsRequest(), timeout=TIMEOUT).n_objects == N_OBJECTS


@pytest.fixture
def fake_embedder(monkeypatch):
    """Stand-in for encoders.embedder (ONNX models are built and tested in tests/encoders)."""
    module = types.ModuleType("encoders.embedder")

    class OnnxEmbedder:
        model_id = "other-model"

        def __init__(self, path):
            self.path = path

    module.OnnxEmbedder = OnnxEmbedder
    monkeypatch.setitem(sys.modules, "encoders.embedder", module)
    return OnnxEmbedder


def test_model_mismatch_is_a_warning(db, fake_embedder, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="server.app"):
        create_server(db[0], model_path="model.onnx")[0].stop(None)
    assert "other-model" in caplog.text and MODEL_ID in caplog.text

    caplog.clear()
    fake_embedder.model_id = MODEL_ID
    with caplog.at_level(logging.WARNING, logger="server.app"):
        create_server(db[0], model_path="model.onnx")[0].stop(None)
    assert caplog.text == ""


def test_busy_port_is_an_error(db, address) -> None:
    with pytest.raises(OSError, match=address):
        create_server(db[0], address)


def _python(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], cwd=REPO_ROOT, text=True, **kwargs)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_process_prints_address_answers_and_stops_on_signal(db, sig) -> None:
    proc = _python(
        "-m", "server", "serve", "--db", str(db[0]), "--port", "0", "--grace", "1",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        first = proc.stdout.readline()
        assert first.startswith("listening on 127.0.0.1:"), (first, proc.stderr.read() if proc.poll() else "")
        address = first.split()[-1]
        assert int(address.rsplit(":", 1)[1]) > 0
        with grpc.insecure_channel(address) as channel:
            reply = ssald_pb2_grpc.SsaldStub(channel).Stats(ssald_pb2.StatsRequest(), timeout=TIMEOUT)
        assert reply.n_objects == N_OBJECTS
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert out.splitlines() == [f"stopped ({sig.name})"]


def _imported_after(statement: str, modules: list[str]) -> list[str]:
    code = f"import sys; {statement}; print(' '.join(m for m in {modules!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return result.stdout.split()


def test_server_never_imports_torch() -> None:
    # ssald_index.schema takes the morphology feature names from encoders.morphology (numpy only); the
    # stamp readers, the embedder and training load only when a request needs them.
    heavy = ["torch", "onnxruntime", "numba", "encoders.training", "encoders.embedder", "encoders.stamps"]
    assert _imported_after("import server.app, server.service", heavy) == []
