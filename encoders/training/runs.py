"""A training run seen from outside: embed a survey's stamps with its backbone, plot its metrics.

What ``ssald quality --run`` and ``ssald plot-run`` show; matplotlib and torch load inside the functions.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["plot_run", "run_embeddings"]


def run_embeddings(
    run: Path, data: Path, label_column: str | None = None, limit: int | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Embeddings of ``data/stamps`` (at most ``limit``, a seeded subset) by the backbone of ``run``, and the
    ``label_column`` of ``data/catalogue.fits`` for them (``None`` without one)."""
    from encoders.training.checkpoint import load_backbone
    from encoders.training.data import FileSource, normaliser
    from encoders.training.train import embed_backbone

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
