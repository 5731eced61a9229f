"""Waiting for SIGINT or SIGTERM, the way every long-running ``ssald`` process stops.

Only the standard library: ``ssald web`` uses it without loading the server.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["stop_signals"]


@contextlib.contextmanager
def stop_signals() -> Iterator[Callable[[], str]]:
    """Catch SIGINT and SIGTERM inside the block; yields ``wait()``, which blocks until one arrives and
    returns its name (``"SIGINT"``). The previous handlers are restored when the block ends. Enter it from
    the main thread (signal handlers can only be installed there).
    """
    received: list[int] = []
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        received.append(signum)
        stop.set()

    def wait() -> str:
        stop.wait()
        return signal.Signals(received[0]).name

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield wait
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
