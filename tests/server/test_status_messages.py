"""Status messages stay bounded and free of internals, whatever the request echoes (issue 15, fault 7)."""

from __future__ import annotations

import grpc
import pytest

from proto import ssald_pb2, ssald_pb2_grpc
from tests.server.helpers import FIRST_OBJID

TIMEOUT = 30.0
BOUND = 2048  # bytes of a status message, the marker included: far under gRPC's header limits


@pytest.fixture(scope="module")
def stub(address):
    with grpc.insecure_channel(address) as channel:
        yield ssald_pb2_grpc.SsaldStub(channel)


def _error(call, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call(request, timeout=TIMEOUT)
    return err.value


def _assert_clean(details: str) -> None:
    assert len(details.encode()) <= BOUND, len(details.encode())
    for internal in ("SELECT", "/work/", "/home/", ".rs:", "site-packages", "datafusion"):
        assert internal not in details, details


def test_a_megabyte_filter_gets_its_real_code_and_a_bounded_message(stub) -> None:
    where = "a" * 1_000_000 + " > 0"  # one unknown column name, 1 MB long
    request = ssald_pb2.SearchVectorRequest(vector=[1.0] * 16, k=3, filter=ssald_pb2.Filter(where=where))
    err = _error(stub.SearchVector, request)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (err.code(), err.details()[:300])
    _assert_clean(err.details())
    assert "more" in err.details() or "…" in err.details()  # says it was cut, not silently


def test_a_hundred_thousand_unknown_objids_name_ten_and_count_the_rest(stub) -> None:
    unknown = [FIRST_OBJID + 7 * 1000 + i for i in range(100_000)]  # none in the 50-object table
    labels = [ssald_pb2.LabelEntry(objid=o, label="ring") for o in unknown]
    err = _error(stub.SubmitLabels, ssald_pb2.SubmitLabelsRequest(labels=labels))
    assert err.code() == grpc.StatusCode.NOT_FOUND, (err.code(), err.details()[:300])
    _assert_clean(err.details())
    assert str(unknown[0]) in err.details() and "and 99990 more" in err.details(), err.details()
