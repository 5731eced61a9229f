"""More like these, unlike those: which query from several examples finds most of their class?

On an ingested table with a labels CSV, each trial draws ``--n-positives`` objects of the class, then plays a
user's two rounds:

1. the neighbours of the positives (one positive alone, or the mean of the unit positives) -> precision@k;
2. round 1's hits join the positives and its misses become the negatives; each method answers again, every
   object already seen (examples and round 1's answers) excluded -> precision@k of new objects, for:

   * ``mean``: the mean of the positives (the negatives unused);
   * ``rocchio w``: ``ssald_index.examples.example_query`` (mean of positives minus w x mean of negatives);
   * ``probe``: logistic regression of positives vs negatives + ``--background`` random objects (class
     weights balanced), scoring every object;
   * ``probe rerank``: the same probe re-ranking the 10k nearest candidates of the positives' mean.

Distances are exact cosine over the stored embeddings (no ANN index), so the figures compare the query
vectors alone. Usage (the figures in docs/BENCHMARKS.md; the table is the trained-encoder table that
``bench/real_discovery.py`` builds in ``WORKDIR/db``)::

    python bench/examples_query.py --db /tmp/rd/gz1/db --labels ../shared/data/real/gz1_sdss/labels.csv \\
        --label-column class_name --classes merger edge_on spiral_cw
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sklearn.linear_model import LogisticRegression  # noqa: E402

from ssald_index.examples import example_query  # noqa: E402
from ssald_index.store import ObjectStore  # noqa: E402

WEIGHTS = (0.1, 0.25, 0.5, 1.0)


def load(db: Path, labels: Path, objid_column: str, label_column: str) -> tuple[np.ndarray, np.ndarray]:
    """Unit embeddings and class names (``""`` when unlabelled) of every object, in table order."""
    table = ObjectStore.open(db).read(["objid", "embedding"])
    vectors = np.stack(table.column("embedding").to_numpy(zero_copy_only=False)).astype(np.float64)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with open(labels, newline="") as fh:
        by_objid = {int(row[objid_column]): row[label_column] for row in csv.DictReader(fh)}
    classes = np.array([by_objid.get(int(o), "") for o in table.column("objid").to_pylist()])
    return vectors, classes


def top(scores: np.ndarray, excluded: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores outside ``excluded`` (stable order)."""
    scores = scores.copy()
    scores[excluded] = -np.inf
    return np.argsort(-scores, kind="stable")[:k]


def trial(
    vectors: np.ndarray, is_class: np.ndarray, rng: np.random.Generator, n_pos: int, k: int, background: int
) -> dict[str, float]:
    """Precision@k of each method for one random draw of positives."""
    members = np.flatnonzero(is_class)
    pos = rng.choice(members, size=n_pos, replace=False)
    out: dict[str, float] = {}
    excluded = np.zeros(len(vectors), dtype=bool)
    excluded[pos] = True
    out["1: one positive"] = is_class[top(vectors @ vectors[pos[0]], excluded, k)].mean()
    first = top(vectors @ example_query(vectors[pos]), excluded, k)
    out["1: mean of positives"] = is_class[first].mean()
    # Round 2, as a user would: round 1's hits join the positives, its misses become the negatives, and
    # nothing already seen is counted again.
    pos = np.concatenate([pos, first[is_class[first]]])
    neg = first[~is_class[first]]
    excluded[first] = True
    mean_scores = vectors @ example_query(vectors[pos])
    out["2: mean of positives"] = is_class[top(mean_scores, excluded, k)].mean()
    for w in WEIGHTS:
        if len(neg):
            query = example_query(vectors[pos], vectors[neg], negative_weight=w)
            out[f"2: rocchio w={w:g}"] = is_class[top(vectors @ query, excluded, k)].mean()
        else:
            out[f"2: rocchio w={w:g}"] = out["2: mean of positives"]
    back = rng.choice(np.flatnonzero(~excluded), size=background, replace=False)
    x = np.concatenate([vectors[pos], vectors[neg], vectors[back]])
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg) + background)]
    probe = LogisticRegression(class_weight="balanced", max_iter=1000).fit(x, y)
    probe_scores = probe.decision_function(vectors)
    out["2: probe (all objects)"] = is_class[top(probe_scores, excluded, k)].mean()
    candidates = top(mean_scores, excluded, 10 * k)
    reranked = candidates[np.argsort(-probe_scores[candidates], kind="stable")[:k]]
    out["2: probe rerank of 10k mean"] = is_class[reranked].mean()
    out["n negatives"] = float(len(neg))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", type=Path, required=True, help="database with the objects table")
    parser.add_argument("--labels", type=Path, required=True, help="CSV with an objid and a class column")
    parser.add_argument("--objid-column", default="objid")
    parser.add_argument("--label-column", default="class_name")
    parser.add_argument("--classes", nargs="+", required=True, help="classes to measure, one table row each")
    parser.add_argument("--n-positives", type=int, default=3)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--background", type=int, default=200, help="random objects the probe takes as negatives")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    vectors, classes = load(args.db, args.labels, args.objid_column, args.label_column)
    print(
        f"{len(vectors)} objects, D={vectors.shape[1]}, {args.trials} trials of {args.n_positives} positives, "
        f"k={args.k}"
    )
    for name in args.classes:
        is_class = classes == name
        rng = np.random.default_rng(args.seed)
        results = [trial(vectors, is_class, rng, args.n_positives, args.k, args.background) for _ in range(args.trials)]
        print(f"\n{name}: {is_class.sum()} objects, prevalence {is_class.mean():.3f}")
        for key in results[0]:
            values = np.array([r[key] for r in results])
            print(f"  {key:32s} {values.mean():.3f} +- {values.std(ddof=1) / np.sqrt(len(values)):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
