"""Status messages stay bounded and free of internals, whatever the request echoes (issue 15, fault 7)."""

from __future__ import annotations

import grpc
import pytest

from proto import ssald_pb2, ssald_pb2_grpc
from ssald_index.active.labels import MAX_LABELS_PER_CALL
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


def test_ten_thousand_unknown_objids_name_ten_and_count_the_rest(stub) -> None:
    # As many as one call may carry (more are INVALID_ARGUMENT before any lookup), none in the 50-object table.
    unknown = [FIRST_OBJID + 7 * 1000 + i for i in range(MAX_LABELS_PER_CALL)]
    labels = [ssald_pb2.LabelEntry(objid=o, label="ring") for o in unknown]
    err = _error(stub.SubmitLabels, ssald_pb2.SubmitLabelsRequest(labels=labels))
    assert err.code() == grpc.StatusCode.NOT_FOUND, (err.code(), err.details()[:300])
    _assert_clean(err.details())
    rest = f"and {MAX_LABELS_PER_CALL - 10} more"
    assert str(unknown[0]) in err.details() and rest in err.details(), err.details()
