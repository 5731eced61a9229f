"""ssald_index.search: filtered kNN, sky exclusion, cone search and the ANN index, against brute-force references."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from ssald_index import search
from ssald_index.ann import (
    AnnParams,
    SearchParams,
    build_indexes,
    has_ann_index,
    index_state,
    ivf_partitions,
    refresh_indexes,
)
from ssald_index.filters import Filter, angular_separation_arcsec
from ssald_index.store import ObjectNotFound, ObjectStore
from tests.ssald_index.test_store import make_rows

N = 2000


def _vectors(rows: pa.Table) -> np.ndarray:
    return np.stack(rows.column("embedding").to_numpy(zero_copy_only=False)).astype(np.float64)


def _exact(rows: pa.Table, query: np.ndarray, k: int, mask: np.ndarray | None = None) -> list[int]:
    vec = _vectors(rows)
    dist = 1.0 - vec @ query / (np.linalg.norm(vec, axis=1) * np.linalg.norm(query))
    if mask is not None:
        dist[~mask] = np.inf
    order = np.argsort(dist, kind="stable")[:k]
    return [int(rows.column("objid")[j].as_py()) for j in order if np.isfinite(dist[j])]


def _rows_with_metadata(n: int) -> pa.Table:
    rows = make_rows(np.arange(10_000, 10_000 + n))
    rng = np.random.default_rng(5)
    # A compact sky patch so that cones hold several objects; classes and magnitudes for filters.
    rows = rows.set_column(rows.schema.get_field_index("ra"), "ra", pa.array(rng.uniform(10.0, 10.2, n)))
    rows = rows.set_column(rows.schema.get_field_index("dec"), "dec", pa.array(rng.uniform(-0.1, 0.1, n)))
    bpt = pa.array(rng.choice(["Seyfert", "LINER", "SF"], n))
    rows = rows.set_column(rows.schema.get_field_index("bpt_class"), "bpt_class", bpt)
    mag = pa.array(rng.uniform(14, 18, n).astype(np.float32))
    return rows.set_column(rows.schema.get_field_index("mag_r"), "mag_r", mag)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """(store with an IVF_RQ index over every partition, rows)."""
    rows = _rows_with_metadata(N)
    store = ObjectStore.write(tmp_path_factory.mktemp("q") / "db", rows)
    build_indexes(store.table, AnnParams(num_partitions=8), min_rows=0, progress=False)
    # Probing every partition with a wide exact re-rank must reproduce brute force.
    store.search_params = SearchParams(nprobes=8, refine_factor=50)
    return store, rows


def test_ann_index_and_scalar_indexes_are_built(indexed):
    store, _ = indexed
    assert has_ann_index(store.table)
    state = {s["column"]: s for s in index_state(store.table)}
    assert state["embedding"]["index_type"] == "IVF_RQ"
    assert state["objid"]["index_type"] == "BTREE" and state["spec_class"]["index_type"] == "BITMAP"
    assert all(s["unindexed_rows"] == 0 for s in state.values())
    plan = store.table.search(np.ones(16, np.float32), vector_column_name="embedding").limit(5).explain_plan(True)
    assert "ANNSubIndex" in plan


def test_ann_search_matches_brute_force_with_exact_distances(indexed):
    store, rows = indexed
    vec = _vectors(rows)
    for i in (0, 17, 901):
        got = store.search_vector(vec[i], 10)
        assert [r["objid"] for r in got] == _exact(rows, vec[i], 10)
        exact = 1.0 - vec @ vec[i] / np.linalg.norm(vec, axis=1) / np.linalg.norm(vec[i])
        ids = rows.column("objid").to_numpy()
        for r in got:
            assert r["distance"] == pytest.approx(exact[ids == r["objid"]][0], abs=1e-5)


def test_filters_keep_k_and_match_brute_force(indexed):
    store, rows = indexed
    vec = _vectors(rows)
    z = rows.column("z").to_numpy()
    bpt = np.array(rows.column("bpt_class").to_pylist())
    mag = rows.column("mag_r").to_numpy()
    f = Filter(z_min=0.05, z_max=0.1, bpt_class=["Seyfert"], magnitudes={"mag_r": (None, 16.0)})
    mask = (z >= np.float32(0.05)) & (z <= np.float32(0.1)) & (bpt == "Seyfert") & (mag <= 16.0)
    assert 10 < mask.sum() < 100  # selective: most probed partitions hold no match
    store.search_params = SearchParams(nprobes=1, refine_factor=50)
    try:
        got = store.search_vector(vec[3], 10, filter=f)
    finally:
        store.search_params = SearchParams(nprobes=8, refine_factor=50)
    assert len(got) == 10
    assert [r["objid"] for r in got] == _exact(rows, vec[3], 10, mask)
    where = store.search_vector(vec[3], 5, filter=Filter(where="mag_r > 17.5"))
    assert all(r["mag_r"] > 17.5 for r in where)


def test_in_memory_rerank_matches_brute_force(indexed, monkeypatch):
    store, rows = indexed
    served = ObjectStore(store.table, SearchParams(nprobes=8, refine_factor=50))
    served.enable_cache(vectors=True)

    def no_fallback(*args, **kwargs):
        raise AssertionError("served kNN must map Lance row ids through the cache, not read objids back")

    monkeypatch.setattr(search, "_with_metadata", no_fallback)
    vec = _vectors(rows)
    ids = rows.column("objid").to_numpy()
    for i in (0, 17, 901):
        got = served.search_vector(vec[i], 10)
        assert [r["objid"] for r in got] == _exact(rows, vec[i], 10)
        exact = 1.0 - vec @ vec[i] / np.linalg.norm(vec, axis=1) / np.linalg.norm(vec[i])
        assert [r["distance"] for r in got] == pytest.approx([exact[ids == r["objid"]][0] for r in got], abs=1e-5)
        # by objid: the query's embedding comes from memory and the object itself is excluded
        assert [r["objid"] for r in served.neighbours(int(ids[i]), 5)] == _exact(rows, vec[i], 6)[1:]
    served.search_params = SearchParams(nprobes=1, refine_factor=2)
    got = served.search_vector(vec[3], 10, filter=Filter(bpt_class=["LINER"]))
    assert len(got) == 10 and all(r["bpt_class"] == "LINER" for r in got)
    with pytest.raises(ValueError, match="rerank must be"):
        SearchParams(rerank="gpu")


def test_memory_scan_visits_the_index_partitions_nearest_the_query(indexed, monkeypatch):
    """The served scan groups the cached embeddings by the Lance index's own IVF partitions and, with
    nprobes=p, returns brute force restricted to the rows of the p partitions nearest to the query."""
    store, rows = indexed
    served = ObjectStore(store.table, SearchParams(nprobes=1, refine_factor=4))
    served.enable_cache(vectors=True)
    monkeypatch.setattr(served, "lance", lambda: pytest.fail("an unfiltered served query must not ask Lance"))
    centroids, sizes = ivf_partitions(store.table.to_lance())
    assert centroids.shape == (8, 16) and sizes.sum() == N and served.cache.scans
    vec, ids = _vectors(rows), rows.column("objid").to_numpy()
    unit = vec / np.linalg.norm(vec, axis=1, keepdims=True)
    # independent reference: every row in the partition of its nearest centroid (L2 on unit vectors)
    part = np.argmin(((unit[:, None, :] - centroids[None].astype(np.float64)) ** 2).sum(-1), axis=1)
    assert len(np.unique(part)) == 8
    np.testing.assert_array_equal(np.bincount(part, minlength=8), sizes)  # Lance's partitions, the same rows
    # the cache's rows: one block per partition, each row the unit embedding of its object
    objids, cached, _ = served.in_memory()
    row_of = {int(o): j for j, o in enumerate(ids)}
    where = np.array([row_of[int(o)] for o in objids])
    np.testing.assert_allclose(cached, unit[where], atol=1e-6)
    assert np.all(np.diff(part[where]) >= 0)
    for i in (0, 17, 901):
        near = np.argsort(((centroids.astype(np.float64) - unit[i]) ** 2).sum(1))
        for nprobes in (1, 3):
            served.search_params = SearchParams(nprobes=nprobes, refine_factor=4)
            got = served.search_vector(vec[i], 10)
            assert [r["objid"] for r in got] == _exact(rows, vec[i], 10, np.isin(part, near[:nprobes]))
            exact = 1.0 - unit @ unit[i]
            assert [r["distance"] for r in got] == pytest.approx([exact[row_of[r["objid"]]] for r in got], abs=1e-6)
    # excluding every object of the query's partition: the scan widens (1 -> 2 probes) to find k others
    served.search_params = SearchParams(nprobes=1, refine_factor=4)
    near = np.argsort(((centroids.astype(np.float64) - unit[5]) ** 2).sum(1))
    home = part == near[0]
    got = served.search_vector(vec[5], 10, exclude=ids[home].tolist())
    assert len(got) == 10 and not set(ids[home].tolist()) & {r["objid"] for r in got}
    assert [r["objid"] for r in got] == _exact(rows, vec[5], 10, part == near[1])


def test_memory_scan_agrees_with_lances_and_filtered_queries_still_go_to_lance(indexed):
    store, rows = indexed
    vec = _vectors(rows)
    answers = {}
    for scan in ("memory", "lance"):
        served = ObjectStore(store.table, SearchParams(nprobes=8, refine_factor=50, scan=scan))
        served.enable_cache(vectors=True)
        answers[scan] = [[r["objid"] for r in served.search_vector(vec[i], 10)] for i in (2, 40, 700)]
        calls = []
        real = served.lance
        served.lance = lambda calls=calls, real=real: calls.append(1) or real()
        served.search_vector(vec[2], 5, filter=Filter(bpt_class=["SF"]))
        assert calls, "a filtered query must use Lance's SQL prefilter"
    assert answers["memory"] == answers["lance"] == [_exact(rows, vec[i], 10) for i in (2, 40, 700)]
    with pytest.raises(ValueError, match="scan must be"):
        SearchParams(scan="gpu")


def test_auto_scan_leaves_large_scans_to_lance(indexed, monkeypatch):
    store, rows = indexed
    # a query expects nprobes partitions drawn by size: sum(s^2)/sum(s) rows each
    sizes = np.array([100, 100, 800])
    expected = SearchParams(nprobes=1).probes(1000) * (sizes**2).sum() / sizes.sum()
    assert expected == 660
    monkeypatch.setattr("ssald_index.ann.MEMORY_SCAN_MAX_FLOATS", 660 * 16)
    assert SearchParams(nprobes=1).scans_in_memory(sizes, 16)
    assert not SearchParams(nprobes=1).scans_in_memory(sizes, 17)
    assert SearchParams(nprobes=1, scan="memory").scans_in_memory(sizes, 10**6)
    assert not SearchParams(nprobes=1, scan="lance").scans_in_memory(sizes, 1)
    # a served store whose expected scan is over the limit asks Lance, with the same answers
    monkeypatch.setattr("ssald_index.ann.MEMORY_SCAN_MAX_FLOATS", 1000)
    served = ObjectStore(store.table, SearchParams(nprobes=8, refine_factor=50))
    served.enable_cache(vectors=True)
    assert not served.cache.scans
    calls = []
    real = served.lance
    served.lance = lambda: calls.append(1) or real()
    vec = _vectors(rows)
    assert [r["objid"] for r in served.search_vector(vec[11], 10)] == _exact(rows, vec[11], 10)
    assert calls


def test_memory_scan_without_an_index_is_exact(tmp_path):
    rows = _rows_with_metadata(300)
    store = ObjectStore.write(tmp_path / "db", rows)
    assert not has_ann_index(store.table) and ivf_partitions(store.table.to_lance()) is None
    store.enable_cache(vectors=True)
    store.lance = lambda: pytest.fail("without a filter the served copy answers")
    vec = _vectors(rows)
    assert [r["objid"] for r in store.search_vector(vec[9], 7)] == _exact(rows, vec[9], 7)


def test_default_probes_follow_the_partition_count():
    auto = SearchParams()
    # ~sqrt(rows) partitions, 1% of them probed, never fewer than 10
    assert [auto.probes(n) for n in (100, 100_000, 1_000_000, 10_000_000, 100_000_000)] == [10, 10, 10, 32, 100]
    assert SearchParams(nprobes=3).probes(10_000_000) == 3
    with pytest.raises(ValueError, match="nprobes must be >= 1"):
        SearchParams(nprobes=0)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (Filter(where="no_such_column > 1"), "bad filter"),
        (Filter(z_min=0.3, z_max=0.1), "empty redshift range"),
        (Filter(magnitudes={"mag_q": (1.0, 2.0)}), "unknown magnitude column 'mag_q'"),
        (Filter(z_min=float("nan")), "must be finite"),
    ],
)
def test_bad_filters_raise_value_error(indexed, bad, message):
    store, rows = indexed
    with pytest.raises(ValueError, match=message):
        store.search_vector(_vectors(rows)[0], 5, filter=bad)


def test_neighbours_exclude_objects_within_radius(indexed):
    store, rows = indexed
    ra, dec, ids = rows.column("ra").to_numpy(), rows.column("dec").to_numpy(), rows.column("objid").to_numpy()
    q = 42
    sep = angular_separation_arcsec(ra[q], dec[q], ra, dec)
    radius = float(np.sort(sep)[6])  # 5 other objects lie closer than this
    near = set(ids[sep <= radius].tolist())
    got = store.neighbours(int(ids[q]), 20, exclude_radius_arcsec=radius)
    assert len(got) == 20 and not near & {r["objid"] for r in got}
    assert [r["objid"] for r in got] == _exact(rows, _vectors(rows)[q], 20, sep > radius)


def test_cone_and_nearest_object_match_astropy(indexed):
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    store, rows = indexed
    ra, dec, ids = rows.column("ra").to_numpy(), rows.column("dec").to_numpy(), rows.column("objid").to_numpy()
    centre = SkyCoord(10.1 * u.deg, 0.0 * u.deg)
    sep = centre.separation(SkyCoord(ra * u.deg, dec * u.deg)).arcsec
    found = store.cone(10.1, 0.0, 60.0)
    assert [r["objid"] for r in found] == ids[np.argsort(sep)][: int((sep <= 60).sum())].tolist()
    best = store.nearest_object(10.1, 0.0, 60.0)
    assert best["objid"] == ids[np.argmin(sep)]
    assert best["separation_arcsec"] == pytest.approx(sep.min(), abs=1e-6)
    with pytest.raises(ObjectNotFound, match="no object within 1 arcsec"):
        store.nearest_object(200.0, 45.0, 1.0)
    with pytest.raises(ValueError, match="dec must be in"):
        store.nearest_object(10.0, 95.0, 1.0)


def test_appended_rows_are_folded_into_the_index(tmp_path):
    rows = _rows_with_metadata(600)
    store = ObjectStore.write(tmp_path / "db", rows)
    build_indexes(store.table, AnnParams(num_partitions=4), min_rows=0, progress=False)
    more = make_rows(np.arange(50_000, 50_100), seed=9)
    store = ObjectStore.write(tmp_path / "db", more)
    assert {s["column"]: s for s in index_state(store.table)}["embedding"]["unindexed_rows"] == 100
    refresh_indexes(store.table)
    assert {s["column"]: s for s in index_state(store.table)}["embedding"]["unindexed_rows"] == 0
    store.search_params = SearchParams(nprobes=4, refine_factor=50)
    target = _vectors(more)[7]
    assert store.search_vector(target, 1)[0]["objid"] == 50_007


def test_a_chunked_new_table_is_compacted_then_indexed_over_every_row(tmp_path):
    rows = _rows_with_metadata(600)
    for lo in range(0, 600, 200):  # three commits, as ingestion's chunks leave them
        store = ObjectStore.write(tmp_path / "db", rows.slice(lo, 200), new=lo > 0)
    assert len(store.table.to_lance().get_fragments()) == 3
    refresh_indexes(store.table, min_rows=0, params=AnnParams(num_partitions=4))
    assert len(store.table.to_lance().get_fragments()) == 1
    state = {s["column"]: s for s in index_state(store.table)}
    assert "embedding" in state and "objid" in state
    assert all(s["indexed_rows"] == 600 and s["unindexed_rows"] == 0 for s in state.values())
    store.search_params = SearchParams(nprobes=4, refine_factor=50)
    target = _vectors(rows)[123]
    assert store.search_vector(target, 1)[0]["objid"] == rows.column("objid")[123].as_py()


@pytest.mark.parametrize("k", [0, -1, search.MAX_K + 1, 2.5, True, "3"])
def test_check_k_rejects_what_is_not_an_integer_in_range(k):
    with pytest.raises(ValueError, match="k must be an integer between 1 and"):
        search.check_k(k)
    assert search.check_k(np.int64(7)) == 7 and isinstance(search.check_k(np.int64(7)), int)


def test_module_functions_answer_as_the_store_methods(indexed):
    store, rows = indexed
    vec, ids = _vectors(rows), rows.column("objid").to_numpy()
    f = Filter(bpt_class=["SF"])
    assert search.search_vector(store, vec[4], 7, filter=f) == store.search_vector(vec[4], 7, filter=f)
    assert search.neighbours(store, int(ids[4]), 5) == store.neighbours(int(ids[4]), 5)
    assert search.cone(store, 10.1, 0.0, 60.0) == store.cone(10.1, 0.0, 60.0)
