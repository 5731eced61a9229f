"""Anomaly scores: kNN density against a brute-force reference, incremental updates, Anomalies queries."""

from __future__ import annotations

import numpy as np
import pytest

from ssald_index.ann import AnnParams, SearchParams, build_indexes
from ssald_index.density import knn_scores, top_anomalies, update_density
from ssald_index.filters import Filter
from ssald_index.store import ObjectStore
from tests.ssald_index.test_store import make_rows


def _reference(rows, k: int) -> dict[int, float]:
    vec = np.stack(rows.column("embedding").to_numpy(zero_copy_only=False)).astype(np.float64)
    vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    dist = 1.0 - vec @ vec.T
    np.fill_diagonal(dist, np.inf)
    kth = np.sort(dist, axis=1)[:, k - 1]
    return dict(zip(rows.column("objid").to_pylist(), kth.tolist()))


def _scores(store: ObjectStore) -> dict[int, float]:
    t = store.table.search().select(["objid", "density_score"]).limit(None).to_arrow()
    return dict(zip(t.column("objid").to_pylist(), t.column("density_score").to_pylist()))


def test_finalize_scores_every_object_like_brute_force(tmp_path):
    rows = make_rows(np.arange(1, 401))
    store = ObjectStore.write(tmp_path / "db", rows)
    store.finalize()
    ref = _reference(rows, 10)
    got = _scores(store)
    assert set(got) == set(ref)
    assert np.allclose([got[o] for o in ref], [ref[o] for o in ref], atol=1e-5)
    model = store.table.search().select(["density_model"]).limit(1).to_arrow().column(0)[0].as_py()
    assert model == "knn10:m1"
    # The indexes cover the rewritten rows: the objid lookup stays indexed after scoring.
    assert "ScalarIndexQuery" in store.table.search().where("objid = 5").limit(1).explain_plan(True)


def test_incremental_update_scores_only_new_rows(tmp_path):
    store = ObjectStore.write(tmp_path / "db", make_rows(np.arange(1, 301)))
    store.finalize()
    before = _scores(store)
    store = ObjectStore.write(tmp_path / "db", make_rows(np.arange(1000, 1050), seed=4))
    assert update_density(store, only_missing=True, progress=False) == 50
    after = _scores(store)
    assert all(after[o] == before[o] for o in before)
    assert all(after[o] is not None for o in range(1000, 1050))


def test_ann_scores_match_exact_scores(tmp_path):
    rows = make_rows(np.arange(1, 1201))
    store = ObjectStore.write(tmp_path / "db", rows)
    build_indexes(store.table, AnnParams(num_partitions=4), min_rows=0, progress=False)
    store.search_params = SearchParams(nprobes=4, refine_factor=50)
    vec = np.stack(rows.column("embedding").to_numpy(zero_copy_only=False)).astype(np.float32)
    ids = rows.column("objid").to_numpy()
    ref = _reference(rows, 5)
    got = knn_scores(store, vec[:300], ids[:300], k=5)
    assert np.allclose(got, [ref[o] for o in ids[:300]], atol=1e-5)


@pytest.mark.parametrize("method", ["iforest", "lof"])
def test_sklearn_methods_store_their_scores(tmp_path, method):
    store = ObjectStore.write(tmp_path / "db", make_rows(np.arange(1, 201)))
    assert update_density(store, method=method, sample=150, progress=False) == 200
    assert all(np.isfinite(v) for v in _scores(store).values())
    with pytest.raises(ValueError, match="unknown density method 'pca'"):
        update_density(store, method="pca")


@pytest.mark.parametrize("cached", [False, True])
def test_top_anomalies_are_the_highest_scores(tmp_path, cached):
    rows = make_rows(np.arange(1, 501))
    store = ObjectStore.write(tmp_path / "db", rows)
    store.finalize()
    if cached:
        store.enable_cache()
    ref = _reference(rows, 10)
    order = sorted(ref, key=lambda o: (-ref[o], o))
    got = top_anomalies(store, 20)
    assert [r["objid"] for r in got] == order[:20]
    z = dict(zip(rows.column("objid").to_pylist(), rows.column("z").to_pylist()))
    wanted = [o for o in order if z[o] < 0.03][:5]
    assert len(wanted) == 5
    assert [r["objid"] for r in top_anomalies(store, 5, Filter(z_max=0.03))] == wanted
    with pytest.raises(ValueError, match="n must be an integer between 1 and 1000"):
        top_anomalies(store, 0)


def test_iforest_scores_stream_in_batches_and_match_a_whole_table_fit(tmp_path):
    from sklearn.ensemble import IsolationForest

    rows = make_rows(np.arange(1, 301))
    store = ObjectStore.write(tmp_path / "db", rows.slice(0, 250))
    assert update_density(store, method="iforest", sample=150, seed=3, progress=False) == 250
    vec = np.stack(rows.column("embedding").to_numpy(zero_copy_only=False)).astype(np.float32)
    fit_rows = np.sort(np.random.default_rng(3).choice(250, size=150, replace=False))
    model = IsolationForest(n_estimators=200, random_state=3).fit(vec[fit_rows])
    expected = dict(zip(range(1, 251), -model.score_samples(vec[:250])))
    got = _scores(store)
    assert all(abs(got[o] - expected[o]) < 1e-5 for o in range(1, 251))
    # only the rows added since are scored; the old scores stay as they were
    store = ObjectStore.write(tmp_path / "db", rows.slice(250), new=True)
    assert update_density(store, method="iforest", only_missing=True, sample=150, seed=3, progress=False) == 50
    again = _scores(store)
    assert len(again) == 300 and all(again[o] == got[o] for o in range(1, 251))
