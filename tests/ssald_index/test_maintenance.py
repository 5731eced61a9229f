"""ssald_index.maintenance: finalize builds the indexes, and scores new rows only up to its limit."""

from __future__ import annotations

import logging

import numpy as np

from ssald_index import maintenance
from ssald_index.ann import index_state
from ssald_index.store import ObjectStore
from tests.ssald_index.test_store import make_rows


def test_finalize_leaves_a_large_first_ingest_unscored(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(maintenance, "FINALIZE_MAX_SCORED", 10)
    store = ObjectStore.write(tmp_path / "db", make_rows(np.arange(1, 41)))
    with caplog.at_level(logging.WARNING, logger="ssald_index.maintenance"):
        maintenance.finalize(store)
    assert store.table.count_rows("density_score IS NULL") == 40
    assert "40 objects without a density score" in caplog.text
    assert "objid" in {state["column"] for state in index_state(store.table)}


def test_finalize_scores_only_the_rows_without_a_score(tmp_path):
    store = ObjectStore.write(tmp_path / "db", make_rows(np.arange(1, 41)))
    maintenance.finalize(store)
    before = store.read(["objid", "density_score"]).to_pylist()
    store = ObjectStore.write(tmp_path / "db", make_rows(np.arange(100, 110), seed=3))
    store.finalize()
    after = {r["objid"]: r["density_score"] for r in store.read(["objid", "density_score"]).to_pylist()}
    assert all(after[r["objid"]] == r["density_score"] for r in before)
    assert store.count_scored() == 50
