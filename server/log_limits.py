"""Rate limits on the server's log: a flood of one message cannot fill the disk or drown the rest.

A client can make the server log on every request (grpcio logs a traceback for each request it cannot
handle; a broken table logs on every health check). :class:`RateLimitFilter` lets through at most
``burst`` records of one kind per ``interval_s`` seconds, a kind being the logger's name, the level and
the message template (``record.msg`` before its arguments are filled in), and counts the rest. The count
is written as one line ``suppressed K similar messages in the last N s: <template>`` when the interval
ends: before the next record of that kind, or, when the flood stopped, by a daemon timer at the end of the
interval (:meth:`RateLimitFilter.flush`), so the final count of a flood is never lost; :func:`server.app.serve`
flushes the counts of unfinished intervals when it stops. :func:`limit_log_rate` puts one filter on every
handler of the root logger, so it covers the server's loggers and grpc's own (``grpc._server``,
``grpc._common``) alike.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

__all__ = ["BURST", "INTERVAL_S", "MAX_KINDS", "RateLimitFilter", "limit_log_rate"]

#: Records of one kind let through per interval.
BURST = 10
#: Length of the interval in seconds.
INTERVAL_S = 60.0
#: Kinds tracked at once; beyond this, all new kinds share one budget (a message template built from the
#: request, such as grpcio's "Exception calling application: ...", cannot grow the table without bound).
MAX_KINDS = 1024
#: Characters of a message template quoted in the summary line.
_QUOTED = 200

_SUMMARY_FLAG = "ssald_log_summary"
_OVERFLOW = ("", 0, "<other messages>")


class _Window:
    __slots__ = ("start", "passed", "suppressed")

    def __init__(self, start: float) -> None:
        self.start = start
        self.passed = 0
        self.suppressed = 0


class RateLimitFilter(logging.Filter):
    """A handler's filter that passes at most ``burst`` records of a kind per ``interval_s`` seconds.

    Parameters
    ----------
    handler : logging.Handler
        The handler it filters for; the summary lines are written to it.
    burst : int
        Records of one kind (logger, level, message template) let through per interval.
    interval_s : float
        Seconds of each interval, counted from the first record of that kind.
    max_kinds : int
        Kinds tracked at once (default :data:`MAX_KINDS`).
    clock : callable
        Monotonic time in seconds (tests pass their own); the flush timer waits real seconds, as many as
        ``clock`` says are left of the interval.
    """

    def __init__(
        self,
        handler: logging.Handler,
        burst: int = BURST,
        interval_s: float = INTERVAL_S,
        max_kinds: int = MAX_KINDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        if burst < 1 or interval_s <= 0 or max_kinds < 1:
            raise ValueError(
                f"burst ({burst}) and max_kinds ({max_kinds}) must be at least 1 and interval_s ({interval_s}) > 0"
            )
        self.handler = handler
        self.burst, self.interval_s, self.max_kinds, self.clock = burst, interval_s, max_kinds, clock
        self._windows: dict[tuple[str, int, str], _Window] = {}
        self._lock = threading.Lock()
        # The pending flush of the interval that ends first among those with suppressed records (None: none).
        self._timer: threading.Timer | None = None
        self._closed = False

    def _kind(self, record: logging.LogRecord, now: float) -> tuple[str, int, str]:
        kind = (record.name, record.levelno, str(record.msg))
        if kind in self._windows or len(self._windows) < self.max_kinds:
            return kind
        # Kinds whose interval ended make room (a count they suppressed goes unreported).
        expired = [k for k, w in self._windows.items() if now - w.start >= self.interval_s]
        for k in expired:
            del self._windows[k]
        return kind if len(self._windows) < self.max_kinds else _OVERFLOW

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether ``record`` is written; writes the summary of a finished interval first."""
        if getattr(record, _SUMMARY_FLAG, False):
            return True
        now = self.clock()
        summary = None
        with self._lock:
            kind = self._kind(record, now)
            window = self._windows.get(kind)
            if window is None or now - window.start >= self.interval_s:
                if window is not None and window.suppressed:
                    summary = (window.suppressed, now - window.start, kind)
                window = self._windows[kind] = _Window(now)
            if window.passed >= self.burst:
                window.suppressed += 1
                if self._timer is None:
                    self._schedule(window.start + self.interval_s - now)
                return False
            window.passed += 1
        if summary is not None:
            self._write_summary(*summary)
        return True

    def _schedule(self, delay_s: float) -> None:
        """Start the flush timer (the caller holds the lock and no timer is pending)."""
        if self._closed:
            return
        self._timer = threading.Timer(max(delay_s, 0.0), self._on_timer)
        self._timer.daemon = True  # a pending summary never keeps the process alive
        self._timer.start()

    def _on_timer(self) -> None:
        self.flush()

    def flush(self, everything: bool = False) -> int:
        """Write the summary of each interval that ended with records suppressed, and forget those intervals.

        Called by the timer when the first interval with suppressed records ends (a flood that stopped gets
        its count written then, not when its message comes again); the timer is restarted for the next one.

        Parameters
        ----------
        everything : bool
            Also the intervals that have not ended yet (at shutdown: their counts would be lost).

        Returns
        -------
        int
            Summary lines written.
        """
        now = self.clock()
        with self._lock:
            due = [
                (window.suppressed, now - window.start, kind)
                for kind, window in self._windows.items()
                if window.suppressed and (everything or now - window.start >= self.interval_s)
            ]
            for _, _, kind in due:
                del self._windows[kind]
            if self._timer is not None:
                self._timer.cancel()  # harmless when called from the timer itself
            self._timer = None
            pending = [w.start for w in self._windows.values() if w.suppressed]
            if pending:
                self._schedule(min(pending) + self.interval_s - now)
        for summary in due:
            self._write_summary(*summary)
        return len(due)

    def close(self) -> None:
        """Stop the flush timer for good (counts not yet written stay unwritten unless :meth:`flush` is called)."""
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _write_summary(self, count: int, seconds: float, kind: tuple) -> None:
        name, _, template = kind
        line = logging.makeLogRecord(
            {
                "name": name or __name__,  # the kinds beyond MAX_KINDS share a budget without a logger
                "levelno": logging.WARNING,
                "levelname": logging.getLevelName(logging.WARNING),
                "msg": "suppressed %d similar messages in the last %.0f s: %s",
                "args": (count, seconds, template[:_QUOTED]),
                _SUMMARY_FLAG: True,
            }
        )
        self.handler.handle(line)


def limit_log_rate(
    logger: logging.Logger | None = None, burst: int = BURST, interval_s: float = INTERVAL_S
) -> list[RateLimitFilter]:
    """Put a :class:`RateLimitFilter` on every handler of ``logger`` (default: the root logger).

    Records propagate to the root's handlers from every logger (``server.*``, ``grpc._server`` ...), so
    filtering there limits them all. A handler that already has one is left as it is. With no handler
    configured, Python writes warnings through ``logging.lastResort``, which is filtered instead.

    Returns
    -------
    list of RateLimitFilter
        The filters added.
    """
    logger = logging.getLogger() if logger is None else logger
    handlers = list(logger.handlers) or [h for h in (logging.lastResort,) if h is not None]
    added = []
    for handler in handlers:
        if not any(isinstance(f, RateLimitFilter) for f in handler.filters):
            added.append(RateLimitFilter(handler, burst, interval_s))
            handler.addFilter(added[-1])
    return added
