from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest

from ssald_index.schema import objects_schema
from ssald_index.store import (
    MAX_K,
    ObjectNotFound,
    ObjectStore,
    TableNotReady,
    append_quarantine,
    read_quarantine,
)

DIM = 16


def make_rows(objids: np.ndarray, seed: int = 0, model_id: str = "m1") -> pa.Table:
    rng = np.random.default_rng(seed)
    n = len(objids)
    vec = rng.normal(size=(n, DIM)).astype(np.float32)
    vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    schema = objects_schema(DIM)
    cols = {f.name: pa.nulls(n, f.type) for f in schema if f.name != "embedding"}
    cols["objid"] = pa.array(objids, pa.int64())
    cols["ra"] = pa.array(rng.uniform(0, 360, n))
    cols["dec"] = pa.array(rng.uniform(-10, 10, n))
    cols["z"] = pa.array(rng.uniform(0, 0.3, n).astype(np.float32))
    cols["spec_class"] = pa.array(["GALAXY"] * n)
    cols["model_id"] = pa.array([model_id] * n)
    cols["ingested_at"] = pa.array([datetime.now(UTC)] * n, pa.timestamp("us", tz="UTC"))
    cols["embedding"] = pa.FixedSizeListArray.from_arrays(pa.array(vec.ravel()), DIM)
    return pa.table(cols).cast(schema)


def exact_neighbours(rows: pa.Table, i: int, k: int) -> list[int]:
    vec = np.stack(rows.column("embedding").to_numpy(zero_copy_only=False))
    dist = 1.0 - vec @ vec[i]
    order = [j for j in np.argsort(dist, kind="stable") if j != i]
    return [int(rows.column("objid")[j].as_py()) for j in order[:k]]


@pytest.fixture()
def store(tmp_path):
    rows = make_rows(np.arange(1000, 1300))
    s = ObjectStore.write(tmp_path / "db", rows)
    s.finalize()
    return s, rows, tmp_path / "db"


def test_open_missing_database_is_not_ready(tmp_path):
    with pytest.raises(TableNotReady, match="ssald ingest"):
        ObjectStore.open(tmp_path / "nothing")


def test_get_returns_metadata_and_uses_objid_index(store):
    s, rows, db = store
    reopened = ObjectStore.open(db)
    row = reopened.get(1005)
    assert row["objid"] == 1005
    assert row["spec_class"] == "GALAXY"
    assert row["bpt_class"] is None
    assert "embedding" not in row
    assert len(reopened.get(1005, with_embedding=True)["embedding"]) == DIM
    plan = reopened.table.search().where("objid = 1005").limit(1).explain_plan(verbose=True)
    assert "ScalarIndexQuery" in plan and "objid_idx" in plan


def test_unknown_objid_raises_not_found(store):
    s, _, _ = store
    with pytest.raises(ObjectNotFound, match="objid 42 is not in the objects table"):
        s.get(42)
    with pytest.raises(KeyError):
        s.neighbours(42, 5)


def test_neighbours_match_exact_search_and_exclude_query(store):
    s, rows, _ = store
    result = s.neighbours(1010, 10)
    got = [r["objid"] for r in result]
    assert 1010 not in got
    assert got == exact_neighbours(rows, 10, 10)
    distances = [r["distance"] for r in result]
    assert distances == sorted(distances)
    assert 0.0 <= distances[0] <= 2.0


@pytest.mark.parametrize("k", [0, -1, MAX_K + 1, 2.5, True])
def test_bad_k_is_rejected(store, k):
    s, _, _ = store
    with pytest.raises(ValueError, match="k must be an integer between 1 and 1000"):
        s.neighbours(1000, k)


def test_search_vector_validates_shape(store):
    s, _, _ = store
    with pytest.raises(ValueError, match=r"shape \(3,\), expected \(16,\)"):
        s.search_vector([1.0, 0.0, 0.0], 5)
    with pytest.raises(ValueError, match="finite and non-zero"):
        s.search_vector(np.zeros(DIM), 5)


def test_rewrite_is_idempotent_and_updates_rows(store):
    s, rows, db = store
    again = ObjectStore.write(db, make_rows(np.arange(1000, 1300), model_id="m1"))
    assert again.count() == 300
    more = ObjectStore.write(db, make_rows(np.arange(1250, 1350), seed=3))
    more.finalize()
    assert more.count() == 350
    assert len(np.unique(more.objids())) == 350
    # Updated rows carry the new embedding.
    new = make_rows(np.arange(1250, 1350), seed=3).column("embedding")[0].as_py()
    assert np.allclose(more.get(1250, with_embedding=True)["embedding"], new)


def test_write_refuses_duplicates_and_other_dimension(tmp_path):
    rows = make_rows(np.array([1, 2, 2]))
    with pytest.raises(ValueError, match="duplicate objids"):
        ObjectStore.write(tmp_path / "db", rows)
    ObjectStore.write(tmp_path / "db", make_rows(np.array([1, 2])))
    other = (
        make_rows(np.array([3]))
        .drop_columns(["embedding"])
        .append_column("embedding", pa.FixedSizeListArray.from_arrays(pa.array(np.ones(8, np.float32)), 8))
    )
    with pytest.raises(ValueError, match="16-d embeddings; refusing to write 8-d"):
        ObjectStore.write(tmp_path / "db", other)


def test_quarantine_is_appended(tmp_path):
    assert read_quarantine(tmp_path / "db").num_rows == 0
    append_quarantine(tmp_path / "db", [{"source": "a.fits", "objid": 7, "reason": "all NaN"}])
    append_quarantine(tmp_path / "db", [{"source": "b.fits", "objid": None, "reason": "unreadable"}])
    q = read_quarantine(tmp_path / "db").to_pylist()
    assert [r["reason"] for r in q] == ["all NaN", "unreadable"]
    assert q[1]["objid"] is None


def test_a_table_without_morphology_columns_gains_them_on_write(tmp_path):
    import lancedb

    from ssald_index.schema import MORPHOLOGY_COLUMNS, OBJECTS

    old = make_rows(np.arange(1, 6)).drop_columns(list(MORPHOLOGY_COLUMNS))
    lancedb.connect(tmp_path / "db").create_table(OBJECTS, data=old)  # as written before the columns existed
    store = ObjectStore.open(tmp_path / "db")
    assert store.get(3)["objid"] == 3 and len(store.neighbours(3, 2)) == 2

    new = make_rows(np.arange(6, 9))
    new = new.set_column(
        new.schema.get_field_index("morph_asymmetry"), "morph_asymmetry", pa.array([0.1, 0.5, None], pa.float32())
    )
    ObjectStore.write(tmp_path / "db", new, new=True)
    store = ObjectStore.open(tmp_path / "db")
    assert set(MORPHOLOGY_COLUMNS) <= set(store.table.schema.names)
    assert store.count() == 8
    assert store.read(["objid"], where="morph_asymmetry > 0.3").column("objid").to_pylist() == [7]
    assert store.table.count_rows("morph_asymmetry IS NULL") == 6  # the 5 old rows and the unmeasured one
