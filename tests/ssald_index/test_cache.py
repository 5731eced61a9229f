"""The served cache's row reader must give exactly what Arrow's ``to_pylist`` gives, nulls included."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from ssald_index.cache import RowReader

N = 300


def mixed_table() -> pa.Table:
    rng = np.random.default_rng(3)
    some_null = rng.random(N) < 0.3
    mag = rng.uniform(14, 22, N).astype(np.float32)
    return pa.table(
        {
            "objid": pa.array(np.arange(N, dtype=np.int64) + 1237640000000000000),
            "ra": pa.array(rng.uniform(0, 360, N)),
            "mag_r": pa.array(mag, mask=some_null),
            "cluster": pa.array(rng.integers(0, 5, N).astype(np.int32), mask=~some_null),
            "flag": pa.array(rng.random(N) < 0.5, mask=some_null),
            "spec_class": pa.array([None if m else c for m, c in zip(some_null, rng.choice(["GALAXY", "QSO"], N))]),
            "bpt_class": pa.nulls(N, pa.string()),
            # Unique per row: past the dictionary limit it stays an Arrow column.
            "source": pa.array([f"/data/stamps/{i}.fits" for i in range(N)]),
            "ns_time": pa.array([datetime(2026, 1, 1, tzinfo=UTC)] * N, pa.timestamp("ns", tz="UTC")),
            "ingested_at": pa.array(
                [None if m else datetime(2026, 11, 22, 12, i % 60, tzinfo=UTC) for i, m in enumerate(some_null)],
                pa.timestamp("us", tz="UTC"),
            ),
        }
    )


def test_rows_match_arrow(monkeypatch):
    import ssald_index.cache as cache

    monkeypatch.setattr(cache, "_MAX_DICTIONARY", 100)  # `source` (300 distinct) takes the Arrow path
    data = mixed_table()
    rows = RowReader(data)
    assert rows.kinds == {
        "objid": "numpy",
        "ra": "numpy",
        "mag_r": "numpy",
        "cluster": "numpy",
        "flag": "arrow",
        "spec_class": "dict",
        "bpt_class": "dict",
        "source": "arrow",
        "ns_time": "arrow",
        "ingested_at": "time",
    }
    positions = np.random.default_rng(0).choice(N, 40, replace=False)
    got = rows.take(positions)
    want = data.take(pa.array(positions)).to_pylist()
    # Arrays that start at an offset into their buffers (a slice) read the right values and nulls.
    sliced = data.slice(7, 200)
    some = np.random.default_rng(1).choice(200, 50, replace=False)
    assert RowReader(sliced).take(some) == sliced.take(pa.array(some)).to_pylist()
    assert got == want
    # Same types, not only equal values: float32 magnitudes as Python floats, UTC-aware datetimes.
    for g, w in zip(got, want):
        assert {k: type(v) for k, v in g.items()} == {k: type(v) for k, v in w.items()}
        if g["ingested_at"] is not None:
            assert g["ingested_at"].utcoffset().total_seconds() == 0
    assert rows.take(np.array([], dtype=np.int64)) == []
