"""``ssald al simulate``: the active-learning loop against an oracle that answers from ground truth.

The work is in :mod:`ssald_index.active.simulate`; only argparse and pathlib load at import time.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from clients.cli.args import add_classifier, add_db, add_features, add_label, add_out, add_seed

__all__ = ["DEFAULT_STRATEGIES", "HELP", "add_arguments", "run_simulate"]

HELP = "active learning (simulate the loop with a ground-truth oracle)"

#: Every strategy of :data:`ssald_index.active.strategies.STRATEGIES` (not imported: it needs scikit-learn).
DEFAULT_STRATEGIES = "random,top,uncertainty,margin,entropy,committee,diversity,anomaly,gp_ei"


def run_simulate(args: argparse.Namespace) -> int:
    """Handler of ``ssald al simulate``: print the recall table, write it as CSV and PNG."""
    from ssald_index.active.simulate import load_for_simulation, simulate, write_report
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The actions of ``ssald al``: ``simulate``, which runs :func:`run_simulate`."""
    sub = parser.add_subparsers(dest="al_command", required=True, metavar="ACTION")
    p = sub.add_parser("simulate", help="run every strategy against an oracle; write recall-vs-labels table and PNG")
    add_db(p, "LanceDB database with the objects table")
    add_label(p, "target class (default dual_nucleus)")
    p.add_argument("--truth-column", default="truth_class", help="column the oracle answers from (default truth_class)")
    p.add_argument("--strategies", default=DEFAULT_STRATEGIES, help=f"comma-separated (default {DEFAULT_STRATEGIES})")
    p.add_argument("--budget", type=int, default=200, help="labels at which recall is reported (default 200)")
    p.add_argument("--max-labels", type=int, default=400, help="stop each strategy after this many labels")
    p.add_argument("--stop-at", type=float, default=1.0, help="stop a strategy once this recall is reached")
    p.add_argument("--batch", type=int, default=10, help="labels per round (default 10)")
    p.add_argument("--cold-start", choices=("example", "anomalies"), default="example",
                   help="start from one known example and its neighbours, or from the top anomalies")  # fmt: skip
    add_classifier(p)
    add_features(
        p,
        "--features",
        help="what the classifier sees: the embedding, the morph_* columns (standardised, NaN -> median) or both "
        "(default embedding)",
    )
    add_seed(p)
    add_out(p, "output prefix for .csv and .png", default=Path("al_simulation"))
    p.set_defaults(func=run_simulate)
