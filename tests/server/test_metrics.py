"""Per-RPC metrics (issue 15): counts by status code and latencies, scraped over HTTP in Prometheus' format."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import urllib.request

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from proto import ssald_pb2, ssald_pb2_grpc
from server.metrics import RpcMetrics
from tests.server.helpers import REPO_ROOT, running_server

TIMEOUT = 10.0
SERVICE = "ssald.v1.Ssald"


def _scrape(url: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of the endpoint, by (sample name, labels)."""
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
        assert response.status == 200
        text = response.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _handled(samples, method: str, code: str) -> float:
    labels = {"grpc_type": "unary", "grpc_service": SERVICE, "grpc_method": method, "grpc_code": code}
    return samples.get(("grpc_server_handled_total", frozenset(labels.items())), 0.0)


def _method_sample(samples, name: str, method: str, **extra: str) -> float:
    labels = {"grpc_type": "unary", "grpc_service": SERVICE, "grpc_method": method, **extra}
    return samples[(name, frozenset(labels.items()))]


def _calls(address: str, objid: int) -> None:
    """3 Stats OK, 2 GetObject OK, 2 GetObject NOT_FOUND, 1 FindSimilar INVALID_ARGUMENT, 1 undecodable."""
    with grpc.insecure_channel(address) as channel:
        stub = ssald_pb2_grpc.SsaldStub(channel)
        for _ in range(3):
            stub.Stats(ssald_pb2.StatsRequest(), timeout=TIMEOUT)
        for _ in range(2):
            stub.GetObject(ssald_pb2.GetObjectRequest(objid=objid), timeout=TIMEOUT)
        failing = [ssald_pb2.GetObjectRequest(objid=1), ssald_pb2.GetObjectRequest(objid=-5)]
        for request in failing:
            with pytest.raises(grpc.RpcError, match="NOT_FOUND"):
                stub.GetObject(request, timeout=TIMEOUT)
        with pytest.raises(grpc.RpcError, match="INVALID_ARGUMENT"):
            stub.FindSimilar(ssald_pb2.FindSimilarRequest(objid=objid, k=0), timeout=TIMEOUT)
        raw = channel.unary_unary(f"/{SERVICE}/FindSimilar", request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError, match="INVALID_ARGUMENT"):
            raw(b"\x0a\xff", timeout=TIMEOUT)


def test_counts_codes_and_latencies_per_rpc(db) -> None:
    metrics, other = RpcMetrics(), RpcMetrics()  # one registry each: two servers in a process do not collide
    with running_server(db[0], metrics=metrics) as address, running_server(db[0], metrics=other):
        endpoint = metrics.serve_http("127.0.0.1", 0)
        try:
            _calls(address, db[1][0]["objid"])
            samples = _scrape(endpoint.url)
        finally:
            endpoint.close()
    assert _handled(samples, "Stats", "OK") == 3
    assert _handled(samples, "GetObject", "OK") == 2
    assert _handled(samples, "GetObject", "NOT_FOUND") == 2
    assert _handled(samples, "FindSimilar", "INVALID_ARGUMENT") == 2
    assert _handled(samples, "FindSimilar", "OK") == 0
    assert _method_sample(samples, "grpc_server_started_total", "GetObject") == 4
    assert _method_sample(samples, "grpc_server_handling_seconds_count", "GetObject") == 4
    assert _method_sample(samples, "grpc_server_handling_seconds_bucket", "Stats", le="+Inf") == 3
    assert 0 < _method_sample(samples, "grpc_server_handling_seconds_sum", "Stats") < 3 * TIMEOUT
    # The other server's registry saw none of it.
    assert all(s.value == 0 for f in other.registry.collect() for s in f.samples if s.name.endswith("_total"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_metrics_port_flag(db) -> None:
    """``ssald serve --metrics-port`` serves /metrics beside the gRPC port."""
    port = _free_port()
    command = [sys.executable, "-m", "clients.cli", "serve", "--db", str(db[0]), "--refresh", "0"]
    command += ["--metrics-port", str(port)]
    proc = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    timer = threading.Timer(60, proc.kill)
    timer.start()
    try:
        match = re.fullmatch(r"listening on (\S+)\n", proc.stdout.readline())
        timer.cancel()
        assert match, "server did not start"
        _calls(match.group(1), db[1][0]["objid"])
        samples = _scrape(f"http://127.0.0.1:{port}/metrics")
    finally:
        timer.cancel()
        proc.kill()
        proc.wait(10)
        proc.stdout.close()
    assert _handled(samples, "GetObject", "NOT_FOUND") == 2
    assert _handled(samples, "FindSimilar", "INVALID_ARGUMENT") == 2
