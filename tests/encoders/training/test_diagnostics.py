"""Quality scores against direct, loop-by-loop references on cases whose answer is known."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from encoders.training.diagnostics import (
    correlation_excess,
    embedding_std,
    knn_accuracy,
    quality_report,
    rankme,
    two_point_score,
)

REPO = Path(__file__).resolve().parents[3]


def _orthonormal(n: int, k: int, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, k)))
    return q


def test_rankme_matches_the_entropy_of_the_eigenvalues() -> None:
    u, v = _orthonormal(50, 4, 0), _orthonormal(8, 4, 1)
    singular = np.array([4.0, 2.0, 1.0, 1.0])
    z = u @ np.diag(singular) @ v.T
    # Independent path: singular values as square roots of the eigenvalues of z^T z.
    sv = np.sqrt(np.clip(np.linalg.eigvalsh(z.T @ z), 0, None))
    p = sv / sv.sum() + 1e-7
    expected = np.exp(-sum(pi * np.log(pi) for pi in p))
    assert rankme(z) == pytest.approx(expected, rel=1e-6)
    assert rankme(z) == pytest.approx(np.exp(-sum(s / 8 * np.log(s / 8) for s in singular)), rel=1e-5)
    equal = _orthonormal(40, 5, 2) @ (3.0 * _orthonormal(16, 5, 3).T)  # five equal singular values
    assert rankme(equal) == pytest.approx(5.0, rel=1e-4)
    assert rankme(np.outer(np.arange(1, 11), np.ones(6))) == pytest.approx(1.0, rel=1e-4)  # rank one


def test_embedding_std_detects_collapse() -> None:
    rng = np.random.default_rng(0)
    sphere = rng.normal(size=(5000, 16))
    np.testing.assert_allclose(embedding_std(sphere), 1.0, atol=0.05)
    collapsed = sphere.copy()
    collapsed[:, 3] = 0.0
    std = embedding_std(collapsed)
    assert std[3] == 0.0 and std[0] > 0.9
    assert embedding_std(np.ones((10, 4))).max() == 0.0
    with pytest.raises(ValueError, match=r"shape \(N, D\)"):
        embedding_std(np.ones(4))


def test_correlation_excess_matches_brute_force_pair_counts() -> None:
    rng = np.random.default_rng(1)
    data, rand = rng.normal(size=(30, 3)) * 0.5, rng.normal(size=(45, 3))
    radii = np.array([0.3, 0.8, 1.5])

    def pairs_within(x: np.ndarray, r: float) -> int:
        return sum(np.linalg.norm(x[i] - x[j]) <= r for i in range(len(x)) for j in range(i + 1, len(x)))

    for r, got in zip(radii, correlation_excess(data, rand, radii)):
        dd, rr = 2 * pairs_within(data, r) / 30, 2 * pairs_within(rand, r) / 45
        assert got == pytest.approx((45 / 30) * dd / rr - 1)


def test_two_point_score_is_zero_for_a_gaussian_and_large_for_clusters() -> None:
    rng = np.random.default_rng(0)
    gauss = two_point_score(rng.normal(size=(800, 16)) @ rng.normal(size=(16, 16)))
    assert abs(gauss["score"]) < max(3 * gauss["spread"], 1.0)
    centres = rng.normal(size=(8, 16)) * 3
    clusters = np.concatenate([c + rng.normal(size=(100, 16)) * 0.3 for c in centres])
    clustered = two_point_score(clusters)
    assert clustered["score"] > 20 and clustered["spread"] < clustered["score"] / 5
    assert len(clustered["r"]) == len(clustered["eps"]) == 10
    assert two_point_score(clusters * 7.0)["score"] == pytest.approx(clustered["score"])  # scale-free


def test_knn_accuracy_matches_a_direct_vote() -> None:
    rng = np.random.default_rng(3)
    z = rng.normal(size=(60, 5))
    labels = np.where(z[:, 0] > 0, "a", "b")
    labels[:6] = "c"
    unit = z / np.linalg.norm(z, axis=1, keepdims=True)
    correct = 0
    for i in range(len(z)):
        dist = 1 - unit @ unit[i]
        dist[i] = np.inf
        nearest = np.argsort(dist, kind="stable")[:5]
        votes = {c: list(labels[nearest]).count(c) for c in set(labels[nearest])}
        best = max(votes.values())
        winners = [c for c in votes if votes[c] == best]
        vote = labels[nearest[0]] if labels[nearest[0]] in winners else sorted(winners)[0]
        correct += vote == labels[i]
    assert knn_accuracy(z, labels, k=5) == pytest.approx(correct / len(z))
    with pytest.raises(ValueError, match="3 labels for 60 embeddings"):
        knn_accuracy(z, labels[:3])


def test_quality_report_keys_and_label_scores() -> None:
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(size=(50, 8)) + 4 * np.eye(8)[i] for i in range(3)])
    labels = np.repeat(["x", "y", "z"], 50)
    report = quality_report(z, labels)
    assert {"n", "dim", "std_mean", "std_min", "collapsed_frac", "rankme", "tpcf", "tpcf_spread"} <= set(report)
    assert report["knn_acc"] > 0.9 and report["davies_bouldin"] < 2
    assert "knn_acc" not in quality_report(z)
    shuffled = quality_report(z, rng.permutation(labels))
    assert shuffled["knn_acc"] < 0.6 and shuffled["davies_bouldin"] > report["davies_bouldin"]


def test_diagnostics_do_not_import_torch() -> None:
    code = "import encoders.training.diagnostics, sys; assert 'torch' not in sys.modules"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
