"""Run the web app with uvicorn in a background thread, and decide where it may listen.

:class:`WebServer` serves one app on ``HOST:PORT`` (port 0 picks a free one) from a thread, so
``ssald web`` and ``ssald serve --web`` keep the main thread for their signal handling and tests can start
one on ``127.0.0.1:0``. :func:`check_exposure` refuses an address beyond loopback unless the caller said
``--insecure`` or holds a token, as the gRPC side does.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from typing import Any

__all__ = ["WebServer", "check_exposure", "is_loopback"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) names this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, insecure: bool, token: str | None) -> bool:
    """Whether the app on ``host`` is exposed beyond loopback; raises when it may not be.

    Raises
    ------
    ValueError
        ``host`` is not loopback, and neither ``insecure`` nor a ``token`` was given.
    """
    exposed = not is_loopback(host)
    if exposed and not insecure and not token:
        raise ValueError(
            f"refusing to serve the web app on {host!r}, beyond loopback, without a token: give --token-file "
            "(or SSALD_TOKEN) so that labelling needs it, or --insecure to serve it read-only to anyone"
        )
    return exposed


class WebServer:
    """An ASGI app served by uvicorn from a daemon thread.

    Parameters
    ----------
    app : ASGI app
        E.g. :func:`clients.web.app.create_app`'s.
    host : str
        Interface to bind.
    port : int
        Port; 0 picks a free one (:attr:`port` tells which, once started).
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        self.host = host
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="ssald-web", daemon=True)
        self.port = port

    @property
    def url(self) -> str:
        """``http://HOST:PORT``, the base URL of the app."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 30.0) -> str:
        """Start serving; returns :attr:`url` once uvicorn listens.

        Raises
        ------
        OSError
            If it does not listen within ``timeout`` seconds (e.g. the port is taken).
        """
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise OSError(f"the web app could not listen on {self.host}:{self.port}")
            time.sleep(0.02)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self.url

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving (in-flight requests finish) and wait for the thread."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
