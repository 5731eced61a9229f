"""SAMP: the web app and ``ssald candidates --samp`` send tables to a client of a real astropy SAMP hub."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
from astropy.io import votable

from clients.cli import main as ssald
from clients.client import SsaldClient


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
