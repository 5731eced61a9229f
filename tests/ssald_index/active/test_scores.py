from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from astropy.table import Table

from ssald_index import registry
from ssald_index.active.labels import Label, add_labels, negative_of
from ssald_index.active.scores import (
    ScoresNotTrained,
    is_stale,
    label_version,
    latest_run,
    read_runs,
    read_scores,
    retrain,
    scores_table_name,
    top_candidates,
)
from ssald_index.filters import Filter
from ssald_index.schema import SCORE_RUNS, objects_schema
from ssald_index.store import ObjectStore
from tests.first_commit import half_create

DIM = 16
MODEL_ID = "test-survey-model"
TARGET = "edge_on"


def survey_rows(survey: Path, model_id: str = MODEL_ID, objids: dict[int, int] | None = None) -> pa.Table:
    """``objects`` rows for the survey fixture's catalogue, with embeddings that carry its truth classes.

    Each class has a random centre and objects scatter around it, so a classifier over the embeddings can
    learn a class from a few labels (the encoder is not what is tested here). ``objids`` renames objects.
    """
    cat = Table.read(survey / "catalogue.fits")
    n = len(cat)
    truth = [str(t) for t in cat["truth_class"]]
    classes = sorted(set(truth))
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(len(classes), DIM))
    vec = centres[[classes.index(t) for t in truth]] + 0.6 * rng.normal(size=(n, DIM))
    vec = (vec / np.linalg.norm(vec, axis=1, keepdims=True)).astype(np.float32)
    schema = objects_schema(DIM)
    cols = {f.name: pa.nulls(n, f.type) for f in schema if f.name != "embedding"}
    for name in cat.colnames:
        # Missing values (masked, NaN, empty strings) are nulls, as ingest writes them.
        values = [None if v is np.ma.masked else v.item() if hasattr(v, "item") else v for v in cat[name]]
        missing = [v in ("", None) or (isinstance(v, float) and np.isnan(v)) for v in values]
        cols[name] = pa.array([None if m else v for v, m in zip(values, missing)])
    if objids:
        cols["objid"] = pa.array([objids.get(int(o), int(o)) for o in cat["objid"]], pa.int64())
    cols["survey"] = pa.array(["SYNTH"] * n)
    cols["model_id"] = pa.array([model_id] * n)
    cols["ingested_at"] = pa.array([datetime.now(UTC)] * n, pa.timestamp("us", tz="UTC"))
    cols["embedding"] = pa.FixedSizeListArray.from_arrays(pa.array(vec.ravel()), DIM)
    return pa.table(cols).cast(schema)


def write_survey_db(survey: Path, db: Path, **kwargs) -> pa.Table:
    """Write :func:`survey_rows` as a real on-disk ``objects`` table with density scores; return the rows."""
    rows = survey_rows(survey, **kwargs)
    ObjectStore.write(db, rows).finalize()
    return rows


def label_some(db: Path, rows: pa.Table, target: str = TARGET, n_pos: int = 10, n_neg: int = 40) -> set[int]:
    """Label the first ``n_pos`` objects of class ``target`` and ``n_neg`` others; return the labelled objids."""
    objids = rows.column("objid").to_pylist()
    truth = rows.column("truth_class").to_pylist()
    pos = [o for o, t in zip(objids, truth) if t == target][:n_pos]
    neg = [o for o, t in zip(objids, truth) if t != target][:n_neg]
    add_labels(db, [Label(o, target, "test") for o in pos] + [Label(o, negative_of(target), "test") for o in neg])
    return set(pos) | set(neg)


@pytest.fixture(scope="module")
def trained(survey, tmp_path_factory):
    """(db, rows, labelled objids, run): the survey table with 50 labels and a logistic run for edge_on."""
    db = tmp_path_factory.mktemp("scores") / "ssald.lance"
    rows = write_survey_db(survey, db)
    labelled = label_some(db, rows)
    return db, rows, labelled, retrain(db, TARGET)


def _truth(rows: pa.Table) -> dict[int, str]:
    return dict(zip(rows.column("objid").to_pylist(), rows.column("truth_class").to_pylist()))


def test_retrain_scores_every_object_with_its_tags(trained):
    db, rows, labelled, run = trained
    scores = read_scores(db, TARGET)
    assert scores.num_rows == rows.num_rows == run.n_objects
    assert sorted(scores.column("objid").to_pylist()) == sorted(rows.column("objid").to_pylist())
    s = scores.column("score").to_numpy()
    assert np.all((s >= 0) & (s <= 1))
    assert (run.label, run.classifier, run.model_id) == (TARGET, "logistic", MODEL_ID)
    assert (run.n_positive, run.n_negative) == (10, 40)
    assert run.label_version == label_version(db) > 0
    assert latest_run(db, TARGET) == run
    history = read_runs(db, TARGET)
    assert history.num_rows >= 1 and history.column("label_version").to_pylist()[-1] == run.label_version
    assert run.metrics["cv_roc_auc"] > 0.9


def test_labelled_positives_rank_first(trained):
    db, rows, labelled, _ = trained
    truth = _truth(rows)
    scores = read_scores(db, TARGET)
    objids, s = scores.column("objid").to_pylist(), scores.column("score").to_numpy()
    unlabelled = [i for i, o in enumerate(objids) if o not in labelled]
    is_target = np.array([truth[objids[i]] == TARGET for i in unlabelled])
    order = np.argsort(-s[unlabelled])
    n_left = int(is_target.sum())
    # Most of the edge-on objects nobody labelled are in the top ranks, not spread through 190 objects.
    assert is_target[order[:n_left]].mean() >= 0.8, (n_left, is_target[order[: 2 * n_left]])
    top = top_candidates(db, TARGET, 10, exclude_labelled=True)
    assert [r["objid"] for r in top] == [objids[unlabelled[i]] for i in order[:10]]
    assert sum(truth[r["objid"]] == TARGET for r in top) >= 8


def test_top_candidates_rows_are_sorted_with_metadata_and_labels(trained):
    db, rows, labelled, _ = trained
    top = top_candidates(db, TARGET, 30)
    assert len(top) == 30
    s = [r["score"] for r in top]
    assert s == sorted(s, reverse=True)
    assert "embedding" not in top[0] and {"ra", "dec", "z", "bpt_class", "density_score", "label"} <= set(top[0])
    assert all(r["density_score"] is not None for r in top)
    for r in top:
        expected = (TARGET if r["truth_class"] == TARGET else negative_of(TARGET)) if r["objid"] in labelled else None
        assert r["label"] == expected
    assert any(r["label"] == TARGET for r in top)


def test_filters_still_return_n(trained):
    db, rows, _, _ = trained
    scores = read_scores(db, TARGET)
    by_id = dict(zip(scores.column("objid").to_pylist(), scores.column("score").to_pylist()))
    z = dict(zip(rows.column("objid").to_pylist(), rows.column("z").to_pylist()))
    inside = [o for o, v in z.items() if v is not None and 0.05 <= v <= 0.12]
    assert 15 < len(inside) < rows.num_rows / 2  # a selective filter
    top = top_candidates(db, TARGET, 15, filter=Filter(z_min=0.05, z_max=0.12))
    expected = sorted(inside, key=lambda o: (-by_id[o], o))[:15]
    assert [r["objid"] for r in top] == expected
    # Fewer pass than asked: every passing object, no padding.
    few = top_candidates(db, TARGET, 1000, filter=Filter(z_min=0.05, z_max=0.12))
    assert len(few) == len(inside)
    with pytest.raises(ValueError, match="bad filter"):
        top_candidates(db, TARGET, 5, filter=Filter(where="no_such_column > 1"))
    with pytest.raises(ValueError, match="positive integer"):
        top_candidates(db, TARGET, 0)


def test_staleness_follows_labels_model_and_objects(survey, tmp_path):
    db = tmp_path / "db"
    rows = write_survey_db(survey, db)
    assert is_stale(db, TARGET) and latest_run(db, TARGET) is None and read_scores(db, TARGET) is None
    label_some(db, rows, n_pos=4, n_neg=8)
    first = retrain(db, TARGET, classifier="forest", cv=False)
    assert first.classifier == "forest" and first.metrics == {}
    assert not is_stale(db, TARGET)
    add_labels(db, [Label(int(rows.column("objid")[-1].as_py()), "ring")])
    assert is_stale(db, TARGET)
    second = retrain(db, TARGET, cv=False)
    assert not is_stale(db, TARGET) and second.label_version > first.label_version
    assert second.n_negative == first.n_negative + 1
    assert read_runs(db, TARGET).num_rows == 2
    # Re-embedding with another model makes the scores stale.
    ObjectStore.write(db, survey_rows(survey, model_id="another-model"))
    assert is_stale(db, TARGET)
    run = retrain(db, TARGET, cv=False)
    assert run.model_id == "another-model" and not is_stale(db, TARGET)
    # New objects have no score yet.
    extra = survey_rows(survey, model_id="another-model").slice(0, 1)
    ObjectStore.write(db, extra.set_column(0, "objid", pa.array([1], pa.int64())))
    assert is_stale(db, TARGET)


def test_errors_leave_stored_scores_alone(trained):
    db, rows, _, run = trained
    before = read_scores(db, TARGET)
    with pytest.raises(ValueError, match="0 object.s. labelled 'merger'"):
        retrain(db, "merger")  # every label given is edge_on or not_edge_on
    with pytest.raises(ValueError, match="classifier must be one of"):
        retrain(db, TARGET, classifier="svm")
    for bad in ("dual nucleus", "x;drop", "", "ring-galaxy"):
        with pytest.raises(ValueError, match=r"\[A-Za-z0-9_\]\+"):
            retrain(db, bad)
    with pytest.raises(ScoresNotTrained, match="no stored scores for label 'ring'"):
        top_candidates(db, "ring", 5)
    assert read_scores(db, TARGET).equals(before) and latest_run(db, TARGET) == run
    assert scores_table_name("dual_nucleus") == "scores_dual_nucleus"


def test_one_class_labels_are_refused(survey, tmp_path):
    db = tmp_path / "db"
    rows = write_survey_db(survey, db)
    label_some(db, rows, n_pos=5, n_neg=0)
    with pytest.raises(ValueError, match="5 object.s. labelled 'edge_on' and 0 with another label"):
        retrain(db, TARGET)
    assert read_scores(db, TARGET) is None


def test_half_created_score_tables_are_absent_then_recreated_by_retrain(survey, tmp_path, monkeypatch, caplog):
    """A crash during the first commit of ``scores_<label>`` or ``score_runs``: no run, then a retrain works."""
    monkeypatch.setattr(registry, "SETTLE_SECONDS", 0.0)
    db = tmp_path / "ssald.lance"
    label_some(db, write_survey_db(survey, db))
    retrain(db, TARGET)
    for name in (scores_table_name(TARGET), SCORE_RUNS):
        half_create(db / f"{name}.lance")
    assert (latest_run(db, TARGET), read_scores(db, TARGET), read_runs(db).num_rows) == (None, None, 0)
    with caplog.at_level(logging.WARNING, logger=registry.__name__):
        run = retrain(db, TARGET)
    assert latest_run(db, TARGET) == run and read_scores(db, TARGET).num_rows == run.n_objects
    assert read_runs(db, TARGET).num_rows == 1
    for name in (scores_table_name(TARGET), SCORE_RUNS):
        assert any(f"table {name!r} was half-created" in r.getMessage() for r in caplog.records), caplog.text
