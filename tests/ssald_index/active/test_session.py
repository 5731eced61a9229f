"""ssald_index.active.session used from Python, without a server, on a real LanceDB table in tmp_path."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest

from ssald_index.active.labels import Label, read_labels
from ssald_index.active.session import (
    ActiveLearning,
    Candidates,
    LabelsSummary,
    NoClassifier,
    Proposal,
    Proposals,
    Submitted,
)
from ssald_index.filters import Filter
from ssald_index.schema import objects_schema
from ssald_index.store import ObjectNotFound, ObjectStore, TableNotReady
from tests.ssald_index.active.test_strategies import clustered

LABEL = "dual_nucleus"
FIRST = 10_000


@pytest.fixture()
def table(tmp_path):
    """(db_path, objids, truth): 400 clustered unit vectors, 10 of them in a rare cluster, scored by finalize."""
    x, truth = clustered(n=400, n_rare=10)
    schema = objects_schema(x.shape[1])
    n = len(x)
    cols = {f.name: pa.nulls(n, f.type) for f in schema if f.name != "embedding"}
    cols["objid"] = pa.array(np.arange(n) + FIRST, pa.int64())
    cols["ra"] = pa.array(np.linspace(10.0, 20.0, n))
    cols["dec"] = pa.array(np.linspace(-5.0, 5.0, n))
    cols["mag_r"] = pa.array(np.where(np.arange(n) % 2 == 0, 16.0, 19.0).astype(np.float32))
    cols["model_id"] = pa.array(["m"] * n)
    cols["ingested_at"] = pa.array([datetime.now(UTC)] * n, pa.timestamp("us", tz="UTC"))
    cols["embedding"] = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), x.shape[1])
    ObjectStore.write(tmp_path / "db", pa.table(cols).cast(schema)).finalize()
    return tmp_path / "db", np.arange(n) + FIRST, truth


def test_a_session_without_a_table_is_not_ready(tmp_path):
    session = ActiveLearning.open(tmp_path / "nothing")
    with pytest.raises(TableNotReady):
        session.next_to_label(LABEL)


def test_cold_start_from_a_seed_returns_typed_proposals_nearest_first(table):
    db, objids, truth = table
    session = ActiveLearning.open(db)
    seed = int(objids[np.flatnonzero(truth)[0]])
    answer = session.next_to_label(LABEL, n=5, seed_objid=seed)
    assert isinstance(answer, Proposals) and all(isinstance(item, Proposal) for item in answer.items)
    assert (answer.strategy, answer.n_positive, answer.n_negative) == ("cold_start:example", 0, 0)
    similarity = [item.similarity for item in answer.items]
    assert len(answer.items) == 5 and similarity == sorted(similarity, reverse=True)
    assert all(item.reason == "cold_start:example" and item.probability is None for item in answer.items)
    assert {item.row["objid"] for item in answer.items} <= set(objids[truth].tolist())
    with pytest.raises(ObjectNotFound):
        session.next_to_label(LABEL, seed_objid=1)
    with pytest.raises(ValueError, match="n must be an integer"):
        session.next_to_label(LABEL, n=0)


def test_a_filter_restricts_the_proposals(table):
    db, objids, truth = table
    session = ActiveLearning.open(db)
    answer = session.next_to_label(LABEL, n=8, filter=Filter(magnitudes={"mag_r": (None, 17.0)}))
    assert answer.strategy == "cold_start:anomalies" and len(answer.items) == 8
    assert all(item.row["mag_r"] < 17.0 for item in answer.items)


def test_submit_retrain_and_candidates_find_the_rare_cluster(table):
    db, objids, truth = table
    session = ActiveLearning.open(db)
    with pytest.raises(NoClassifier, match="no classifier trained"):
        session.candidates(LABEL)
    rare, common = objids[truth], objids[~truth]
    labels = [Label(int(o), LABEL, "ann") for o in rare[:4]] + [Label(int(o), f"not_{LABEL}") for o in common[:40]]
    answer = session.submit(labels, retrain=True)
    assert isinstance(answer, Submitted) and answer.n_written == 44
    assert answer.label_counts == {LABEL: 4, f"not_{LABEL}": 40}
    (outcome,) = answer.retrained
    assert outcome.label == LABEL and outcome.skipped == "" and outcome.run.n_positive == 4
    assert read_labels(db).num_rows == 44
    assert session.labels_summary() == LabelsSummary(44, 44, {LABEL: 4, f"not_{LABEL}": 40}, answer.labels_version)

    found = session.candidates(LABEL, n=6, exclude_labelled=True)
    assert isinstance(found, Candidates) and not found.stale and found.run.label == LABEL
    scores = [row["score"] for row in found.candidates]
    assert scores == sorted(scores, reverse=True)
    assert {row["objid"] for row in found.candidates} == set(rare[4:].tolist())

    proposals = session.next_to_label(LABEL, n=5, strategy="top")
    assert proposals.strategy == "top" and (proposals.n_positive, proposals.n_negative) == (4, 40)
    assert all(item.probability is not None for item in proposals.items)
    assert not {item.row["objid"] for item in proposals.items} & {label.objid for label in labels}


def test_submit_is_all_or_nothing_and_reports_a_label_that_cannot_train(table):
    db, objids, _ = table
    session = ActiveLearning.open(db)
    with pytest.raises(ObjectNotFound, match="objids not in the objects table: 1, 2; no label was written"):
        session.submit([Label(int(objids[0]), LABEL), Label(1, LABEL), Label(2, LABEL)])
    assert read_labels(db).num_rows == 0
    with pytest.raises(ValueError, match="no labels to submit"):
        session.submit([])
    answer = session.submit([Label(int(objids[0]), f"not_{LABEL}")], retrain=True)
    (outcome,) = answer.retrained
    assert outcome.label == LABEL and outcome.run is None and outcome.skipped
