"""SubmitLabels limits and bounded replies (issue 15, fault 5), against a real server over a real table.

Each test writes labels, so each has its own database rather than the package's shared one.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from clients import SsaldClient
from clients.errors import InvalidArgument
from ssald_index.active import scores
from ssald_index.active.labels import MAX_LABEL_NAMES, MAX_LABELS_PER_CALL, read_labels
from ssald_index.registry import connect
from ssald_index.schema import LABELS, LABELS_SCHEMA
from tests.server.helpers import running_server, write_db

BIG = 3_000_000  # two labels this long made every later reply exceed the client's 4 MB limit


@pytest.fixture()
def fresh(tmp_path):
    """(db_path, objids) of a new 50-object database."""
    db_path = tmp_path / "ssald.lance"
    return db_path, [r["objid"] for r in write_db(db_path)]


def test_three_megabyte_labels_are_refused_and_replies_stay_small(fresh):
    db_path, ids = fresh
    with running_server(db_path) as address, SsaldClient(address, timeout=30) as client:
        for objid in ids[:2]:
            with pytest.raises(InvalidArgument, match=rf"label entry 0: label of objid {objid} .* is longer than 64"):
                client.submit_labels([(objid, "x" * BIG)])
        assert client.submit_labels([(ids[2], "ring")]).label_counts == {"ring": 1}
        stats = client.stats()
    assert (stats["n_labels"], stats["label_counts"]) == (1, {"ring": 1})
    assert read_labels(db_path).column("label").to_pylist() == ["ring"]


def test_more_labels_than_the_limit_in_one_call_write_nothing(fresh):
    db_path, ids = fresh
    labels = [(ids[i % len(ids)], "ring") for i in range(100_000)]
    with running_server(db_path) as address, SsaldClient(address, timeout=60) as client:
        with pytest.raises(InvalidArgument, match=f"100000 labels in one call; at most {MAX_LABELS_PER_CALL}"):
            client.submit_labels(labels)
        assert client.stats()["n_labels"] == 0
        assert client.submit_labels(labels[:MAX_LABELS_PER_CALL]).n_written == MAX_LABELS_PER_CALL
    assert read_labels(db_path).num_rows == MAX_LABELS_PER_CALL


def test_label_names_past_the_limit_are_refused(fresh):
    db_path, ids = fresh
    # Direct writes stand in for many earlier calls: MAX_LABEL_NAMES objects, each with its own label.
    _write_old_rows(db_path, [(10**6 + i, f"class_{i}") for i in range(MAX_LABEL_NAMES)])
    with running_server(db_path) as address, SsaldClient(address, timeout=30) as client:
        assert len(client.stats()["label_counts"]) == MAX_LABEL_NAMES
        with pytest.raises(InvalidArgument, match=f"new label names \\(brand_new\\) would make {MAX_LABEL_NAMES + 1}"):
            client.submit_labels([(ids[0], "brand_new")])
        # A name the table already uses is still accepted.
        assert client.submit_labels([(ids[0], "class_7")]).n_written == 1
    assert read_labels(db_path).num_rows == MAX_LABEL_NAMES + 1


def _write_old_rows(db_path, rows):
    """Rows written straight to the labels table, as a server before the limits did (no request_id column)."""
    old_schema = pa.schema([f for f in LABELS_SCHEMA if f.name != "request_id"])
    now = datetime.now(UTC)
    data = [{"objid": o, "label": label, "user": "", "created_at": now, "note": ""} for o, label in rows]
    connect(db_path).create_table(LABELS, pa.Table.from_pylist(data, schema=old_schema), schema=old_schema)


def test_oversized_rows_of_an_older_server_do_not_break_replies(fresh):
    """Two 3 MB labels and more distinct names than the limit, written before the limits: replies stay bounded."""
    db_path, ids = fresh
    rows = [(10**6 + i, f"n{i}") for i in range(MAX_LABEL_NAMES + 200)]
    rows += [(ids[0], "x" * BIG), (ids[1], "y" * BIG), (ids[2], "merger"), (ids[3], "merger")]
    _write_old_rows(db_path, rows)
    with running_server(db_path) as address, SsaldClient(address, timeout=30) as client:
        stats = client.stats()
        assert stats["label_counts"]["merger"] == 2  # the most common label is kept
        assert len(stats["label_counts"]) == MAX_LABEL_NAMES
        assert all(len(name) <= 64 for name in stats["label_counts"])
        reply = client.submit_labels([(ids[4], "merger")])
    assert reply.n_written == 1 and reply.label_counts["merger"] == 3
    assert read_labels(db_path).column("request_id").to_pylist()[-1] == reply.request_id  # the table was migrated


def test_a_slow_retrain_does_not_hold_up_other_label_writes(fresh, monkeypatch):
    """Fault 5: a forest retrain held the write lock for 66 s; now only the label write itself takes it."""
    db_path, ids = fresh
    started, release = threading.Event(), threading.Event()
    retrain = scores.retrain

    def slow_retrain(*args, **kwargs):
        started.set()
        release.wait(60)
        return retrain(*args, **kwargs)

    monkeypatch.setattr(scores, "retrain", slow_retrain)
    first = [(ids[i], "ring" if i % 3 == 0 else "not_ring") for i in range(6)]
    replies = []
    with running_server(db_path) as address:
        with SsaldClient(address, timeout=90) as slow_client:
            worker = threading.Thread(
                target=lambda: replies.append(slow_client.submit_labels(first, retrain=True, classifier="forest"))
            )
            worker.start()
            try:
                assert started.wait(30), "the retrain never started"
                with SsaldClient(address, timeout=5) as other:
                    t0 = time.perf_counter()
                    other_reply = other.submit_labels([(ids[10], "merger")], retries=0)
                    elapsed = time.perf_counter() - t0
            finally:
                release.set()
                worker.join(90)
    assert elapsed < 3.0, f"a label write waited {elapsed:.1f} s behind a retrain"
    assert other_reply.n_written == 1 and other_reply.labels_version > 0
    (reply,) = replies
    assert reply.retrained[0].run is not None and reply.retrained[0].run.classifier == "forest"
    assert read_labels(db_path).num_rows == 7
