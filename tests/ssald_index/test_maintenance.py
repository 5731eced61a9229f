"""ssald_index.maintenance: finalize builds the indexes and scores every new row, whatever their number."""

from __future__ import annotations

import numpy as np

from ssald_index import maintenance
from ssald_index.ann import index_state
from ssald_index.store import ObjectStore
from tests.ssald_index.test_store import make_rows


def test_finalize_scores_a_first_ingest_above_the_old_limit(tmp_path, capsys):
    # 50,001 rows: above the 50,000 that finalize used to score before leaving the rest unscored with a warning.
    store = ObjectStore.write(tmp_path / "db", make_rows(np.arange(1, 50_002)))
    done = maintenance.finalize(store, progress=True)
    assert store.table.count_rows("density_score IS NULL") == 0
    assert done["scored"] == 50_001 and store.count_scored() == 50_001
    assert {"objid", "embedding"} <= {state["column"] for state in index_state(store.table)}
    assert "density: 100%" in capsys.readouterr().err


def test_finalize_scores_only_the_rows_without_a_score(tmp_path):
    store = ObjectStore.write(tmp_path / "db", make_rows(np.arange(1, 41)))
    maintenance.finalize(store)
    before = store.read(["objid", "density_score"]).to_pylist()
    store = ObjectStore.write(tmp_path / "db", make_rows(np.arange(100, 110), seed=3))
    store.finalize()
    after = {r["objid"]: r["density_score"] for r in store.read(["objid", "density_score"]).to_pylist()}
    assert all(after[r["objid"]] == r["density_score"] for r in before)
    assert store.count_scored() == 50
