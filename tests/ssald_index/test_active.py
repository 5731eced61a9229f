from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest

from ssald_index.al_simulate import random_labels_for_recall, simulate_strategy
from ssald_index.classify import fit_and_score
from ssald_index.labels import Label, add_labels, latest_labels, negative_of, read_labels, training_set
from ssald_index.strategies import STRATEGIES, Pool, cold_start_from_example, reduce_for_gp, select


def clustered(n: int = 1500, n_rare: int = 15, dim: int = 16, seed: int = 0):
    """Unit vectors in 5 broad clusters plus one tight rare cluster (the 'dual nuclei')."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(6, dim))
    which = np.r_[rng.integers(0, 5, n - n_rare), np.full(n_rare, 5)]
    spread = np.where(which == 5, 0.25, 1.0)[:, None]
    x = centres[which] + spread * rng.normal(size=(n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    perm = rng.permutation(n)
    return x[perm].astype(np.float32), (which == 5)[perm]


def test_labels_are_append_only_and_latest_wins(tmp_path):
    db = tmp_path / "db"
    assert read_labels(db).num_rows == 0
    add_labels(db, [Label(1, "dual_nucleus", "ann"), Label(2, negative_of("dual_nucleus"), "ann")])
    add_labels(db, [Label(1, "merger", "bob", "looks tidal")])
    assert read_labels(db).num_rows == 3  # nothing overwritten
    latest = latest_labels(db)
    assert latest == {1: "merger", 2: "not_dual_nucleus"}
    rows, y = training_set({**latest, 3: "dual_nucleus"}, "dual_nucleus", np.array([3, 9, 2, 1]))
    assert rows.tolist() == [0, 2, 3] and y.tolist() == [1, 0, 0]
    with pytest.raises(ValueError, match="non-empty string"):
        add_labels(db, [Label(5, "  ")])


def test_classifier_learns_and_refuses_one_class():
    x, truth = clustered()
    rows = np.r_[np.flatnonzero(truth)[:8], np.flatnonzero(~truth)[:60]]
    for kind in ("logistic", "forest"):
        result = fit_and_score(x, rows, truth[rows].astype(int), kind=kind, cv=True)
        assert result.calibrated and result.n_positive == 8
        unlabelled = np.setdiff1d(np.arange(len(x)), rows)
        best = unlabelled[np.argsort(-result.scores[unlabelled])[:7]]
        assert truth[best].all(), kind  # the 7 remaining rare objects rank first
        assert result.metrics["cv_roc_auc"] > 0.95
    with pytest.raises(ValueError, match="both positive and negative"):
        fit_and_score(x, rows[:3], np.ones(3, int))
    with pytest.raises(ValueError, match="classifier must be one of"):
        fit_and_score(x, rows, truth[rows].astype(int), kind="svm")


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_proposes_new_unique_rows(name):
    x, truth = clustered()
    labelled = cold_start_from_example(x, int(np.flatnonzero(truth)[0]), 20)
    y = truth[labelled].astype(np.int8)
    probs = fit_and_score(x, labelled, y).scores
    anomaly = 1.0 - np.sort(x @ x.T, axis=1)[:, -11]
    picked = select(name, Pool(x, labelled, y, probs=probs, anomaly=anomaly, seed=1), 10)
    assert len(picked) == 10 and len(set(picked.tolist())) == 10
    assert not np.isin(picked, labelled).any()


def test_gp_uses_the_reduced_space_it_is_given():
    x, truth = clustered()
    labelled = cold_start_from_example(x, int(np.flatnonzero(truth)[0]), 20)
    y = truth[labelled].astype(np.int8)
    reduced = reduce_for_gp(x)
    assert reduced.shape == (len(x), 16)
    fresh = select("gp_ei", Pool(x, labelled, y), 10)
    assert select("gp_ei", Pool(x, labelled, y, reduced=reduced), 10).tolist() == fresh.tolist()
    # it really is the given space that is searched: reversed rows in the reduced space change the picks
    assert select("gp_ei", Pool(x, labelled, y, reduced=reduced[::-1].copy()), 10).tolist() != fresh.tolist()


def test_strategy_semantics():
    x, truth = clustered()
    labelled = np.arange(10)
    probs = np.linspace(0, 1, len(x)).astype(np.float32)
    pool = Pool(x, labelled, truth[labelled].astype(np.int8), probs=probs)
    assert select("top", pool, 3).tolist() == [len(x) - 1, len(x) - 2, len(x) - 3]
    mid = select("uncertainty", pool, 2)
    assert np.all(np.abs(probs[mid] - 0.5) < 1e-3)
    assert set(select("margin", pool, 2)) == set(mid) == set(select("entropy", pool, 2))
    with pytest.raises(ValueError, match="needs anomaly scores"):
        select("anomaly", pool, 2)
    with pytest.raises(ValueError, match="needs classifier probabilities"):
        select("top", Pool(x, labelled, pool.y), 2)
    with pytest.raises(ValueError, match="unknown strategy"):
        select("oracle", pool, 2)
    first = cold_start_from_example(x, 5, 4)
    assert first[0] == 5 and np.all(x[first[1:]] @ x[5] >= np.sort(np.delete(x @ x[5], 5))[-3] - 1e-6)


def test_random_expectation_matches_monte_carlo():
    rng = np.random.default_rng(0)
    n, p, recall = 200, 9, 0.9
    need = []
    for _ in range(3000):
        hits = np.flatnonzero(rng.permutation(n) < p)  # positions (0-based) of the targets in a random order
        need.append(hits[int(np.ceil(recall * p)) - 1] + 1)
    assert random_labels_for_recall(n, p, recall) == pytest.approx(np.mean(need), rel=0.03)


def test_simulated_loop_finds_rare_cluster_far_faster_than_random():
    x, truth = clustered()
    curve = simulate_strategy(x, truth, "top", max_labels=200, batch=10)
    need = curve.labels_for(0.9)
    assert need is not None and need <= 60
    assert random_labels_for_recall(len(x), int(truth.sum()), 0.9) / need >= 5
    rand = simulate_strategy(x, truth, "random", max_labels=60, batch=10)
    assert rand.recall_at(60) < curve.recall_at(60)
    assert curve.labels == sorted(curve.labels) and curve.recall == sorted(curve.recall)


def test_al_simulate_command_on_a_real_table(tmp_path, capsys):
    from clients.cli import main
    from ssald_index.schema import objects_schema
    from ssald_index.store import ObjectStore

    x, truth = clustered(n=600, n_rare=12)
    schema = objects_schema(x.shape[1])
    n = len(x)
    cols = {f.name: pa.nulls(n, f.type) for f in schema if f.name != "embedding"}
    cols["objid"] = pa.array(np.arange(n) + 10_000, pa.int64())
    cols["truth_class"] = pa.array(np.where(truth, "dual_nucleus", "spiral"))
    cols["model_id"] = pa.array(["m"] * n)
    cols["ingested_at"] = pa.array([datetime.now(UTC)] * n, pa.timestamp("us", tz="UTC"))
    cols["embedding"] = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), x.shape[1])
    ObjectStore.write(tmp_path / "db", pa.table(cols).cast(schema)).finalize()
    out = tmp_path / "report" / "al"
    code = main(["al", "simulate", "--db", str(tmp_path / "db"), "--strategies", "random,top,anomaly",
                 "--max-labels", "100", "--budget", "100", "--out", str(out)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "| top |" in printed and "random (expected)" in printed
    assert (tmp_path / "report" / "al.png").stat().st_size > 5000
    lines = (tmp_path / "report" / "al.csv").read_text().splitlines()
    assert lines[0] == "strategy,labels,recall" and any(line.startswith("anomaly,") for line in lines)
