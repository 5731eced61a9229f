"""Log rate limiting (issue 15): a flood of one message is capped, counted, and summed up in one line."""

from __future__ import annotations

import logging
import time
from concurrent import futures

import grpc
import pytest

from proto import ssald_pb2_grpc
from server.log_limits import RateLimitFilter, limit_log_rate


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def limited():
    handler, clock = _Records(), _Clock()
    limit = RateLimitFilter(handler, burst=3, interval_s=60.0, max_kinds=4, clock=clock)
    handler.addFilter(limit)
    logger = logging.getLogger("tests.log_limits")
    logger.addHandler(handler)
    logger.propagate = False
    yield logger, handler, clock
    limit.close()
    logger.removeHandler(handler)
    logger.propagate = True


def test_burst_then_one_summary_line(limited) -> None:
    logger, handler, clock = limited
    for i in range(25):
        logger.error("cannot parse request %d", i)
    assert [r.getMessage() for r in handler.records] == [f"cannot parse request {i}" for i in range(3)]

    clock.now += 61
    logger.error("cannot parse request %d", 99)
    summary, record = handler.records[3:]
    assert summary.getMessage() == "suppressed 22 similar messages in the last 61 s: cannot parse request %d"
    assert summary.levelno == logging.WARNING and summary.name == "tests.log_limits"
    assert record.getMessage() == "cannot parse request 99"


def test_a_flood_that_stops_gets_its_count_written_once_its_interval_ends(limited) -> None:
    logger, handler, clock = limited
    limit = handler.filters[0]
    for i in range(25):
        logger.error("cannot parse request %d", i)
    clock.now += 30
    assert limit.flush() == 0  # the interval has not ended: nothing to say yet
    clock.now += 31
    assert limit.flush() == 1
    summary = handler.records[-1]
    assert summary.getMessage() == "suppressed 22 similar messages in the last 61 s: cannot parse request %d"
    assert limit.flush() == 0  # written once
    logger.error("cannot parse request %d", 99)  # a new interval, not summed up again
    assert [r.getMessage() for r in handler.records[-2:]] == [summary.getMessage(), "cannot parse request 99"]


def test_flush_everything_writes_unfinished_intervals_at_shutdown(limited) -> None:
    logger, handler, clock = limited
    for _ in range(5):
        logger.warning("table not ready")
    clock.now += 2
    assert handler.filters[0].flush(everything=True) == 1
    assert handler.records[-1].getMessage() == "suppressed 2 similar messages in the last 2 s: table not ready"


def test_the_timer_writes_the_count_of_a_flood_that_stopped() -> None:
    """No record comes after the flood: the summary still arrives, when the interval ends (real time)."""
    handler = _Records()
    limit = RateLimitFilter(handler, burst=2, interval_s=0.3)
    handler.addFilter(limit)
    logger = logging.getLogger("tests.log_limits.timer")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        for i in range(10):
            logger.error("garbage from client %d", i)
        deadline = time.monotonic() + 10
        while len(handler.records) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        limit.close()
        logger.removeHandler(handler)
        logger.propagate = True
    messages = [r.getMessage() for r in handler.records]
    assert messages[:2] == ["garbage from client 0", "garbage from client 1"]
    assert len(messages) == 3 and messages[2].startswith("suppressed 8 similar messages in the last 0 s:")


def test_kinds_are_limited_apart(limited) -> None:
    logger, handler, _ = limited
    for _ in range(10):
        logger.error("one kind")
        logger.warning("one kind")  # another level: another kind
        logger.error("another kind %s", "x")
    assert len(handler.records) == 9


def test_kinds_beyond_the_table_share_one_budget(limited) -> None:
    logger, handler, clock = limited
    for i in range(50):
        logger.error(f"message built from request {i}")  # noqa: G004 - a template that differs every time
    assert len(handler.records) == 4 + 3  # 4 kinds tracked, then 3 of the shared overflow budget
    clock.now += 61  # expired kinds make room again
    logger.error("a new kind")
    assert handler.records[-1].getMessage() == "a new kind"


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="burst"):
        RateLimitFilter(logging.NullHandler(), burst=0)


def test_caps_grpcs_own_log_under_1000_garbage_requests() -> None:
    """A bare grpcio server (the generated registration) logs a traceback per undecodable request; capped."""
    everything, limited_handler = _Records(), _Records()
    # grpcio logs to grpc._common, which propagates through the "grpc" logger: filter that logger's handlers
    # (the root's would be the same, but would leave filters on pytest's own handlers).
    grpc_logger = logging.getLogger("grpc")
    grpc_logger.addHandler(everything)
    grpc_logger.addHandler(limited_handler)
    added = limit_log_rate(grpc_logger, burst=5, interval_s=3600.0)
    assert limited_handler in [f.handler for f in added]
    for f in added:  # keep the unfiltered handler as the witness of what was logged
        if f.handler is not limited_handler:
            f.handler.removeFilter(f)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    ssald_pb2_grpc.add_SsaldServicer_to_server(ssald_pb2_grpc.SsaldServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary("/ssald.v1.Ssald/GetObject", request_serializer=None, response_deserializer=None)
            pending = [call.future(b"\x0a\xff", timeout=30) for _ in range(1000)]
            codes = {f.exception().code() for f in pending}
    finally:
        server.stop(None)
        for f in added:
            f.close()
        grpc_logger.removeHandler(everything)
        grpc_logger.removeHandler(limited_handler)
    assert codes == {grpc.StatusCode.INTERNAL}  # grpcio's own answer, which server.wire replaces
    grpc_records = [r for r in everything.records if r.name.startswith("grpc")]
    assert len(grpc_records) >= 1000
    assert 1 <= len([r for r in limited_handler.records if r.name.startswith("grpc")]) <= 5
