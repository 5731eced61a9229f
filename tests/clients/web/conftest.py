"""A real table (a cluster of objects around one sky position, density scores) served by a real gRPC
server, and the web app over it on a real uvicorn at 127.0.0.1:0."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from clients.client import SsaldClient
from clients.web import WebOptions, WebServer, create_app
from tests.server.helpers import make_rows, running_server, write_db

#: The centre of the cluster: objects 0..11 lie within 0.5 degree of it.
CENTRE = (150.0, 2.0)
N_CLUSTER = 12


@contextlib.contextmanager
def running_web(address: str, options: WebOptions | None = None) -> Iterator[str]:
    """The web app over the server at ``address``, on uvicorn at 127.0.0.1:0; yields its base URL."""
    with SsaldClient(address, timeout=30) as client:
        web = WebServer(create_app(client, options))
        url = web.start()
        try:
            yield url
        finally:
            web.stop()


@pytest.fixture(scope="package")
def served(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """``db``, ``rows``, ``address`` (gRPC) and ``url`` (web) of a 50-object table with density scores."""
    rows = make_rows()
    for i, row in enumerate(rows):
        row["density_score"] = float(np.float32((i * 37 % 50) / 50))
        if i < N_CLUSTER:
            row["ra"], row["dec"] = CENTRE[0] + 0.03 * (i - 6), CENTRE[1] + 0.02 * (i - 6)
    path = tmp_path_factory.mktemp("web") / "ssald.lance"
    write_db(path, rows)
    with running_server(path, refresh_s=0) as address, running_web(address) as url:
        yield {"db": path, "rows": rows, "address": address, "url": url}
