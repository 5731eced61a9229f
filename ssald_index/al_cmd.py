"""``ssald al simulate``: the active-learning loop against an oracle that answers from ground truth."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parsers", "load_for_simulation"]

DEFAULT_STRATEGIES = "random,top,uncertainty,margin,entropy,committee,diversity,anomaly,gp_ei"


def load_for_simulation(db: Path, truth_column: str, positive: str, progress: bool = True, features: str = "embedding"):
    """Embeddings, oracle answers and anomaly scores of every object in the table at ``db``, and the classifier's
    input for ``features`` (:func:`ssald_index.active.classify.feature_matrix`).

    Anomaly scores come from the stored ``density_score`` column when every object has one, else they are
    computed now (cosine distance to the 10th neighbour).
    """
    import numpy as np

    from ssald_index.active.classify import check_features, feature_matrix
    from ssald_index.density import knn_scores
    from ssald_index.schema import MORPHOLOGY_FEATURES, morphology_matrix
    from ssald_index.store import ObjectStore, embedding_matrix

    store = ObjectStore.open(db)
    names = store.table.schema.names
    if truth_column not in names:
        raise ValueError(f"table {db} has no column {truth_column!r} to answer from (columns: {', '.join(names)})")
    features = check_features(features)
    morphology = [c for c in MORPHOLOGY_FEATURES if c in names] if features != "embedding" else []
    table = store.read(["objid", "embedding", truth_column, "density_score", *morphology])
    x = embedding_matrix(table)
    truth = np.array([v == positive for v in table.column(truth_column).to_pylist()])
    objids = table.column("objid").to_numpy()
    density = table.column("density_score").to_numpy(zero_copy_only=False)
    if density.dtype.kind != "f" or np.isnan(density.astype(float)).any():
        density = knn_scores(store, x, objids, k=10, progress=progress)
    inputs = feature_matrix(x, morphology_matrix(table) if morphology else None, features)
    return x, truth, np.asarray(density, dtype=np.float32), inputs


def _simulate(args: argparse.Namespace) -> int:
    from ssald_index.active.simulate import simulate, write_report
    from ssald_index.active.strategies import STRATEGIES

    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise ValueError(f"unknown strategies {', '.join(unknown)}; choose from {', '.join(STRATEGIES)}")
    x, truth, anomaly, inputs = load_for_simulation(args.db, args.truth_column, args.label, features=args.features)
    n_targets = int(truth.sum())
    if n_targets == 0:
        raise ValueError(f"no object has {args.truth_column} == {args.label!r}: the oracle has nothing to find")
    print(
        f"{len(x)} objects, {n_targets} {args.label} ({n_targets / len(x):.2%}); cold start: {args.cold_start}; "
        f"classifier features: {args.features}"
    )
    curves = simulate(
        x, truth, strategies, max_labels=args.max_labels, batch=args.batch, cold_start=args.cold_start,
        anomaly=anomaly, classifier=args.classifier, stop_at_recall=args.stop_at, seed=args.seed,
        features=None if args.features == "embedding" else inputs,
    )  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table = write_report(curves, len(x), n_targets, args.out, args.label, budget=args.budget)
    print(table)
    print(f"wrote {args.out}.csv and {args.out}.png")
    return 0


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``al`` command group (``al simulate``)."""
    al = subparsers.add_parser("al", help="active learning (simulate the loop with a ground-truth oracle)")
    sub = al.add_subparsers(dest="al_command", required=True, metavar="ACTION")
    p = sub.add_parser("simulate", help="run every strategy against an oracle; write recall-vs-labels table and PNG")
    p.add_argument("--db", type=Path, required=True, help="LanceDB database with the objects table")
    p.add_argument("--label", default="dual_nucleus", help="target class (default dual_nucleus)")
    p.add_argument("--truth-column", default="truth_class", help="column the oracle answers from (default truth_class)")
    p.add_argument("--strategies", default=DEFAULT_STRATEGIES, help=f"comma-separated (default {DEFAULT_STRATEGIES})")
    p.add_argument("--budget", type=int, default=200, help="labels at which recall is reported (default 200)")
    p.add_argument("--max-labels", type=int, default=400, help="stop each strategy after this many labels")
    p.add_argument("--stop-at", type=float, default=1.0, help="stop a strategy once this recall is reached")
    p.add_argument("--batch", type=int, default=10, help="labels per round (default 10)")
    p.add_argument("--cold-start", choices=("example", "anomalies"), default="example",
                   help="start from one known example and its neighbours, or from the top anomalies")  # fmt: skip
    p.add_argument("--classifier", choices=("logistic", "forest"), default="logistic")
    p.add_argument("--features", choices=("embedding", "morphology", "embedding+morphology"), default="embedding",
                   help="what the classifier sees: the embedding, the morph_* columns (standardised, NaN -> "
                   "median) or both (default embedding)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("al_simulation"), help="output prefix for .csv and .png")
    p.set_defaults(func=_simulate)
