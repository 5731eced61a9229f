"""``ssald quality`` and ``ssald plot-run``: is the encoder learning? (label-free scores).

``quality --db DB`` scores the embeddings stored in a LanceDB ``objects`` table;
``quality --run RUN --data DIR`` embeds a survey's stamps with a training run's backbone
(or one kept checkpoint) and scores them; both print the report of
:func:`encoders.training.diagnostics.quality_report` as JSON (with kNN accuracy and Davies-Bouldin
when a label column is filled). ``plot-run RUN`` draws the curves of ``RUN/metrics.jsonl``
to a PNG. This module lives in ``ingest`` because it reads the index (``ssald_index``) and
the encoders, and ``encoders`` must not import ``ssald_index``. Only argparse and pathlib
load at import time.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["add_parsers", "db_embeddings", "plot_run", "run_plot", "run_quality"]


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``quality`` and ``plot-run`` subcommands (each sets ``func``)."""
    p = subparsers.add_parser(
        "quality",
        help="label-free quality scores (RankMe, 2PCF, collapse) of embeddings",
        description="Score embeddings from a database (--db) or from a training run embedding a survey "
        "(--run with --data): per-dimension std, RankMe, the 2PCF score and, with labels, kNN accuracy "
        "and Davies-Bouldin. Prints JSON.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--db", type=Path, help="LanceDB database whose objects table holds embeddings")
    src.add_argument("--run", type=Path, help="training run directory or a checkpoint .pt file")
    p.add_argument("--data", type=Path, help="with --run: survey directory (stamps/ and catalogue.fits)")
    p.add_argument("--labels", default="truth_class", help="label column (default truth_class; 'none' to skip)")
    p.add_argument("--max-objects", type=int, default=20000, help="score at most this many (a seeded subset)")
    p.add_argument("-k", type=int, default=10, help="neighbours of the kNN vote (default 10)")
    p.add_argument("--out", type=Path, help="also write the report to this JSON file")
    p.set_defaults(func=run_quality)

    p = subparsers.add_parser(
        "plot-run", help="plot a training run's loss terms and diagnostics", description=plot_run.__doc__
    )
    p.add_argument("run", type=Path, help="run directory holding metrics.jsonl")
    p.add_argument("--out", type=Path, help="PNG to write (default RUN/metrics.png)")
    p.set_defaults(func=run_plot)


def db_embeddings(db: Path, label_column: str | None = None, limit: int | None = None, seed: int = 0):
    """Embeddings (and labels) from the ``objects`` table of ``db``.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray or None)
        float32 ``(N, D)`` embeddings and the label column as strings ('' for null), or ``None``
        when ``label_column`` is ``None``, absent, or entirely empty.
    """
    import numpy as np

    from ssald_index.store import ObjectStore, embedding_matrix

    store = ObjectStore.open(db)
    names = set(store.table.schema.names)
    columns = ["embedding"] + ([label_column] if label_column and label_column in names else [])
    data = store.read(columns)
    z = embedding_matrix(data)
    labels = None
    if len(columns) == 2:
        labels = np.array(["" if v is None else str(v) for v in data.column(label_column).to_pylist()])
        if not np.any(labels != ""):
            labels = None
    if limit is not None and len(z) > limit:
        idx = np.sort(np.random.default_rng(seed).choice(len(z), limit, replace=False))
        z, labels = z[idx], None if labels is None else labels[idx]
    return z, labels


def _run_embeddings(run: Path, data: Path, label_column: str | None, limit: int | None):
    import numpy as np

    from encoders.training.data import FileSource, normaliser
    from encoders.training.train import embed_backbone, load_backbone

    model, config = load_backbone(run)
    paths = sorted(p for p in (data / "stamps").iterdir() if not p.name.startswith("."))
    if limit is not None and len(paths) > limit:
        paths = [paths[i] for i in np.sort(np.random.default_rng(0).choice(len(paths), limit, replace=False))]
    source = FileSource(paths, normaliser(config.normalisation, config.lupton))
    z = embed_backbone(model, source)
    labels = None
    catalogue = data / "catalogue.fits"
    if label_column and catalogue.exists():
        from astropy.table import Table

        cat = Table.read(catalogue)
        if label_column in cat.colnames:
            by_objid = dict(zip(np.asarray(cat["objid"]).tolist(), np.asarray(cat[label_column]).astype(str)))
            labels = np.array([by_objid.get(int(p.stem) if p.stem.isdigit() else -1, "") for p in paths])
    return z, labels


def run_quality(args: argparse.Namespace) -> int:
    """Handle ``quality``: print the JSON report; 2 on bad arguments."""
    from encoders.training.diagnostics import quality_report

    label_column = None if args.labels.lower() == "none" else args.labels
    if args.run is not None:
        if args.data is None:
            print("error: quality --run needs --data DIR (the stamps to embed)")
            return 2
        z, labels = _run_embeddings(args.run, args.data, label_column, args.max_objects)
    else:
        z, labels = db_embeddings(args.db, label_column, args.max_objects)
    if len(z) < 3:
        print(f"error: need at least 3 embeddings to score, found {len(z)}")
        return 2
    report = quality_report(z, labels, k=args.k)
    text = json.dumps(report, indent=1)
    if args.out is not None:
        args.out.write_text(text + "\n")
    print(text)
    return 0


def plot_run(run: Path, out: Path | None = None) -> Path:
    """Plot the VICReg terms and the per-epoch diagnostics of ``RUN/metrics.jsonl`` to a PNG.

    Panels: the three loss terms per epoch (weighted as in the loss); RankMe; the 2PCF score
    with its spread; the normalised per-dimension std (collapse); kNN accuracy when logged.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(run) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"no metrics.jsonl in run directory {run}")
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    epochs = [r for r in records if r.get("scope") == "epoch"]
    diag = [r for r in records if r.get("scope") in ("init", "epoch") and "rankme" in r]
    if not epochs:
        raise ValueError(f"{path} has no epoch records yet")
    config = json.loads((Path(run) / "config.json").read_text()) if (Path(run) / "config.json").exists() else {}
    weights = {"inv": config.get("sim_coeff", 25.0), "var": config.get("std_coeff", 25.0)}
    weights["cov"] = config.get("cov_coeff", 1.0)
    panels = [("loss terms", None), ("RankMe", "rankme"), ("2PCF score", "tpcf"), ("std x sqrt(D)", "std_mean")]
    if any("knn_acc" in r for r in diag):
        panels.append(("kNN accuracy", "knn_acc"))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.2), constrained_layout=True)
    x_ep = [r["epoch"] + 1 for r in epochs]
    for ax, (title, key) in zip(axes, panels):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        if key is None:
            for term in ("inv", "var", "cov"):
                label = f"{weights[term]:g} x {term}"
                ax.plot(x_ep, [weights[term] * r[term] for r in epochs], marker=".", label=label)
            ax.legend(fontsize=8)
            continue
        x = [r["epoch"] + 1 if r["scope"] == "epoch" else 0 for r in diag if key in r]
        y = [r[key] for r in diag if key in r]
        ax.plot(x, y, marker=".")
        if key == "tpcf":
            spread = [r.get("tpcf_spread", 0.0) for r in diag if key in r]
            ax.fill_between(x, [a - s for a, s in zip(y, spread)], [a + s for a, s in zip(y, spread)], alpha=0.3)
    out = Path(out) if out is not None else Path(run) / "metrics.png"
    fig.suptitle(f"run {Path(run).name}: {len(epochs)} epochs")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def run_plot(args: argparse.Namespace) -> int:
    """Handle ``plot-run``: write the PNG and print its path."""
    out = plot_run(args.run, args.out)
    print(f"wrote {out}")
    return 0
