"""Anomaly scores: kNN density against a brute-force reference, incremental updates, Anomalies queries."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from scipy.stats import spearmanr

from ssald_index import density
from ssald_index.ann import AnnParams, SearchParams, build_indexes
from ssald_index.density import knn_scores, partition_knn_scores, top_anomalies, update_density
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
    # The new rows are scored against the whole table, old rows included.
    ref = _reference(store.read(["objid", "embedding"]), 10)
    assert np.allclose([after[o] for o in range(1000, 1050)], [ref[o] for o in range(1000, 1050)], atol=1e-5)


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


def _clustered(n: int, seed: int) -> pa.Table:
    """Rows whose embeddings form 40 clusters of different sizes and spreads, as embeddings of a survey do."""
    rows = make_rows(np.arange(1, n + 1), seed=seed)
    rng = np.random.default_rng(seed)
    dim = rows.schema.field("embedding").type.list_size
    centres = rng.normal(size=(40, dim))
    label = rng.choice(40, size=n, p=np.arange(1, 41) ** -1.0 / (np.arange(1, 41) ** -1.0).sum())
    vec = centres[label] + rng.normal(size=(n, dim)) * rng.uniform(0.2, 0.6, 40)[label, None]
    vec = (vec / np.linalg.norm(vec, axis=1, keepdims=True)).astype(np.float32)
    embedding = pa.FixedSizeListArray.from_arrays(pa.array(vec.ravel()), dim)
    return rows.set_column(rows.schema.get_field_index("embedding"), "embedding", embedding)


def _indexed(tmp_path, n: int, partitions: int) -> tuple[ObjectStore, dict[int, float]]:
    rows = _clustered(n, seed=7)
    store = ObjectStore.write(tmp_path / "db", rows)
    build_indexes(store.table, AnnParams(num_partitions=partitions), min_rows=0, progress=False)
    return store, _reference(rows, 10)


def _against(ref: dict[int, float], objids: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return scores.astype(np.float64), np.array([ref[o] for o in objids.tolist()])


def test_partition_scan_with_every_partition_is_exact(tmp_path):
    store, ref = _indexed(tmp_path, 1500, 12)
    objids, scores = partition_knn_scores(store, k=10, nprobes=12)
    got, exact = _against(ref, objids, scores)
    assert len(objids) == 1500 and np.allclose(got, exact, atol=1e-5)


def _top_overlap(got: np.ndarray, exact: np.ndarray, top: int) -> int:
    return len(set(np.argsort(-exact)[:top]) & set(np.argsort(-got)[:top]))


def test_partition_scan_ranks_anomalies_like_the_exact_scan(tmp_path, monkeypatch):
    store, ref = _indexed(tmp_path, 3000, 24)
    objids, scores = partition_knn_scores(store, k=10, nprobes=2)
    got, exact = _against(ref, objids, scores)
    # Only rows of the probed partitions are candidates: a score is never below the exact one.
    assert (got >= exact - 1e-5).all()
    assert np.mean(np.abs(got - exact) <= 1e-5) >= 0.7  # recall of the exact 10th neighbour
    assert spearmanr(got, exact).statistic >= 0.99
    top = len(exact) // 100
    assert _top_overlap(got, exact, top) >= 0.9 * top  # the exact top 1% is found
    # Without the refinement of the top scores, the same partitions find less of it.
    monkeypatch.setattr(density, "REFINE_FRACTION", 0.0)
    _, unrefined = partition_knn_scores(store, k=10, nprobes=2)
    assert _top_overlap(unrefined.astype(np.float64), exact, top) < _top_overlap(got, exact, top)


def test_partition_scan_trains_centroids_without_an_index_and_spills_to_disk(tmp_path, monkeypatch):
    rows = _clustered(2000, seed=5)
    store = ObjectStore.write(tmp_path / "db", rows)
    monkeypatch.setattr(density, "EXACT_MAX_ROWS", 500)
    ref = _reference(rows, 10)
    in_memory = partition_knn_scores(store, k=10, nprobes=6)
    spilled = partition_knn_scores(store, k=10, nprobes=6, memory_bytes=0)
    assert np.array_equal(in_memory[0], spilled[0]) and np.array_equal(in_memory[1], spilled[1])
    got, exact = _against(ref, *in_memory)
    assert (got >= exact - 1e-5).all() and spearmanr(got, exact).statistic >= 0.98
    assert not np.allclose(got, exact, atol=1e-5)  # partitions, not one exact scan


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
