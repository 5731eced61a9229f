"""Active-learning RPCs (NextToLabel, SubmitLabels, Candidates, GetStamp) against a real server and table."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pytest

from clients import InvalidArgument, NotFound, SsaldClient, SsaldError
from server.handle import StoreHandle
from ssald_index.active.labels import read_labels
from ssald_index.active.session import ActiveLearning
from ssald_index.active.strategies import STRATEGIES
from ssald_index.schema import objects_schema
from ssald_index.store import ObjectStore
from tests.server.helpers import make_rows, running_server, write_db

LABEL = "dual_nucleus"


@pytest.fixture()
def served(tmp_path):
    """(db_path, rows, client) over a fresh 50-object table with density scores; every test labels its own."""
    rows = make_rows()
    for i, row in enumerate(rows):
        row["density_score"] = float(np.float32((i * 37 % 50) / 50))
    path = tmp_path / "ssald.lance"
    write_db(path, rows)
    with running_server(path, refresh_s=0) as address, SsaldClient(address, timeout=30) as client:
        yield path, rows, client


def _objids(batch) -> list[int]:
    return [item.objid for item in batch]


def test_cold_start_without_seed_proposes_the_top_anomalies(served):
    _, rows, client = served
    batch = client.next_to_label(LABEL, n=5)
    expected = [r["objid"] for r in sorted(rows, key=lambda r: -r["density_score"])][:5]
    assert _objids(batch) == expected
    assert batch.strategy == "cold_start:anomalies" and {i.reason for i in batch} == {"cold_start:anomalies"}
    assert (batch.n_positive, batch.n_negative) == (0, 0)
    assert batch.items[0].density_score == pytest.approx(max(r["density_score"] for r in rows))
    # Skipped objects are left out and the next choices take their place.
    skipped = client.next_to_label(LABEL, n=5, exclude_objids=expected[:2])
    expected = [r["objid"] for r in sorted(rows, key=lambda r: -r["density_score"])][2:7]
    assert _objids(skipped) == expected


def test_cold_start_from_a_seed_is_the_seed_and_its_nearest_neighbours(served):
    _, rows, client = served
    seed = rows[7]["objid"]
    x = np.array([r["embedding"] for r in rows], dtype=np.float64)
    order = np.argsort(-(x @ x[7]), kind="stable")
    batch = client.next_to_label(LABEL, n=6, seed_objid=seed)
    assert _objids(batch) == [rows[j]["objid"] for j in order[:6]]
    assert batch.items[0].objid == seed and batch.items[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert all(a.similarity >= b.similarity for a, b in zip(batch.items, batch.items[1:]))
    # Once the seed is labelled (but still no positive), it is not proposed again.
    client.submit_labels([(seed, f"not_{LABEL}")])
    again = client.next_to_label(LABEL, n=6, seed_objid=seed)
    assert _objids(again) == [rows[j]["objid"] for j in order[1:7]]


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_no_strategy_proposes_a_labelled_object(served, strategy):
    _, rows, client = served
    labelled = {rows[i]["objid"]: (LABEL if i % 3 == 0 else f"not_{LABEL}") for i in range(0, 30, 2)}
    client.submit_labels(list(labelled.items()), user="tester")
    batch = client.next_to_label(LABEL, n=1000, strategy=strategy)
    proposed = _objids(batch)
    assert batch.strategy == strategy
    assert len(proposed) == len(rows) - len(labelled) == len(set(proposed))
    assert not set(proposed) & set(labelled)
    assert (batch.n_positive, batch.n_negative) == (5, 10)
    if strategy in ("uncertainty", "top"):
        p = [item.probability for item in batch]
        assert all(v is not None and 0.0 <= v <= 1.0 for v in p)
        if strategy == "top":
            assert p == sorted(p, reverse=True)
        else:
            assert [abs(v - 0.5) for v in p] == sorted(abs(v - 0.5) for v in p)


def test_next_to_label_respects_a_filter_and_positives_only_look_next_to_them(served):
    _, rows, client = served
    client.submit_labels([(rows[4]["objid"], LABEL)])
    batch = client.next_to_label(LABEL, n=10, strategy="uncertainty", where="mag_r < 19")
    by_id = {r["objid"]: r for r in rows}
    assert batch.items and all(by_id[o]["mag_r"] is not None and by_id[o]["mag_r"] < 19 for o in _objids(batch))
    # One class only: the probability-based strategy cannot run yet, the neighbours of the positive come.
    assert batch.strategy == "cold_start:example" and rows[4]["objid"] not in _objids(batch)


def test_next_to_label_rejects_bad_requests(served):
    _, rows, client = served
    with pytest.raises(InvalidArgument, match="unknown strategy 'bogus'; choose from random, top"):
        client.next_to_label(LABEL, strategy="bogus")
    with pytest.raises(InvalidArgument, match="label must be a non-empty string"):
        client.next_to_label("  ")
    with pytest.raises(InvalidArgument, match="n must be an integer between 1 and 1000, got 0"):
        client.next_to_label(LABEL, n=0)
    with pytest.raises(NotFound, match="objid 42 is not in the objects table"):
        client.next_to_label(LABEL, seed_objid=42)
    with pytest.raises(InvalidArgument, match="bad filter"):
        client.next_to_label(LABEL, where="no_such_column > 1")


def test_submit_labels_is_durable_counted_and_all_or_nothing(served):
    path, rows, client = served
    a, b, c = (rows[i]["objid"] for i in (1, 2, 3))
    first = client.submit_labels(
        [(a, LABEL, "two cores"), {"objid": b, "label": f"not_{LABEL}", "user": "ann"}], user="bob"
    )
    assert first.n_written == 2 and first.label_counts == {LABEL: 1, f"not_{LABEL}": 1} and first.retrained == []
    on_disk = read_labels(path).to_pylist()
    assert [(r["objid"], r["label"], r["user"], r["note"]) for r in on_disk] == [
        (a, LABEL, "bob", "two cores"),
        (b, f"not_{LABEL}", "ann", ""),
    ]
    # Relabelling keeps both rows; the counts follow the latest label.
    second = client.submit_labels([(b, LABEL)])
    assert second.labels_version > first.labels_version and second.label_counts == {LABEL: 2}
    with pytest.raises(NotFound, match=r"objids not in the objects table: 5, 6; no label was written"):
        client.submit_labels([(c, LABEL), (6, LABEL), (5, LABEL)])
    with pytest.raises(InvalidArgument, match=f"label of objid {c} must be a non-empty string"):
        client.submit_labels([(a, LABEL), (c, " ")])
    with pytest.raises(InvalidArgument, match="no labels to submit"):
        client.submit_labels([])
    with pytest.raises(InvalidArgument, match="unknown classifier 'svm'"):
        client.submit_labels([(c, LABEL)], classifier="svm")
    assert read_labels(path).num_rows == 3
    stats = client.stats()
    assert (stats["n_labels"], stats["n_labelled_objects"], stats["label_counts"]) == (3, 2, {LABEL: 2})
    assert stats["labels_version"] == second.labels_version


def test_retrain_then_candidates_ranked_by_stored_score(served):
    _, rows, client = served
    with pytest.raises(SsaldError, match="no classifier trained for label 'dual_nucleus' yet.*retrain") as err:
        client.candidates(LABEL)
    assert err.value.code == "FAILED_PRECONDITION"
    one_class = client.submit_labels([(rows[0]["objid"], LABEL)], retrain=True)
    assert one_class.retrained[0].run is None and "label at least one of each" in one_class.retrained[0].skipped
    labels = [(r["objid"], LABEL if r["truth_class"] == "dual_agn" else f"not_{LABEL}") for r in rows[:30]]
    result = client.submit_labels(labels, retrain=True, classifier="logistic")
    (retrained,) = result.retrained
    run = retrained.run
    assert retrained.label == LABEL and retrained.skipped == "" and run is not None
    assert (run.label, run.classifier, run.n_positive, run.n_negative) == (LABEL, "logistic", 6, 24)
    assert run.n_objects == len(rows) and run.label_version == result.labels_version
    assert 0.0 <= run.metrics["cv_roc_auc"] <= 1.0 and run.trained_at is not None

    ranked = client.candidates(LABEL, n=10)
    scores = [c.score for c in ranked]
    assert len(ranked) == 10 and scores == sorted(scores, reverse=True) and not ranked.stale
    assert ranked.run == run
    latest = dict(labels)
    assert all(c.current_label == latest.get(c.objid) for c in ranked)
    fresh = client.candidates(LABEL, n=50, exclude_labelled=True)
    assert len(fresh) == 20 and not {c.objid for c in fresh} & set(latest)
    client.submit_labels([(rows[40]["objid"], LABEL)])
    assert client.candidates(LABEL, n=3).stale
    # With both classes, probability strategies run on the stored scores.
    batch = client.next_to_label(LABEL, n=5, strategy="top")
    assert batch.strategy == "top" and all(item.probability is not None for item in batch)


def test_stamp_png_renders_the_source_and_names_a_missing_file(served, tmp_path):
    path, rows, client = served
    stamp = tmp_path / "stamp.npy"
    np.save(stamp, np.random.default_rng(0).normal(1.0, 0.3, size=(5, 64, 64)).astype(np.float32))
    broken = tmp_path / "broken.npy"
    broken.write_bytes(b"\x93NUMPY not really")
    rows[0]["source"], rows[1]["source"] = str(stamp), str(broken)
    ObjectStore.write(path, pa.Table.from_pylist(rows[:2], schema=objects_schema(len(rows[0]["embedding"]))))
    with running_server(path, refresh_s=0) as address, SsaldClient(address) as fresh:
        png = fresh.stamp_png(rows[0]["objid"])
        with pytest.raises(InvalidArgument, match=f"cannot read stamp file 'broken.npy' of objid {rows[1]['objid']}"):
            fresh.stamp_png(rows[1]["objid"])
    from PIL import Image

    image = Image.open(io.BytesIO(png))
    assert png.startswith(b"\x89PNG") and image.mode == "RGB" and image.size == (256, 256)
    assert np.asarray(image).std() > 0
    with pytest.raises(NotFound, match=f"stamp file '{rows[2]['objid']}.fits' of objid {rows[2]['objid']} is missing"):
        client.stamp_png(rows[2]["objid"])
    with pytest.raises(NotFound, match="objid 3 is not in the objects table"):
        client.stamp_png(3)


def test_embeddings_are_read_once_per_table_version(tmp_path):
    path = tmp_path / "ssald.lance"
    rows = write_db(path)
    handle = StoreHandle(path, refresh_s=0)
    al = ActiveLearning(handle)
    first = al.embeddings()
    assert al.embeddings() is first and len(first.objids) == len(rows)
    extra = make_rows(n=1, seed=9)
    extra[0]["objid"] = 1
    ObjectStore.write(path, pa.Table.from_pylist(extra, schema=objects_schema(len(extra[0]["embedding"]))))
    assert al.embeddings() is first  # the server still serves the old version
    assert handle.refresh()
    second = al.embeddings()
    assert second is not first and second.version == handle.store().version and len(second.objids) == len(rows) + 1
    np.testing.assert_array_equal(second.rows_of([1, 2, rows[5]["objid"]])[[0, 1]], [second.rows_of([1])[0], -1])
    assert second.objids[second.rows_of([rows[5]["objid"]])[0]] == rows[5]["objid"]


@pytest.mark.parametrize("strategy", ["top", "gp_ei", "random"])
def test_with_every_object_labelled_next_to_label_is_an_empty_list(served, strategy):
    _, rows, client = served
    labels = [(r["objid"], LABEL if i % 5 == 0 else f"not_{LABEL}") for i, r in enumerate(rows)]
    client.submit_labels(labels)
    batch = client.next_to_label(LABEL, n=5, strategy=strategy)
    assert len(batch) == 0
    assert (batch.n_positive, batch.n_negative) == (10, 40)


def test_with_the_unlabelled_objects_all_skipped_next_to_label_is_an_empty_list(served):
    _, rows, client = served
    labels = [(r["objid"], LABEL if i % 5 == 0 else f"not_{LABEL}") for i, r in enumerate(rows[:-2])]
    client.submit_labels(labels)
    left = [r["objid"] for r in rows[-2:]]
    assert sorted(_objids(client.next_to_label(LABEL, n=5, strategy="gp_ei"))) == sorted(left)
    assert len(client.next_to_label(LABEL, n=5, strategy="gp_ei", exclude_objids=left)) == 0
