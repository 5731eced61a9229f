"""SubmitLabels with a request id writes its labels once, however often it is sent (issue 15, fault 9)."""

from __future__ import annotations

import threading

import pytest

from clients import SsaldClient
from clients.errors import InvalidArgument
from ssald_index.active import scores
from ssald_index.active.labels import read_labels
from tests.server.helpers import running_server, write_db

LABEL = "ring"


def _labels(ids):
    return [(ids[i], LABEL if i % 3 == 0 else f"not_{LABEL}") for i in range(6)]


def test_the_same_request_id_twice_is_stored_once(tmp_path):
    db_path = tmp_path / "ssald.lance"
    ids = [r["objid"] for r in write_db(db_path)]
    with running_server(db_path) as address, SsaldClient(address, timeout=30) as client:
        first = client.submit_labels(_labels(ids), request_id="batch-0001")
        later = client.submit_labels([(ids[20], "merger")])  # another write in between moves the version on
        again = client.submit_labels(_labels(ids), request_id="batch-0001")
        with pytest.raises(InvalidArgument, match="request_id 'batch-0001' was committed before with other labels"):
            client.submit_labels([(ids[21], "merger")], request_id="batch-0001")
    assert (first.replayed, again.replayed) == (False, True)
    assert (
        (again.n_written, again.labels_version) == (first.n_written, first.labels_version) == (6, first.labels_version)
    )
    assert later.labels_version > first.labels_version and later.request_id not in ("", first.request_id)
    assert again.label_counts == {LABEL: 2, f"not_{LABEL}": 4, "merger": 1}
    table = read_labels(db_path)
    assert table.num_rows == 7
    assert table.column("request_id").to_pylist() == ["batch-0001"] * 6 + [later.request_id]


def test_a_retry_after_a_deadline_does_not_write_twice(tmp_path, monkeypatch):
    """The first try's reply is lost to its deadline while it retrains; the client's retry (same id) is a replay.

    The first try's retrain stops once its client has gone (CANCELLED, nothing stored); the retry retrains.
    """
    db_path = tmp_path / "ssald.lance"
    ids = [r["objid"] for r in write_db(db_path)]
    retrain, calls, slow = scores.retrain, [], threading.Event()

    def retrain_slowly_once(*args, **kwargs):
        calls.append(args[1])
        if len(calls) == 1:
            slow.wait(3.0)  # past the client's 2 s deadline
        return retrain(*args, **kwargs)

    monkeypatch.setattr(scores, "retrain", retrain_slowly_once)
    with running_server(db_path) as address, SsaldClient(address, timeout=2) as client:
        reply = client.submit_labels(_labels(ids), retrain=True)
    assert reply.replayed and reply.n_written == 6
    assert calls == [LABEL, LABEL]  # the first retrain was cut short when its client left; the retry's did the work
    assert reply.retrained[0].run is not None and reply.retrained[0].run.label_version == reply.labels_version
    table = read_labels(db_path)
    assert table.num_rows == 6 and set(table.column("request_id").to_pylist()) == {reply.request_id}
