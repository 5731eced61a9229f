"""Anomaly scoring: the batched IVF-partition scan against the Lance ANN scorer and the exact scan, same table.

Usage (figures in docs/BENCHMARKS.md)::

    python bench/bench_density.py --n 1000000 --workdir /tmp/density1m

Writes ``--n`` synthetic clustered unit vectors (``bench/knn_data.py``) as an ``objects`` table, brings its
indexes up as an ingest does (:func:`ssald_index.ann.refresh_indexes`), then times, on that table, the
scorer an ingest now runs (:func:`ssald_index.density.partition_knn_scores`, every row) and the one it ran
before (:func:`ssald_index.density.knn_scores` through Lance's ANN search, on ``--old-sample`` rows: at 1M
rows it would take a quarter of an hour), and checks both against the exact ``k``-th neighbour distance of
``--exact-sample`` rows (a full scan per row). :func:`compare_scorers` is also run by
``bench/bench_ingest.py --compare-scorers`` on the table an ingest wrote. Prints a table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.knn_data import clustered_vectors, objects_batches  # noqa: E402

__all__ = ["compare_scorers", "exact_kth", "main"]


def exact_kth(dataset: Any, queries: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
    """Exact cosine distance from each unit query to its ``k``-th nearest table row other than itself."""
    from ssald_index.schema import embedding_matrix, unit_rows

    best = np.full((len(queries), k), -np.inf, np.float64)
    for batch in dataset.to_batches(columns=["objid", "embedding"], batch_size=65_536):
        sim = queries.astype(np.float64) @ unit_rows(embedding_matrix(batch)).astype(np.float64).T
        sim[ids[:, None] == batch.column("objid").to_numpy()[None, :]] = -np.inf
        both = np.concatenate([best, sim], axis=1)
        best = -np.partition(-both, k - 1, axis=1)[:, :k]
    return 1.0 - best.min(axis=1)


def _agreement(got: np.ndarray, exact: np.ndarray) -> dict[str, float]:
    from scipy.stats import spearmanr

    top = max(1, len(exact) // 100)
    overlap = len(set(np.argsort(-exact)[:top]) & set(np.argsort(-got)[:top])) / top
    return {
        "kth_recall": float(np.mean(np.abs(got - exact) <= 1e-4)),
        "median_excess": float(np.median(got - exact)),
        "spearman": float(spearmanr(got, exact).statistic),
        "top1pct_overlap": overlap,
    }


def compare_scorers(db: Path, k: int = 10, old_sample: int = 5000, exact_sample: int = 2000, seed: int = 0) -> dict:
    """Score every row of the ``objects`` table at ``db`` with the partition scan (nothing is written), a
    sample with the Lance ANN scorer, and a sample exactly; rates in objects/s and agreement with exact."""
    from ssald_index.density import knn_scores, partition_knn_scores
    from ssald_index.schema import embedding_matrix, unit_rows
    from ssald_index.store import ObjectStore

    store = ObjectStore.open(db)
    dataset = store.table.to_lance()
    n = dataset.count_rows()
    start = time.perf_counter()
    objids, scores = partition_knn_scores(store, k=k, progress=False)
    new_s = time.perf_counter() - start
    new_by_id = dict(zip(objids.tolist(), scores.tolist()))
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, size=min(max(old_sample, exact_sample), n), replace=False))
    sample = dataset.take(rows, columns=["objid", "embedding"])
    ids, vec = sample.column("objid").to_numpy(), unit_rows(embedding_matrix(sample))
    old_n = min(old_sample, len(ids))
    start = time.perf_counter()
    old = knn_scores(store, vec[:old_n], ids[:old_n], k=k)
    old_s = time.perf_counter() - start
    m = min(exact_sample, len(ids))
    start = time.perf_counter()
    exact = exact_kth(dataset, vec[:m], ids[:m], k)
    exact_s = time.perf_counter() - start
    new_sample = np.array([new_by_id[o] for o in ids[:m].tolist()])
    both = min(m, old_n)
    return {
        "rows": n,
        "new_rate": n / new_s,
        "new_s": new_s,
        "old_rate": old_n / old_s,
        "old_rows": old_n,
        "exact_rate": m / exact_s,
        "exact_rows": m,
        "new_vs_exact": _agreement(new_sample, exact),
        "old_vs_exact": _agreement(old[:both].astype(np.float64), exact[:both]),
        "compared_rows": both,
    }


def report(result: dict) -> list[tuple[str, str]]:
    """Rows of the printed table."""
    new, old = result["new_vs_exact"], result["old_vs_exact"]
    return [
        ("rows scored by the partition scan (new)", f"{result['rows']} in {result['new_s']:.1f} s"),
        (
            "scoring rate: new / old (Lance ANN) / exact scan",
            (
                f"{result['new_rate']:.0f} / {result['old_rate']:.0f} ({result['old_rows']} rows)"
                f" / {result['exact_rate']:.0f} ({result['exact_rows']} rows) objects/s"
            ),
        ),
        ("k-th neighbour recall, new / old", f"{new['kth_recall']:.3f} / {old['kth_recall']:.3f}"),
        ("median excess over exact, new / old", f"{new['median_excess']:.2e} / {old['median_excess']:.2e}"),
        ("Spearman with exact, new / old", f"{new['spearman']:.4f} / {old['spearman']:.4f}"),
        (
            f"top-1% overlap with exact (of {result['compared_rows']} sampled rows), new / old",
            f"{new['top1pct_overlap']:.2f} / {old['top1pct_overlap']:.2f}",
        ),
    ]


def print_table(rows: list[tuple[str, str]]) -> None:
    """Print ``(measure, value)`` rows as a two-column table."""
    width = max(len(key) for key, _ in rows)
    print(f"\n{'measure':<{width}} | value\n{'-' * width}-|------")
    for key, value in rows:
        print(f"{key:<{width}} | {value}")


def main(argv: list[str] | None = None) -> int:
    """Build the table (cached in ``--workdir``), compare the scorers, print the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1_000_000, help="rows (default 1000000)")
    p.add_argument("--dim", type=int, default=256, help="embedding dimension (default 256, the demo encoder's)")
    p.add_argument("--clusters", type=int, default=2000, help="clusters of the synthetic vectors")
    p.add_argument("--k", type=int, default=10, help="which neighbour (default 10, the ingest's)")
    p.add_argument("--old-sample", type=int, default=5000, help="rows scored by the Lance ANN scorer")
    p.add_argument("--exact-sample", type=int, default=2000, help="rows scored exactly")
    p.add_argument("--workdir", type=Path, required=True, help="vectors and table, re-used by a re-run")
    args = p.parse_args(argv)

    from ssald_index.ann import refresh_indexes
    from ssald_index.schema import OBJECTS, objects_schema
    from ssald_index.store import connect

    args.workdir.mkdir(parents=True, exist_ok=True)
    vectors, _ = clustered_vectors(args.workdir, args.n, args.dim, args.clusters, 1)
    db = args.workdir / "db"
    if not (args.workdir / "table.done").exists():
        conn = connect(db)
        if OBJECTS in conn.list_tables().tables:
            conn.drop_table(OBJECTS)
        start = time.perf_counter()
        table = conn.create_table(OBJECTS, data=objects_batches(vectors), schema=objects_schema(args.dim))
        refresh_indexes(table)
        print(f"table of {args.n} rows written and indexed in {time.perf_counter() - start:.0f} s", flush=True)
        (args.workdir / "table.done").touch()
    result = compare_scorers(db, args.k, args.old_sample, args.exact_sample)
    print_table(report(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
