"""Do labels improve similarity? Precision@10 of a target class in the raw embedding and in the metrics
learned from 0, 50 and 200 labels (issue 13; ``ssald_index.metric``).

Labelling is simulated from the ground truth. ``--sampling balanced`` (default) draws half of the budget
from the class (at most half of the class, so queries remain) and the rest from the other objects, as a
person shown candidates (active learning, ``ssald label``) ends up labelling; ``--sampling random`` draws the
budget uniformly from all objects, which for a rare class gives few positives (a metric needs at least 2 of
each class; the row shows ``n/a`` when it has fewer).
Queries are the class's objects that were not labelled; each query's 10 nearest neighbours are searched
among all objects (itself excluded), exactly: cosine in the raw embedding, Euclidean in a learned space.
Every figure is the mean over ``--repeats`` draws (± their standard deviation).

Inputs: an (N, D) embeddings ``.npy`` and labels in the same row order (a ``.npy`` of class names or 0/1,
or a CSV whose ``--column`` holds them), or a database's ``objects`` table (``--db``; labels from the
``--column`` column, ``truth_class`` by default)::

    python bench/metric_labels.py --embeddings emb.npy --labels labels.csv --column is_merger --target 1
    python bench/metric_labels.py --db /tmp/ml/db --target merger
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ssald_index.metric import METRIC_KINDS, MIN_PER_CLASS, fit_metric  # noqa: E402


def load(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    """(x, y): embeddings and 0/1 membership of the target class."""
    if args.db:
        from ssald_index.store import ObjectStore, embedding_matrix

        column = args.column or "truth_class"
        table = ObjectStore.open(args.db).read(["embedding", column])
        x, values = embedding_matrix(table), np.asarray(table.column(column).to_pylist(), dtype=object)
    else:
        x = np.load(args.embeddings)
        if str(args.labels).endswith(".csv"):
            with open(args.labels, newline="") as f:
                reader = csv.DictReader(f)
                if args.column not in (reader.fieldnames or []):
                    raise SystemExit(f"--column {args.column!r} is not a column of {args.labels}: {reader.fieldnames}")
                values = np.array([row[args.column] for row in reader], dtype=object)
        else:
            values = np.load(args.labels, allow_pickle=True)
    if len(values) != len(x):
        raise SystemExit(f"{len(values)} labels for {len(x)} embeddings: they must be in the same row order")
    y = np.array([str(v) == str(args.target) for v in values], dtype=np.int64)
    if y.sum() < 2:
        raise SystemExit(f"target {args.target!r} matches {int(y.sum())} rows; check --target and --column")
    return np.asarray(x, dtype=np.float32), y


def draw(y: np.ndarray, budget: int, sampling: str, rng: np.random.Generator) -> np.ndarray:
    """Rows labelled with ``budget`` labels (see the module docstring for the two samplings)."""
    if budget == 0:
        return np.zeros(0, np.int64)
    if sampling == "random":
        return rng.choice(len(y), budget, replace=False)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    n_pos = min(budget // 2, len(pos) // 2)  # at most half of the class: the rest are the queries
    return np.concatenate([rng.choice(pos, n_pos, replace=False), rng.choice(neg, budget - n_pos, replace=False)])


def precision_at_10(z: np.ndarray, y: np.ndarray, queries: np.ndarray, cosine: bool, chunk: int = 256) -> float:
    """Mean fraction of the class among each query's 10 nearest rows (itself excluded)."""
    z = np.asarray(z, dtype=np.float32)
    if cosine:
        z = z / np.linalg.norm(z, axis=1, keepdims=True)
    sq = np.einsum("ij,ij->i", z, z)
    hits = []
    for lo in range(0, len(queries), chunk):
        q = queries[lo : lo + chunk]
        d = sq[None, :] - 2.0 * (z[q] @ z.T)
        d[np.arange(len(q)), q] = np.inf
        nearest = np.argpartition(d, 10, axis=1)[:, :10]
        hits.append(y[nearest].mean(axis=1))
    return float(np.concatenate(hits).mean())


def run(args: argparse.Namespace) -> None:
    x, y = load(args)
    kinds = args.kinds.split(",")
    print(
        f"{len(x)} objects, D={x.shape[1]}, target {args.target!r}: {int(y.sum())} ({y.mean():.2%}); "
        f"sampling {args.sampling}, {args.repeats} repeats, precision@10 over the unlabelled class members"
    )
    print(f"{'labels':>6}  {'pos':>4}  {'neg':>4}  {'raw':>11}  " + "  ".join(f"{k:>11}" for k in kinds))
    for budget in args.budgets:
        results: dict[str, list[float]] = {name: [] for name in ["raw", *kinds]}
        counts, t0 = [], time.perf_counter()
        for r in range(args.repeats):
            rng = np.random.default_rng(args.seed + r)
            rows = draw(y, budget, args.sampling, rng)
            queries = np.setdiff1d(np.flatnonzero(y == 1), rows)
            if args.max_queries and len(queries) > args.max_queries:
                queries = rng.choice(queries, args.max_queries, replace=False)
            n_pos = int(y[rows].sum())
            counts.append((n_pos, len(rows) - n_pos))
            results["raw"].append(precision_at_10(x, y, queries, cosine=True))
            for kind in kinds:
                if min(n_pos, len(rows) - n_pos) < MIN_PER_CLASS:
                    continue
                z = fit_metric(x, rows, y[rows], kind=kind, seed=args.seed + r).transform(x)
                results[kind].append(precision_at_10(z, y, queries, cosine=False))
        cells = [f"{np.mean(v):.3f}±{np.std(v):.3f}" if v else f"{'n/a':>11}" for v in results.values()]
        pos, neg = np.mean(counts, axis=0)
        print(f"{budget:>6}  {pos:>4.0f}  {neg:>4.0f}  " + "  ".join(f"{c:>11}" for c in cells))
        print(f"        ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_argument_group("data (either --embeddings and --labels, or --db)")
    source.add_argument("--embeddings", type=Path, help="(N, D) .npy of embeddings")
    source.add_argument("--labels", type=Path, help=".npy of N labels, or a CSV with N rows in the same order")
    source.add_argument("--db", type=Path, help="a database whose objects table holds embeddings and labels")
    source.add_argument("--column", default=None, help="CSV or table column holding the labels")
    parser.add_argument("--target", required=True, help="the class (a label value, e.g. merger, or 1)")
    parser.add_argument(
        "--budgets",
        type=lambda s: [int(v) for v in s.split(",")],
        default=[0, 50, 200],
        help="labels given, comma-separated (default: 0,50,200)",
    )
    parser.add_argument("--sampling", choices=("balanced", "random"), default="balanced", help="how labels are drawn")
    parser.add_argument("--kinds", default=",".join(METRIC_KINDS), help="metric kinds, comma-separated")
    parser.add_argument("--repeats", type=int, default=3, help="label draws per budget (default: %(default)s)")
    parser.add_argument("--max-queries", type=int, default=500, help="queries per draw at most (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not args.db and not (args.embeddings and args.labels):
        parser.error("give --embeddings and --labels, or --db")
    if not args.db and str(args.labels).endswith(".csv") and not args.column:
        parser.error("a CSV of labels needs --column")
    run(args)


if __name__ == "__main__":
    main()
