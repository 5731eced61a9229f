"""Read replicas: one writer and one ``ssald serve --read-only`` over the same database, as separate processes."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients import FailedPrecondition, SsaldClient
from clients.cli import main as ssald
from proto import ssald_pb2
from server.app import SERVICE_NAME
from server.replica import READ_METHODS, WRITE_METHODS, refusal_message
from ssald_index.active.labels import read_labels
from tests.server.helpers import make_rows, running_server, serve_process, write_db

LABEL = "ring"
#: The servers' --refresh in these tests: new table versions must be served within it (plus the reload).
REFRESH_S = 0.5
#: How long a test waits for a new version to be served before failing: the interval, the reload of a small
#: table, and room for a loaded CI machine.
VISIBLE_WITHIN_S = REFRESH_S + 15.0


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``root``: (size, mtime in ns), so any write shows."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


@contextlib.contextmanager
def _read_only_tree(root: Path) -> Iterator[None]:
    """Make ``root`` read-only for this (non-root) user while inside; root ignores modes, so there only
    :func:`_tree` catches a write."""
    paths = [root, *root.rglob("*")]
    modes = {p: p.stat().st_mode for p in paths}
    for p in paths:
        p.chmod(modes[p] & ~0o222)
    try:
        yield
    finally:
        for p in reversed(paths):
            p.chmod(modes[p])


def _ready(address: str) -> int:
    with grpc.insecure_channel(address) as channel:
        request = health_pb2.HealthCheckRequest(service=SERVICE_NAME)
        return health_pb2_grpc.HealthStub(channel).Check(request, timeout=30).status


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = VISIBLE_WITHIN_S) -> float:
    """Poll ``condition`` until it holds; return the seconds it took, or fail naming ``what``."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not seen within {timeout} s")
        time.sleep(0.1)
    return time.monotonic() - start


def test_every_rpc_is_classified_as_a_read_or_a_write() -> None:
    methods = {m.name for m in ssald_pb2.DESCRIPTOR.services_by_name["Ssald"].methods}
    assert READ_METHODS | WRITE_METHODS == methods and not READ_METHODS & WRITE_METHODS
    assert WRITE_METHODS == {"SubmitLabels"}


def test_a_replica_answers_reads_refuses_labels_and_writes_nothing(tmp_path) -> None:
    db = tmp_path / "ssald.lance"
    rows = write_db(db)
    before = _tree(db)
    read_only = _read_only_tree(db) if os.geteuid() != 0 else contextlib.nullcontext()
    with read_only, serve_process(db, "--read-only", "--refresh", "0.2") as (_, address):
        with SsaldClient(address, timeout=60) as client:
            assert _ready(address) == health_pb2.HealthCheckResponse.SERVING
            stats = client.stats()
            assert stats["n_objects"] == len(rows) and stats["n_labels"] == 0
            assert len(client.find_similar(rows[0]["objid"], k=5)) == 5
            assert len(client.next_to_label(LABEL, n=5).items) == 5
            with pytest.raises(FailedPrecondition, match="no classifier trained"):  # answered, not refused
                client.candidates(LABEL)
            with pytest.raises(FailedPrecondition) as refused:
                client.submit_labels([(rows[0]["objid"], LABEL), (rows[1]["objid"], f"not_{LABEL}")], retrain=True)
            assert str(refused.value) == refusal_message("SubmitLabels")
            assert "read-only replica" in str(refused.value) and "send labels" in str(refused.value)
            time.sleep(0.5)  # a few refresh cycles: following versions must not write either
    assert _tree(db) == before
    assert read_labels(db).num_rows == 0


def test_a_replica_refuses_an_rpc_not_known_to_only_read(tmp_path, monkeypatch) -> None:
    """Fail closed: an RPC left out of READ_METHODS (e.g. one added to the proto later) is refused."""
    db = tmp_path / "ssald.lance"
    rows = write_db(db, make_rows(5))
    monkeypatch.setattr("server.replica.READ_METHODS", READ_METHODS - {"Stats"})
    with running_server(db, refresh_s=0, read_only=True) as address, SsaldClient(address, timeout=30) as client:
        with pytest.raises(FailedPrecondition, match=re.escape(refusal_message("Stats"))):
            client.stats()
        assert "is not known to only read" in refusal_message("Stats")
        assert client.get_object(rows[0]["objid"]).objid == rows[0]["objid"]  # the other reads are served


def test_a_replica_started_before_ingest_creates_nothing(tmp_path) -> None:
    empty = tmp_path / "db"
    empty.mkdir()
    with running_server(empty, refresh_s=0, read_only=True) as address:
        assert _ready(address) == health_pb2.HealthCheckResponse.NOT_SERVING
    assert list(empty.iterdir()) == []


def _ingest(stamps: list[Path], folder: Path, model: Path, db: Path) -> None:
    """``ssald ingest`` of ``stamps`` (copied into ``folder``) into ``db``, appending to its objects table."""
    folder.mkdir()
    for stamp in stamps:
        shutil.copy(stamp, folder / stamp.name)
    args = ["ingest", "--data", str(folder), "--model", str(model), "--db", str(db)]
    assert ssald([*args, "--workers", "0", "--threads", "1", "--no-morphology", "--no-progress", "--strict"]) == 0


def test_labels_from_the_writer_and_a_new_ingest_reach_the_replica(survey, tiny_model, tmp_path) -> None:
    stamps = sorted((survey / "stamps").glob("*.fits"))[:30]
    first, second = stamps[:20], stamps[20:]
    db = tmp_path / "ssald.lance"
    _ingest(first, tmp_path / "first", tiny_model, db)
    objids = [int(p.stem) for p in first]
    new_objids = [int(p.stem) for p in second]
    refresh = ("--refresh", str(REFRESH_S))
    with (
        serve_process(db, *refresh) as (_, writer_address),
        serve_process(db, *refresh, "--read-only") as (_, replica_address),
        SsaldClient(writer_address, timeout=60) as writer,
        SsaldClient(replica_address, timeout=60) as replica,
    ):
        # Labels through the writer: the replica's next request sees them (each request reads the labels
        # table's latest version), in Stats, NextToLabel and Candidates.
        given = {o: LABEL for o in objids[:3]} | {o: f"not_{LABEL}" for o in objids[3:6]}
        submitted = writer.submit_labels(list(given.items()), retrain=True)
        assert submitted.retrained[0].run is not None, submitted.retrained[0].skipped
        stats = replica.stats()
        assert stats["n_labels"] == len(given) and stats["labels_version"] == submitted.labels_version
        assert stats["label_counts"] == {LABEL: 3, f"not_{LABEL}": 3}
        proposed = replica.next_to_label(LABEL, n=len(objids))
        assert {item.objid for item in proposed.items} == set(objids) - set(given)
        assert (proposed.n_positive, proposed.n_negative) == (3, 3)
        ranked = replica.candidates(LABEL, n=len(objids))
        assert {c.objid: c.current_label for c in ranked.candidates if c.current_label} == given
        assert ranked.run.label_version == submitted.labels_version

        with pytest.raises(FailedPrecondition, match="read-only replica"):
            replica.submit_labels([(objids[6], LABEL)])
        assert writer.stats()["n_labels"] == len(given)

        # A new ingest into the same database: both servers serve it without a restart.
        _ingest(second, tmp_path / "second", tiny_model, db)
        for name, client in (("writer", writer), ("replica", replica)):
            took = _wait_for(
                lambda c=client: c.stats()["n_objects"] == len(stamps), f"the {name}'s count of the new ingest"
            )
            print(f"{name} served the new ingest {took:.2f} s after it returned (--refresh {REFRESH_S})")
            assert client.get_object(new_objids[0]).objid == new_objids[0]
            assert len(client.find_similar(new_objids[0], k=5)) == 5
            found = {n.objid for n in client.find_similar(objids[0], k=len(stamps) - 1)}
            assert set(new_objids) <= found
