"""SAMP: the web app and ``ssald candidates --samp`` send tables to a client of a real astropy SAMP hub."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import httpx
import pytest
from astropy.io import votable
from astropy.samp import SAMPHubServer, SAMPIntegratedClient

from clients.cli import main as ssald
from clients.client import SsaldClient


@pytest.fixture()
def hub(tmp_path, monkeypatch):
    """A SAMP hub in this process (lockfile in tmp_path, found through SAMP_HUB) and a client that records
    every ``table.load.votable`` it is sent: yields (received params list, event set on each)."""
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


def test_the_web_app_sends_the_votable_url_of_a_query(served, hub):
    received, arrived = hub
    answer = httpx.post(f"{served['url']}/api/samp/send", params={"path": "/api/anomalies?n=5&format=csv"})
    assert answer.status_code == 200, answer.text
    assert arrived.wait(10)
    (params,) = received
    assert params["url"] == answer.json()["url"] == f"{served['url']}/api/anomalies?n=5&format=votable"
    assert params["name"] == "ssald anomalies"
    table = votable.parse_single_table(io.BytesIO(httpx.get(params["url"]).content)).to_table()
    with SsaldClient(served["address"]) as client:
        assert [int(o) for o in table["objid"]] == [o.objid for o in client.anomalies(5)]
    refused = httpx.post(f"{served['url']}/api/samp/send", params={"path": "http://elsewhere/x"})
    assert refused.status_code == 400 and "must be an /api table query" in refused.json()["error"]


def test_without_a_hub_the_send_is_503(served, tmp_path, monkeypatch):
    monkeypatch.setenv("SAMP_HUB", f"std-lockurl:{(tmp_path / 'none.lock').as_uri()}")
    answer = httpx.post(f"{served['url']}/api/samp/send", params={"path": "/api/anomalies"})
    assert answer.status_code == 503 and answer.json()["error"].startswith("no SAMP hub is running")


def test_candidates_samp_sends_the_votable_it_wrote(served, hub, tmp_path):
    received, arrived = hub
    out = tmp_path / "cands.vot"
    rows = served["rows"]
    with SsaldClient(served["address"]) as client:  # labels of both classes, so a classifier can be trained
        client.submit_labels([(rows[44 + j]["objid"], "bar" if j < 2 else "not_bar") for j in range(4)])
    assert (
        ssald(["candidates", "--db", str(served["db"]), "--label", "bar", "--top", "5", "--out", str(out), "--samp"])
        == 0
    )
    assert arrived.wait(10)
    assert received[0]["url"] == out.resolve().as_uri() and received[0]["name"] == "ssald candidates bar"
    assert len(votable.parse_single_table(Path(out)).array) == 5
    assert (
        ssald(["candidates", "--db", str(served["db"]), "--label", "bar", "--out", str(tmp_path / "c.csv"), "--samp"])
        == 2
    )
