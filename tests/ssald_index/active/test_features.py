"""Classifier features: embedding, morphology or both, in the simulated loop, stored retrains and the server."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest

from ssald_index.active.classify import feature_matrix
from ssald_index.schema import MORPHOLOGY_FEATURES, objects_schema
from ssald_index.store import ObjectStore


def test_feature_matrix_imputes_medians_and_standardises():
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    m = np.array([[1.0, np.nan], [2.0, 5.0], [3.0, 7.0], [np.nan, 9.0], [5.0, np.nan]])
    out = feature_matrix(x, m, "embedding+morphology")
    assert out.shape == (5, 5) and np.isfinite(out).all()
    assert np.allclose(out[:, :3], x)
    assert np.allclose(out[:, 3:].mean(axis=0), 0, atol=1e-6) and np.allclose(out[:, 3:].std(axis=0), 1, atol=1e-6)
    assert out[3, 3] == pytest.approx(out[1, 3] + (out[2, 3] - out[1, 3]) / 2)  # median 2.5 sits between 2 and 3
    assert feature_matrix(x, m, "embedding") is x
    assert feature_matrix(x, m, "morphology").shape == (5, 2)
    with pytest.raises(ValueError, match="morph_"):
        feature_matrix(x, np.full((5, 2), np.nan), "morphology")
    with pytest.raises(ValueError, match="features must be one of"):
        feature_matrix(x, m, "pixels")


def _table(tmp_path, n=600, n_rare=15, seed=0):
    """Embeddings that say nothing about the rare class; its asymmetry and second peak do (with some nulls)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    truth = np.zeros(n, bool)
    truth[rng.choice(n, n_rare, replace=False)] = True
    schema = objects_schema(8)
    cols = {f.name: pa.nulls(n, f.type) for f in schema if f.name != "embedding"}
    cols["objid"] = pa.array(np.arange(n) + 10_000, pa.int64())
    cols["truth_class"] = pa.array(np.where(truth, "merger", "spiral"))
    cols["model_id"] = pa.array(["m"] * n)
    cols["ingested_at"] = pa.array([datetime.now(UTC)] * n, pa.timestamp("us", tz="UTC"))
    for name in MORPHOLOGY_FEATURES:
        cols[name] = pa.array(rng.normal(size=n).astype(np.float32))
    asym = np.where(truth, rng.normal(0.6, 0.05, n), rng.normal(0.1, 0.05, n)).astype(np.float32)
    cols["morph_asymmetry"] = pa.array([None if i % 50 == 1 else float(v) for i, v in enumerate(asym)], pa.float32())
    cols["embedding"] = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), 8)
    ObjectStore.write(tmp_path / "db", pa.table(cols).cast(schema)).finalize()
    return tmp_path / "db", truth


def _recall_at(csv_path, strategy, labels):
    rows = [line.split(",") for line in csv_path.read_text().splitlines()[1:]]
    return max([float(r) for s, n, r in rows if s == strategy and int(n) <= labels], default=0.0)


def test_al_simulate_with_morphology_features_finds_what_the_embedding_cannot(tmp_path, capsys):
    from clients.cli import main

    db, truth = _table(tmp_path)
    recall = {}
    for features in ("embedding", "embedding+morphology"):
        out = tmp_path / features.replace("+", "_")
        args = ["al", "simulate", "--db", str(db), "--label", "merger", "--strategies", "top", "--max-labels", "60"]
        assert main([*args, "--budget", "60", "--features", features, "--out", str(out)]) == 0
        assert f"classifier features: {features}" in capsys.readouterr().out
        recall[features] = _recall_at(out.with_suffix(".csv"), "top", 60)
    assert recall["embedding+morphology"] >= 0.9 > 0.5 > recall["embedding"]


def test_retrain_stores_the_features_and_candidates_keep_them(tmp_path):
    from ssald_index.active import scores
    from ssald_index.active.candidates import ensure_scores
    from ssald_index.active.labels import Label, add_labels

    db, truth = _table(tmp_path)
    objids = np.arange(len(truth)) + 10_000
    rows = [*np.flatnonzero(truth)[:5], *np.flatnonzero(~truth)[:30]]
    add_labels(db, [Label(int(objids[i]), "merger" if truth[i] else "not_merger") for i in rows])
    run = scores.retrain(db, "merger", features="morphology", cv=False)
    assert run.features == "morphology" and scores.latest_run(db, "merger").features == "morphology"
    top = scores.top_candidates(db, "merger", int(truth.sum()))
    found = np.isin([r["objid"] for r in top], objids[truth]).mean()
    assert found > 0.8
    add_labels(db, [Label(int(objids[np.flatnonzero(~truth)[40]]), "not_merger")])  # stale: a retrain is due
    again, _ = ensure_scores(db, "merger")
    assert again.features == "morphology"


def test_server_retrains_with_its_al_features(tmp_path):
    from clients import SsaldClient
    from ssald_index.active import scores
    from tests.server.helpers import running_server

    db, truth = _table(tmp_path)
    objids = np.arange(len(truth)) + 10_000
    chosen = [*np.flatnonzero(truth)[:6], *np.flatnonzero(~truth)[:40]]
    labels = [(int(objids[i]), "merger" if truth[i] else "not_merger") for i in chosen]
    with running_server(db, al_features="embedding+morphology") as address, SsaldClient(address, timeout=60) as c:
        c.submit_labels(labels, retrain=True)
        nxt = c.next_to_label("merger", n=5, strategy="top")
    assert scores.latest_run(db, "merger").features == "embedding+morphology"
    assert np.isin([item.objid for item in nxt.items], objids[truth]).mean() >= 0.6
