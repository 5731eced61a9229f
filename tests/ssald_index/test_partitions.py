"""The int8 first pass of the partition scan ranks rows like the float32 product it replaces."""

from __future__ import annotations

import numpy as np

from ssald_index.partitions import Int8Rows, Partitions


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_codes_use_each_dimensions_full_range() -> None:
    rng = np.random.default_rng(0)
    x = _unit(rng.standard_normal((5_000, 32)) * np.linspace(0.1, 3.0, 32))  # dimensions of unequal spread
    rows = Int8Rows(x, chunk=777)  # several chunks
    assert rows.codes.dtype == np.int8 and rows.codes.shape == x.shape
    assert (np.abs(rows.codes).max(axis=0) == 127).all()
    np.testing.assert_allclose(rows.codes / rows.scale, x, atol=0.5 / rows.scale.min() + 1e-6)
    assert not rows.query(np.zeros(32, np.float32)).any()


def test_int8_scores_rank_the_scanned_rows_like_float_scores() -> None:
    rng = np.random.default_rng(1)
    centres = _unit(rng.standard_normal((20, 64)))
    x = _unit(centres[rng.integers(0, 20, 20_000)] + 0.3 * rng.standard_normal((20_000, 64)))
    parts = Partitions(centres)
    parts.group(parts.assign(x))
    grouped = np.empty_like(x)
    grouped[parts.slot] = x
    rows = Int8Rows(grouped)
    found = 0
    for q in _unit(x[:50] + 0.05 * rng.standard_normal((50, 64))):
        probe = parts.nearest(q, 4)
        exact = parts.score(grouped, q, probe)
        coded = parts.score_codes(rows, q, probe)
        assert coded.shape == exact.shape
        assert np.corrcoef(exact, coded)[0, 1] > 0.999
        top10 = set(np.argsort(-exact)[:10])
        found += len(top10 & set(np.argpartition(-coded, 40)[:40]))
    assert found == 500  # the exact top 10 always among the int8 top 40 (the served re-rank of k=10)
