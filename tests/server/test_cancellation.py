"""Work whose client gave up stops (issue 15): a real server, one deliberately slowed stage, a client that
cancels or lets its deadline pass, and proof that the stages after the slow one never ran.

Each test slows one stage until the client has gone (plus a margin for the cancellation to reach the
server), counts the calls of a later stage, and waits for the server's handler to finish before it looks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import grpc
import numpy as np
import pytest

import server.service
from proto import ssald_pb2, ssald_pb2_grpc
from ssald_index import density
from ssald_index.active import classify, scores, session, strategies
from ssald_index.active.labels import Label, add_labels, read_labels
from ssald_index.active.session import ActiveLearning
from ssald_index.errors import Abandoned
from ssald_index.store import ObjectStore
from tests.server.helpers import make_rows, running_server, write_db

# Time for a client's cancellation (an HTTP/2 RST_STREAM) to reach the server after the client saw its call end.
_PROPAGATION_S = 0.5
# Deadline of the calls that let it pass: long enough to reach the slowed stage on a loaded machine.
_DEADLINE_S = 2.0


class _Outcome:
    """How one call of a watched method ended: ``done`` is set when it returned or raised ``error``."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None


def _watch(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> _Outcome:
    outcome, real = _Outcome(), getattr(owner, name)

    def watched(*args: Any, **kwargs: Any) -> Any:
        try:
            return real(*args, **kwargs)
        except BaseException as exc:
            outcome.error = exc
            raise
        finally:
            outcome.done.set()

    monkeypatch.setattr(owner, name, watched)
    return outcome


def _count(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, after: threading.Event | None = None) -> list[int]:
    """Replace ``owner.name`` by a version that records each call (once ``after`` is set) and then runs."""
    calls: list[int] = []
    real = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        if after is None or after.is_set():
            calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


class _Slowed:
    """A stage made to wait until the client has ``gone``: ``entered`` and ``left`` mark its start and end."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> None:
        self.gone, self.entered, self.left = threading.Event(), threading.Event(), threading.Event()
        real = getattr(owner, name)

        def slow(*args: Any, **kwargs: Any) -> Any:
            self.entered.set()
            self.gone.wait(20)
            time.sleep(_PROPAGATION_S)
            try:
                return real(*args, **kwargs)
            finally:
                self.left.set()

        monkeypatch.setattr(owner, name, slow)


def _call_past_deadline(call: Callable[..., Any], request: Any, stream: bool = False) -> None:
    """Call with a deadline that passes while the server works (the slowed stage waits for it)."""
    with pytest.raises(grpc.RpcError) as failed:
        result = call(request, timeout=_DEADLINE_S)
        if stream:
            list(result)
    assert failed.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, failed.value


def _labels(rows: list[dict[str, Any]], n: int = 4) -> list[Label]:
    """``n`` mergers and ``n`` non-mergers: enough for a classifier of either class."""
    return [Label(r["objid"], "merger" if i < n else "not_merger") for i, r in enumerate(rows[: 2 * n])]


@pytest.fixture
def table(tmp_path):
    db_path = tmp_path / "db.lance"
    return db_path, write_db(db_path)


def test_a_retrain_stops_when_the_deadline_passes_and_the_labels_stay(table, monkeypatch) -> None:
    db_path, rows = table
    slowed = _Slowed(monkeypatch, scores, "feature_matrix")  # after reading the table, before the fit
    fits = _count(monkeypatch, classify, "make_classifier")
    outcome = _watch(monkeypatch, ActiveLearning, "submit")
    labels = _labels(rows)
    request = ssald_pb2.SubmitLabelsRequest(
        labels=[ssald_pb2.LabelEntry(objid=e.objid, label=e.label) for e in labels], retrain=True
    )
    with running_server(db_path) as address, grpc.insecure_channel(address) as channel:
        _call_past_deadline(ssald_pb2_grpc.SsaldStub(channel).SubmitLabels, request)
        slowed.gone.set()
        assert outcome.done.wait(20), "SubmitLabels did not finish"
    assert slowed.entered.is_set()
    assert isinstance(outcome.error, Abandoned), outcome.error
    assert "before fitting the logistic classifier" in str(outcome.error)
    assert fits == []  # neither the fit nor anything after it ran ...
    assert scores.latest_run(db_path, "merger") is None  # ... and no score was stored
    stored = read_labels(db_path)  # the labels were committed before the retrain began, and they stay
    assert sorted(zip(stored.column("objid").to_pylist(), stored.column("label").to_pylist())) == sorted(
        (e.objid, e.label) for e in labels
    )


def test_next_to_label_stops_when_the_client_cancels(table, monkeypatch) -> None:
    db_path, rows = table
    add_labels(db_path, _labels(rows))
    slowed = _Slowed(monkeypatch, session, "allowed_rows")  # the filter, before the classifier and the strategy
    fits = _count(monkeypatch, classify, "make_classifier")
    selections = _count(monkeypatch, strategies, "select")
    outcome = _watch(monkeypatch, ActiveLearning, "next_to_label")
    request = ssald_pb2.NextToLabelRequest(label="merger", n=5, strategy="uncertainty")
    with running_server(db_path) as address, grpc.insecure_channel(address) as channel:
        call = ssald_pb2_grpc.SsaldStub(channel).NextToLabel.future(request, timeout=30)
        assert slowed.entered.wait(20), "NextToLabel never reached the slowed stage"
        assert call.cancel()
        slowed.gone.set()
        assert outcome.done.wait(20), "NextToLabel did not finish"
    assert isinstance(outcome.error, Abandoned), outcome.error
    assert fits == [] and selections == []


def test_candidates_stop_before_ranking_when_the_deadline_passes(table, monkeypatch) -> None:
    db_path, rows = table
    add_labels(db_path, _labels(rows))
    scores.retrain(db_path, "merger", cv=False)
    slowed = _Slowed(monkeypatch, scores, "latest_labels")  # after the filter, before the ranking
    reads = _count(monkeypatch, ObjectStore, "read", after=slowed.left)
    outcome = _watch(monkeypatch, ActiveLearning, "candidates")
    request = ssald_pb2.CandidatesRequest(label="merger", n=10, filter=ssald_pb2.Filter(where="ra >= 0"))
    with running_server(db_path) as address, grpc.insecure_channel(address) as channel:
        _call_past_deadline(ssald_pb2_grpc.SsaldStub(channel).Candidates, request)
        slowed.gone.set()
        assert outcome.done.wait(20), "Candidates did not finish"
    assert slowed.entered.is_set()
    assert isinstance(outcome.error, Abandoned), outcome.error
    assert reads == []  # no candidate's row was read


def test_anomalies_stop_between_reads_when_the_deadline_passes(tmp_path, monkeypatch) -> None:
    db_path = tmp_path / "db.lance"
    rows = make_rows()
    for row, score in zip(rows, np.random.default_rng(1).uniform(0, 1, len(rows))):
        row["density_score"] = float(score)
    write_db(db_path, rows)
    slowed = _Slowed(monkeypatch, density, "run_filtered")  # the first read above a score threshold
    reads = _count(monkeypatch, density, "run_filtered")
    outcome = _watch(monkeypatch, server.service, "top_anomalies")
    # Few objects pass the filter, so a call left to finish would read again, with a lower threshold.
    request = ssald_pb2.AnomaliesRequest(n=40, filter=ssald_pb2.Filter(where="z > 0.2"))
    with running_server(db_path) as address, grpc.insecure_channel(address) as channel:
        _call_past_deadline(ssald_pb2_grpc.SsaldStub(channel).Anomalies, request)
        slowed.gone.set()
        assert outcome.done.wait(20), "Anomalies did not finish"
    assert slowed.entered.is_set()
    assert isinstance(outcome.error, Abandoned), outcome.error
    assert len(reads) == 1  # the second, lower threshold was never read


def test_map_points_sends_nothing_once_the_deadline_passed(table, monkeypatch) -> None:
    db_path, _ = table
    slowed = _Slowed(monkeypatch, session, "map_points")  # reading the map, before the first chunk
    with running_server(db_path) as address, grpc.insecure_channel(address) as channel:
        stub = ssald_pb2_grpc.SsaldStub(channel)  # server and stub hold the message class's (de)serialisers
        chunks = _count(monkeypatch, ssald_pb2, "MapPointsChunk")
        _call_past_deadline(stub.MapPoints, ssald_pb2.MapPointsRequest(), stream=True)
        slowed.gone.set()
        assert slowed.left.wait(20), "MapPoints did not read the map"
        time.sleep(_PROPAGATION_S)  # the stream's generator goes on right after the map is read
    assert chunks == []
