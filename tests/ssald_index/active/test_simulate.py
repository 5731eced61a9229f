"""ssald_index.active.simulate: the simulated labelling loop, its random baseline and ``ssald al simulate``."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest

from ssald_index.active.simulate import random_labels_for_recall, simulate_strategy
from tests.ssald_index.active.test_strategies import clustered


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
