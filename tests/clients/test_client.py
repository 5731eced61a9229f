"""SsaldClient against a real server over a real table: plain values back, typed errors out."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time

import grpc
import numpy as np
import pytest

from clients import (
    DeadlineExceeded,
    GalaxyObject,
    InvalidArgument,
    Neighbour,
    NotFound,
    SsaldClient,
    SsaldError,
    Unavailable,
)
from tests.server.helpers import DIM, MODEL_ID, N_OBJECTS, exact_neighbours, running_server

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
METADATA = [f.name for f in dataclasses.fields(GalaxyObject) if f.name != "embedding"]


def _metadata(row: dict) -> dict:
    """What the client gets of a stored row: its metadata, the stamp named by its file name only."""
    return {**{name: row.get(name) for name in METADATA}, "source": os.path.basename(row["source"])}


@pytest.fixture(scope="module")
def client(address):
    with SsaldClient(address, timeout=10.0) as c:
        yield c


def test_find_similar_returns_k_sorted_neighbours_without_the_query(client, db) -> None:
    _, rows = db
    query = rows[10]["objid"]
    neighbours = client.find_similar(query, k=8)
    assert len(neighbours) == 8 and all(isinstance(n, Neighbour) for n in neighbours)
    distances = [n.distance for n in neighbours]
    assert distances == sorted(distances)
    assert query not in {n.objid for n in neighbours}
    expected = exact_neighbours(rows, query, 8)
    assert [n.objid for n in neighbours] == [objid for objid, _ in expected]
    np.testing.assert_allclose(distances, [d for _, d in expected], atol=1e-5)


def test_neighbour_metadata_round_trips_with_none_for_nulls(client, db) -> None:
    _, rows = db
    by_id = {r["objid"]: r for r in rows}
    neighbours = client.find_similar(rows[0]["objid"], k=N_OBJECTS - 1)
    assert {n.objid for n in neighbours} == set(by_id) - {rows[0]["objid"]}
    for n in neighbours:
        assert {name: getattr(n, name) for name in METADATA} == _metadata(by_id[n.objid])
        assert n.embedding is None
    assert any(n.z is None for n in neighbours) and any(n.z is not None for n in neighbours)


def test_get_object(client, db) -> None:
    _, rows = db
    row = rows[3]
    obj = client.get_object(row["objid"])
    assert type(obj) is GalaxyObject and obj.embedding is None
    assert dataclasses.asdict(obj) == {**_metadata(row), "embedding": None}
    with pytest.raises(dataclasses.FrozenInstanceError):
        obj.z = 1.0  # type: ignore[misc]
    full = client.get_object(row["objid"], with_embedding=True)
    assert isinstance(full.embedding, tuple) and len(full.embedding) == DIM
    np.testing.assert_array_equal(np.float32(full.embedding), np.float32(row["embedding"]))


def test_stats(client) -> None:
    stats = client.stats()
    assert {k: stats[k] for k in ("n_objects", "model_id", "embedding_dim", "n_scored")} == {
        "n_objects": N_OBJECTS,
        "model_id": MODEL_ID,
        "embedding_dim": DIM,
        "n_scored": 0,  # written without finalize(): nothing scored, no index yet
    }
    assert stats["indexes"] == [] and stats["table_version"] >= 1


def test_unknown_objid_raises_not_found(client) -> None:
    with pytest.raises(NotFound, match="123456789") as info:
        client.find_similar(123456789)
    assert isinstance(info.value, KeyError) and info.value.code == "NOT_FOUND"
    with pytest.raises(KeyError):
        client.get_object(123456789)


@pytest.mark.parametrize("k", [0, 1001, 2**40])
def test_bad_k_raises_invalid_argument(client, db, k) -> None:
    with pytest.raises(InvalidArgument, match=str(k)) as info:
        client.find_similar(db[1][0]["objid"], k=k)
    assert isinstance(info.value, ValueError)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dead_address_raises_unavailable_or_deadline() -> None:
    start = time.monotonic()
    with SsaldClient(f"127.0.0.1:{_free_port()}", timeout=2.0) as client:
        with pytest.raises((Unavailable, DeadlineExceeded)):
            client.stats()
    assert time.monotonic() - start < 10


def test_silent_server_raises_deadline_exceeded() -> None:
    # A socket that accepts TCP connections but never speaks HTTP/2: only the timeout ends the call.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        start = time.monotonic()
        with SsaldClient(f"127.0.0.1:{listener.getsockname()[1]}", timeout=0.5) as client:
            with pytest.raises(DeadlineExceeded) as info:
                client.find_similar(1)
        assert 0.4 < time.monotonic() - start < 5
        assert isinstance(info.value, TimeoutError) and isinstance(info.value, SsaldError)


def test_table_not_ready_raises_unavailable(tmp_path) -> None:
    with running_server(tmp_path / "empty.lance") as address, SsaldClient(address) as client:
        with pytest.raises(Unavailable, match="not ready"):
            client.stats()


def test_closed_client_raises_unavailable(address) -> None:
    client = SsaldClient(address)
    client.close()
    with pytest.raises(Unavailable):
        client.stats()


@pytest.mark.parametrize(("token", "metadata"), [(None, None), ("t0k-3n", (("authorization", "Bearer t0k-3n"),))])
def test_every_rpc_passes_the_timeout_and_the_token(monkeypatch, token, metadata) -> None:
    client = SsaldClient("127.0.0.1:1", timeout=3.5, token=token)
    seen = []

    def fake_call(request, timeout=None, metadata=None):
        seen.append((timeout, metadata))
        raise grpc.RpcError()

    for name in ("FindSimilar", "GetObject", "Stats", "SubmitLabels"):
        monkeypatch.setattr(client._stub, name, fake_call)
    calls = (lambda: client.find_similar(1), lambda: client.get_object(1), client.stats)
    for call in (*calls, lambda: client.submit_labels([(1, "merger")])):
        with pytest.raises(SsaldError):
            call()
    client.close()
    assert seen == [(3.5, metadata)] * 4


def test_import_clients_pulls_in_no_server_side_packages() -> None:
    heavy = ["server", "ssald_index", "encoders", "ingest", "lancedb", "pyarrow", "torch", "onnxruntime"]
    code = f"import sys, clients; print(' '.join(m for m in {heavy!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.split() == []
