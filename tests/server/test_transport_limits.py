"""Transport limits of a real server (issue 15): bounded concurrency, message sizes, deadlines and cancellation.

Handlers are held on purpose (a gate the test opens) so that calls stay in flight as long as a test needs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import grpc
import pytest

from clients import DeadlineExceeded, FailedPrecondition, ResourceExhausted, SsaldClient
from encoders.stamps import MAX_STAMP_BYTES
from proto import ssald_pb2, ssald_pb2_grpc
from server.options import Limits, ServerOptions
from server.service import SsaldServicer
from tests.server.helpers import DIM, FIRST_OBJID, running_server

TIMEOUT = 10.0


class Gate:
    """Holds every call of a method until :meth:`open`; counts the calls that entered it."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.entered: list[float] = []
        self.finished = threading.Event()

    def wrap(self, method: Callable) -> Callable:
        def held(*args, **kwargs):
            self.entered.append(time.monotonic())
            try:
                self.opened.wait(TIMEOUT)
                return method(*args, **kwargs)
            finally:
                self.finished.set()

        return held

    def wait_for(self, n: int) -> None:
        deadline = time.monotonic() + TIMEOUT
        while len(self.entered) < n:
            assert time.monotonic() < deadline, f"only {len(self.entered)} of {n} calls reached the handler"
            time.sleep(0.01)

    def open(self) -> None:
        self.opened.set()


@pytest.fixture
def held_stats(monkeypatch) -> Gate:
    gate = Gate()
    monkeypatch.setattr(SsaldServicer, "Stats", gate.wrap(SsaldServicer.Stats))
    return gate


def test_calls_beyond_max_concurrent_rpcs_are_resource_exhausted(db, held_stats) -> None:
    options = ServerOptions(max_workers=2, limits=Limits(max_concurrent_rpcs=2))
    with running_server(db[0], options=options) as address, grpc.insecure_channel(address) as channel:
        stub = ssald_pb2_grpc.SsaldStub(channel)
        in_flight = [stub.Stats.future(ssald_pb2.StatsRequest(), timeout=TIMEOUT) for _ in range(2)]
        held_stats.wait_for(2)
        start = time.monotonic()
        with pytest.raises(grpc.RpcError) as err:
            stub.GetObject(ssald_pb2.GetObjectRequest(objid=FIRST_OBJID), timeout=TIMEOUT)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert time.monotonic() - start < 2.0  # refused at once, not queued
        held_stats.open()
        assert [f.result().n_objects for f in in_flight] == [50, 50]
        assert stub.GetObject(ssald_pb2.GetObjectRequest(objid=FIRST_OBJID), timeout=TIMEOUT).objid == FIRST_OBJID


def test_a_call_whose_deadline_passed_while_queued_is_never_started(db, held_stats, monkeypatch) -> None:
    started: list[int] = []
    original = SsaldServicer.GetObject

    def get_object(servicer, request, context):
        started.append(request.objid)
        return original(servicer, request, context)

    monkeypatch.setattr(SsaldServicer, "GetObject", get_object)
    with running_server(db[0], max_workers=1) as address, grpc.insecure_channel(address) as channel:
        stub = ssald_pb2_grpc.SsaldStub(channel)
        holding = stub.Stats.future(ssald_pb2.StatsRequest(), timeout=TIMEOUT)
        held_stats.wait_for(1)
        with SsaldClient(address, timeout=0.3) as client, pytest.raises(DeadlineExceeded):
            client.get_object(FIRST_OBJID)
        held_stats.open()
        assert holding.result().n_objects == 50
        time.sleep(0.3)  # the only worker is free again: a queued call would run now
        assert started == []
        assert stub.GetObject(ssald_pb2.GetObjectRequest(objid=FIRST_OBJID), timeout=TIMEOUT).objid == FIRST_OBJID
        assert started == [FIRST_OBJID]


def test_a_request_over_the_size_limit_is_resource_exhausted(db) -> None:
    with running_server(db[0], limits=Limits(max_receive_bytes=4096)) as address, SsaldClient(address) as client:
        assert len(client.search_vector([1.0] * DIM, k=3)) == 3
        with pytest.raises(ResourceExhausted) as err:
            client.search_vector([1.0] * 2000, k=3)  # 8 kB of floats
    assert err.value.code == "RESOURCE_EXHAUSTED" and "4096" in str(err.value)


def test_a_reply_over_the_clients_limit_is_resource_exhausted(address) -> None:
    with SsaldClient(address, max_message_bytes=1000) as client:
        assert len(client.find_similar(FIRST_OBJID, k=2)) == 2
        with pytest.raises(ResourceExhausted):
            client.find_similar(FIRST_OBJID, k=40)


def test_the_default_limits_let_an_upload_over_grpcs_4_mib_reach_the_server(address) -> None:
    assert Limits().max_receive_bytes > MAX_STAMP_BYTES  # the largest stamp the server reads, plus its fields
    upload = bytes(5 * 2**20)
    with SsaldClient(address, timeout=30) as client, pytest.raises(FailedPrecondition, match="without --model"):
        client.find_similar_to_image(upload, k=3)  # answered by the handler: this server has no model


def test_an_image_query_stops_when_its_client_cancels(db, tiny_model, survey, monkeypatch) -> None:
    from encoders.embedder import OnnxEmbedder
    from ssald_index.store import ObjectStore

    searches: list[int] = []
    original_search = ObjectStore.search_vector

    def search_vector(store, vector, k, **kwargs):
        searches.append(k)
        return original_search(store, vector, k, **kwargs)

    gate = Gate()
    monkeypatch.setattr(OnnxEmbedder, "embed_raw", gate.wrap(OnnxEmbedder.embed_raw))
    monkeypatch.setattr(ObjectStore, "search_vector", search_vector)
    image = sorted((survey / "stamps").glob("*.fits"))[0].read_bytes()
    request = ssald_pb2.FindSimilarToImageRequest(image=image, k=3)
    with running_server(db[0], model_path=tiny_model) as address, grpc.insecure_channel(address) as channel:
        stub = ssald_pb2_grpc.SsaldStub(channel)
        call = stub.FindSimilarToImage.future(request, timeout=TIMEOUT)
        gate.wait_for(1)
        assert call.cancel()
        time.sleep(0.3)  # the cancellation reaches the server while the embedding runs
        gate.open()
        assert gate.finished.wait(TIMEOUT)
        time.sleep(0.2)
        assert searches == []  # the server stopped before the search

        gate.finished.clear()
        with pytest.raises(grpc.RpcError):  # the table's embeddings are not this model's: the search refuses
            stub.FindSimilarToImage(request, timeout=TIMEOUT)
        assert searches == [3]  # a call that is still wanted does reach the search
