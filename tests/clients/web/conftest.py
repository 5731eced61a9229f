"""Fixtures of the web app's tests: a real table (a cluster of objects around one sky position, density
scores) served by a real gRPC server and the web app over it on a real uvicorn at 127.0.0.1:0; an ingested
survey served with a real ONNX model (``site``); a SAMP hub in this process; and the system Chromium for the
browser tests (:func:`chromium`)."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pytest

from clients.client import SsaldClient
from clients.web import WebOptions, WebServer, create_app
from tests.server.helpers import make_rows, running_server, serve_process, write_db

#: The centre of the cluster: objects 0..11 lie within 0.5 degree of it.
CENTRE = (150.0, 2.0)
N_CLUSTER = 12

#: How to get what the browser tests need, in their skip and fail messages.
INSTALL = "install it with `sudo apt-get install -y chromium` (Debian/Ubuntu) and `pip install -e '.[dev]'`"


def chromium(environ: Mapping[str, str] | None = None, path: str | None = None) -> str:
    """The system Chromium's path, for Playwright; skips the test without it (or without the playwright
    package), except where ``SSALD_REQUIRE_BROWSER=1`` (``.ci/run`` sets it): there the test fails.

    Parameters
    ----------
    environ : mapping, optional
        The environment (default ``os.environ``).
    path : str, optional
        The ``PATH`` searched for ``chromium`` / ``chromium-browser`` (default ``environ["PATH"]``).
    """
    environ = os.environ if environ is None else environ
    search = environ.get("PATH", os.defpath) if path is None else path
    found = shutil.which("chromium", path=search) or shutil.which("chromium-browser", path=search)
    problem = None if found else f"no Chromium on PATH: {INSTALL}"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problem = f"the playwright package is missing: {INSTALL}"
    if problem:
        if environ.get("SSALD_REQUIRE_BROWSER") == "1":
            pytest.fail(f"SSALD_REQUIRE_BROWSER=1 and {problem}")
        pytest.skip(problem)
    return found


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


@pytest.fixture(scope="package")
def site(survey, tiny_model, tmp_path_factory) -> Iterator[dict[str, Any]]:
    """``url`` (the web app, cross-matched against a catalogue of the first two objects by position),
    ``address`` (``ssald serve`` of the ingested survey with a map, and the model for image queries),
    ``rows`` (objid, ra, dec) and ``survey`` (its folder, with the stamp files). The browser test that labels
    ``merger`` expects no labels before it: tests that label use other labels."""
    from clients.web.crossmatch import Reference
    from ingest.job import ingest
    from ingest.options import IngestInput, IngestOptions
    from ssald_index.maps import update_maps
    from ssald_index.store import ObjectStore

    tmp = tmp_path_factory.mktemp("site")
    db = tmp / "db"
    ingest(IngestInput(survey, catalogue=survey / "catalogue.fits"), tiny_model, db, IngestOptions(progress=False))
    store = ObjectStore.open(db)
    update_maps(store, n_clusters=4, projection="pca", progress=False)
    rows = store.read(["objid", "ra", "dec"]).to_pylist()
    reference = tmp / "reference.csv"  # a small GOTHIC-like catalogue: the first two objects by position
    reference.write_text(
        "Number,RA,DEC\n" + "".join(f"R{i},{r['ra']!r},{r['dec']!r}\n" for i, r in enumerate(rows[:2]))
    )
    with serve_process(db, "--model", str(tiny_model)) as (_, address), SsaldClient(address, timeout=60) as client:
        web = WebServer(create_app(client, WebOptions(reference=Reference.read(reference))))
        try:
            yield {"url": web.start(), "rows": rows, "address": address, "survey": survey}
        finally:
            web.stop()


@pytest.fixture()
def hub(tmp_path, monkeypatch):
    """A SAMP hub in this process (lockfile in tmp_path, found through SAMP_HUB) and a client that records
    every ``table.load.votable`` it is sent: yields (received params list, event set on each)."""
    from astropy.samp import SAMPHubServer, SAMPIntegratedClient

    lockfile = tmp_path / "samp.lock"
    monkeypatch.setenv("SAMP_HUB", f"std-lockurl:{lockfile.as_uri()}")
    server = SAMPHubServer(web_profile=False, lockfile=str(lockfile), pool_size=2)
    server.start()
    received: list[dict] = []
    arrived = threading.Event()

    def on_table(private_key, sender_id, mtype, params, extra):
        received.append(params)
        arrived.set()

    topcat = SAMPIntegratedClient(name="fake TOPCAT")
    topcat.connect(pool_size=1)
    topcat.bind_receive_notification("table.load.votable", on_table)
    try:
        yield received, arrived
    finally:
        topcat.disconnect()
        server.stop()
