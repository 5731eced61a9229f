"""Simulated active learning: run the loop with an oracle that answers from ground truth.

Each strategy starts from the same cold start (one known example and its neighbours, or the top
anomalies), then repeatedly: train the classifier on the labels so far, ask the strategy for a batch,
and label it from the truth. Recall after L labels is the fraction of all target objects the oracle has
been shown, i.e. found. Label efficiency compares the labels needed to reach a recall (default 90%)
with the labels random inspection needs on average: the m-th of P targets among N objects turns up
after m (N + 1) / (P + 1) random looks (order statistics of sampling without replacement).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from ssald_index.active.classify import check_features, feature_matrix, fit_and_score
from ssald_index.active.strategies import (
    Pool,
    cold_start_from_anomalies,
    cold_start_from_example,
    reduce_for_gp,
    select,
)
from ssald_index.density import knn_scores
from ssald_index.schema import MORPHOLOGY_FEATURES, embedding_matrix, morphology_matrix
from ssald_index.store import ObjectStore

__all__ = ["Curve", "load_for_simulation", "simulate_strategy", "simulate", "random_labels_for_recall", "write_report"]


@dataclass
class Curve:
    """Recall of one strategy as labels accumulate; ``rows`` are the labelled rows in the order asked."""

    strategy: str
    labels: list[int] = field(default_factory=list)
    recall: list[float] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)

    def labels_for(self, target_recall: float) -> int | None:
        """Labels needed to reach ``target_recall`` (None if never reached)."""
        for n, r in zip(self.labels, self.recall):
            if r >= target_recall - 1e-12:
                return n
        return None

    def recall_at(self, n_labels: int) -> float:
        """Recall once ``n_labels`` labels were given (the last point at or before it)."""
        best = 0.0
        for n, r in zip(self.labels, self.recall):
            if n <= n_labels:
                best = r
        return best


def random_labels_for_recall(n_objects: int, n_targets: int, recall: float) -> float:
    """Expected labels random inspection needs to find ``ceil(recall * n_targets)`` of the targets."""
    m = math.ceil(recall * n_targets - 1e-9)
    return m * (n_objects + 1) / (n_targets + 1)


def simulate_strategy(
    x: np.ndarray,
    truth: np.ndarray,
    strategy: str,
    max_labels: int = 1000,
    batch: int = 10,
    cold_start: str = "example",
    anomaly: np.ndarray | None = None,
    classifier: str = "logistic",
    stop_at_recall: float = 1.0,
    seed: int = 0,
    features: np.ndarray | None = None,
) -> Curve:
    """One strategy's recall curve.

    Parameters
    ----------
    x : ndarray, shape (N, D)
        L2-normalised embeddings.
    truth : ndarray of bool, shape (N,)
        Whether each object is of the target class (the oracle).
    strategy : str
        A name from :data:`ssald_index.active.strategies.STRATEGIES`.
    max_labels : int
        Stop after this many labels.
    batch : int
        Labels per round.
    cold_start : {"example", "anomalies"}
        Start from one known target (the first, by row) and its neighbours, or from the top anomalies.
    anomaly : ndarray, optional
        Anomaly scores (needed by ``cold_start="anomalies"`` and the ``anomaly`` strategy).
    classifier : {"logistic", "forest"}
    stop_at_recall : float
        Stop early once this recall is reached.
    seed : int
    features : ndarray, shape (N, F), optional
        The classifier's input (:func:`ssald_index.active.classify.feature_matrix`, e.g. embedding + morphology);
        default ``x``. Strategies still measure similarity and diversity in ``x``.
    """
    truth = np.asarray(truth, dtype=bool)
    n_targets = int(truth.sum())
    if n_targets == 0:
        raise ValueError("the oracle knows no object of the target class: nothing to find")
    if cold_start == "example":
        first = cold_start_from_example(x, int(np.flatnonzero(truth)[0]), batch)
    elif cold_start == "anomalies":
        if anomaly is None:
            raise ValueError("cold_start='anomalies' needs anomaly scores")
        first = cold_start_from_anomalies(anomaly, batch)
    else:
        raise ValueError(f"cold_start must be 'example' or 'anomalies', got {cold_start!r}")
    labelled = list(first)
    reduced = reduce_for_gp(x) if strategy == "gp_ei" else None
    curve = Curve(strategy)
    rnd = 0
    while True:
        rows = np.asarray(labelled, dtype=np.int64)
        y = truth[rows].astype(np.int8)
        curve.labels.append(len(rows))
        curve.recall.append(float(y.sum()) / n_targets)
        if len(rows) >= max_labels or curve.recall[-1] >= stop_at_recall or len(rows) >= len(x):
            curve.rows = [int(r) for r in labelled]
            return curve
        probs = None
        if 0 < y.sum() < len(y):
            probs = fit_and_score(x if features is None else features, rows, y, kind=classifier, seed=seed).scores
        name = strategy
        if probs is None and strategy not in ("random", "anomaly"):
            # Nothing to learn from yet (one class only): look next to the positives, else at anomalies.
            name = "anomaly" if anomaly is not None else "random"
        pool = Pool(x, rows, y, probs=probs, anomaly=anomaly, seed=seed * 100_003 + rnd, reduced=reduced)
        labelled.extend(select(name, pool, min(batch, max_labels - len(rows))).tolist())
        rnd += 1


def simulate(
    x: np.ndarray,
    truth: np.ndarray,
    strategies: list[str],
    progress: bool = True,
    **kwargs,
) -> dict[str, Curve]:
    """:func:`simulate_strategy` for each strategy, with a progress bar.

    ``kwargs`` go to :func:`simulate_strategy` unchanged, so every strategy runs under the same settings.
    """
    curves = {}
    for name in tqdm(strategies, desc="strategies", unit="strategy", disable=not progress):
        curves[name] = simulate_strategy(x, truth, name, **kwargs)
    return curves


def write_report(
    curves: dict[str, Curve],
    n_objects: int,
    n_targets: int,
    out: str | os.PathLike[str],
    label: str,
    budget: int = 200,
    target_recall: float = 0.9,
) -> str:
    """Write ``out.csv`` (every curve point) and ``out.png`` (recall vs labels); return a Markdown table.

    Parameters
    ----------
    curves : dict of str to Curve
        :func:`simulate`'s output.
    n_objects, n_targets : int
        Objects in the pool and targets among them, for the expected curve of random inspection.
    out : path
        Stem of the two files written.
    label : str
        The target class, for the plot's labels.
    budget : int
        Labels at which the table reports each strategy's recall.
    target_recall : float
        Recall at which the table compares the labels each strategy needed with random inspection's.

    Returns
    -------
    str
        One Markdown row per strategy, plus random inspection's expected row.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = os.fspath(out)
    with open(out + ".csv", "w") as fh:
        fh.write("strategy,labels,recall\n")
        for name, c in curves.items():
            for n, r in zip(c.labels, c.recall):
                fh.write(f"{name},{n},{r:.4f}\n")
    rand = random_labels_for_recall(n_objects, n_targets, target_recall)
    lines = [
        f"| strategy | recall@{budget} labels | labels to {target_recall:.0%} recall | fewer labels than random |",
        "|---|---|---|---|",
    ]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, c in curves.items():
        need = c.labels_for(target_recall)
        gain = f"{rand / need:.1f}x" if need else "-"
        lines.append(f"| {name} | {c.recall_at(budget):.2f} | {need if need else 'not reached'} | {gain} |")
        ax.plot(c.labels, c.recall, label=name, lw=1.5)
    grid = np.linspace(0, max(max(c.labels) for c in curves.values()), 200)
    ax.plot(
        grid, np.minimum(grid * (n_targets + 1) / (n_objects + 1) / n_targets, 1.0), "k:", label="random (expected)"
    )
    lines.append(
        f"| random (expected) | {budget * (n_targets + 1) / (n_objects + 1) / n_targets:.2f} | {rand:.0f} | 1.0x |"
    )
    ax.axvline(budget, color="grey", lw=0.8, ls="--")
    ax.axhline(target_recall, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("labels given")
    ax.set_ylabel(f"{label} recall (fraction found)")
    ax.set_title(f"{label}: {n_targets} of {n_objects} objects ({n_targets / n_objects:.1%})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out + ".png", dpi=120)
    plt.close(fig)
    return "\n".join(lines)


def load_for_simulation(
    db: str | os.PathLike[str], truth_column: str, positive: str, progress: bool = True, features: str = "embedding"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What :func:`simulate` needs, read from the objects table at ``db``.

    Parameters
    ----------
    db : path
        LanceDB database directory.
    truth_column : str
        The column the oracle answers from.
    positive : str
        The target class: ``truth_column == positive`` is a yes.
    progress : bool
        Show a progress bar when anomaly scores have to be computed.
    features : str
        What the classifier sees (:data:`~ssald_index.active.classify.FEATURES`).

    Returns
    -------
    x, truth, anomaly, inputs : numpy.ndarray
        Embeddings, the oracle's answers, anomaly scores (the stored ``density_score`` when every object
        has one, else the cosine distance to the 10th neighbour, computed now) and the classifier's input
        (:func:`~ssald_index.active.classify.feature_matrix`).

    Raises
    ------
    ValueError
        If the table has no ``truth_column`` or ``features`` is unknown.
    """
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
