"""Stored classifier scores: one retrain scores every object for a label; candidates are served from the store.

:func:`retrain` reads every embedding, the latest labels (:mod:`ssald_index.active.labels`) and fits
:func:`ssald_index.active.classify.fit_and_score`. The scores of every object go to the ``scores_<label>`` table,
rewritten whole in one commit (``mode="overwrite"``), with the run that made them (classifier, embedding
model, label-set version, CV metrics) in that table's schema metadata: scores and their tags always change
together, and a crash leaves the previous score set in place. Every run is also appended to the
``score_runs`` history table. :func:`top_candidates` ranks from the stored scores; it never retrains.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ssald_index.active.classify import CLASSIFIERS, check_features, feature_matrix, fit_and_score
from ssald_index.active.labels import LABEL_PATTERN, latest_labels, training_set
from ssald_index.errors import Wanted, check_wanted
from ssald_index.filters import Filter
from ssald_index.registry import append_rows, connect, create_table, has_table
from ssald_index.schema import (
    LABELS,
    MORPHOLOGY_FEATURES,
    OBJECT_METADATA_COLUMNS,
    SCORE_RUNS,
    SCORE_RUNS_SCHEMA,
    SCORES_PREFIX,
    SCORES_SCHEMA,
    morphology_matrix,
)
from ssald_index.store import ObjectStore, embedding_matrix

__all__ = [
    "ScoreRun",
    "ScoresNotTrained",
    "scores_table_name",
    "retrain",
    "latest_run",
    "read_scores",
    "read_runs",
    "label_version",
    "is_stale",
    "top_candidates",
]

PathLike = str | os.PathLike[str]

_RUN_KEY = b"ssald_score_run"
# Older score sets are deleted after this long; a running server may still be reading one.
KEEP_VERSIONS_FOR = timedelta(hours=1)


class ScoresNotTrained(ValueError):
    """No classifier was ever trained for this label (run :func:`retrain` first)."""


@dataclass(frozen=True)
class ScoreRun:
    """What one stored score set came from.

    Attributes
    ----------
    label : str
        The target label.
    classifier : str
        ``logistic`` or ``forest`` (:data:`ssald_index.active.classify.CLASSIFIERS`).
    model_id : str or None
        The embedding model of the scored objects.
    label_version : int
        Version of the ``labels`` table the classifier was trained from.
    n_positive, n_negative : int
        Labelled objects of each class used to train.
    metrics : dict
        Cross-validated metrics (``cv_roc_auc``, ``cv_average_precision``) when computed.
    n_objects : int
        Objects scored.
    trained_at : datetime
        When the scores were written (UTC).
    features : str
        What the classifier saw (:data:`ssald_index.active.classify.FEATURES`); runs stored before it existed used
        the embedding.
    """

    label: str
    classifier: str
    model_id: str | None
    label_version: int
    n_positive: int
    n_negative: int
    metrics: dict[str, float] = field(default_factory=dict)
    n_objects: int = 0
    trained_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    features: str = "embedding"

    def to_json(self) -> str:
        """The run as one JSON document (``trained_at`` in ISO format)."""
        return json.dumps({**asdict(self), "trained_at": self.trained_at.isoformat()})

    @classmethod
    def from_json(cls, text: str | bytes) -> ScoreRun:
        """Inverse of :meth:`to_json`."""
        doc = json.loads(text)
        doc["trained_at"] = datetime.fromisoformat(doc["trained_at"])
        return cls(**doc)


def scores_table_name(label: str) -> str:
    """The table holding the scores of ``label``.

    Raises
    ------
    ValueError
        If ``label`` is not made of letters, digits and underscores only.
    """
    if not isinstance(label, str) or not LABEL_PATTERN.fullmatch(label):
        raise ValueError(f"label must be letters, digits and underscores only ([A-Za-z0-9_]+), got {label!r}")
    return SCORES_PREFIX + label


def label_version(db_path: PathLike) -> int:
    """The current version of the ``labels`` table (0 when no label was ever given)."""
    db = connect(db_path)
    return int(db.open_table(LABELS).version) if has_table(db, LABELS) else 0


def retrain(
    db_path: PathLike,
    label: str,
    classifier: str = "logistic",
    cv: bool = True,
    seed: int = 0,
    features: str = "embedding",
    wanted: Wanted | None = None,
) -> ScoreRun:
    """Train a classifier for ``label`` on the latest labels and store a score for every object.

    Parameters
    ----------
    db_path : path
        LanceDB database with the ``objects`` table.
    label : str
        Target label (``[A-Za-z0-9_]+``); objects whose latest label is ``label`` are positive, objects with
        any other latest label negative.
    classifier : {"logistic", "forest"}
    cv : bool
        Also compute cross-validated ROC AUC and average precision (stored with the run).
    seed : int
    features : {"embedding", "morphology", "embedding+morphology"}
        The classifier's input (:func:`ssald_index.active.classify.feature_matrix`); stored with the run.
    wanted : callable, optional
        Asked before each stage (reading the table, fitting, scoring, cross-validating, writing): when it
        answers ``False`` the retrain stops with :class:`~ssald_index.errors.Abandoned` and stores nothing, so
        the previous scores stay (stale, :func:`is_stale`) until the next retrain.

    Returns
    -------
    ScoreRun
        The stored run.

    Raises
    ------
    ValueError
        If the label name or classifier is invalid, or the labels of objects in the table hold no positive or
        no negative for ``label``.
    ssald_index.store.TableNotReady
        If the database has no ``objects`` table.
    ssald_index.errors.Abandoned
        ``wanted`` answered ``False`` before a stage; nothing was written.
    """
    name = scores_table_name(label)
    if classifier not in CLASSIFIERS:
        raise ValueError(f"classifier must be one of {', '.join(CLASSIFIERS)}, got {classifier!r}")
    features = check_features(features)
    check_wanted(wanted, f"reading the objects table to retrain {label!r}")
    store = ObjectStore.open(db_path)
    # Read the version before the labels: a label added in between makes the run look stale, never fresh.
    version = label_version(db_path)
    latest = latest_labels(db_path)
    morphology = [c for c in MORPHOLOGY_FEATURES if c in store.table.schema.names] if features != "embedding" else []
    table = store.read(["objid", "embedding", "model_id", *morphology])
    objids = table.column("objid").to_numpy()
    rows, y = training_set(latest, label, objids)
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(
            f"cannot train a classifier for label {label!r}: the objects table has {n_pos} object(s) labelled "
            f"{label!r} and {n_neg} with another label; label at least one of each"
        )
    x = feature_matrix(embedding_matrix(table), morphology_matrix(table) if morphology else None, features)
    result = fit_and_score(x, rows, y, kind=classifier, seed=seed, cv=cv, wanted=wanted)
    model_ids = sorted({m for m in table.column("model_id").unique().to_pylist() if m is not None})
    run = ScoreRun(
        label=label,
        classifier=classifier,
        model_id=",".join(model_ids) if model_ids else None,
        label_version=version,
        n_positive=result.n_positive,
        n_negative=result.n_negative,
        metrics=dict(result.metrics),
        n_objects=len(objids),
        features=features,
    )
    scores = pa.table({"objid": pa.array(objids, pa.int64()), "score": pa.array(result.scores, pa.float32())})
    scores = scores.cast(SCORES_SCHEMA).replace_schema_metadata({_RUN_KEY: run.to_json().encode()})
    check_wanted(wanted, f"storing the scores of {label!r}")  # the last check: the scores and their run go together
    db = connect(db_path)
    written = create_table(db, name, scores, mode="overwrite")
    written.optimize(cleanup_older_than=KEEP_VERSIONS_FOR)
    row = {**asdict(run), "metrics": json.dumps(run.metrics)}
    append_rows(db_path, SCORE_RUNS, SCORE_RUNS_SCHEMA, [row])
    return run


def _open_scores(db_path: PathLike, label: str) -> Any | None:
    name = scores_table_name(label)
    db = connect(db_path)
    return db.open_table(name) if has_table(db, name) else None


def latest_run(db_path: PathLike, label: str) -> ScoreRun | None:
    """The run behind the stored scores of ``label`` (``None`` when never trained)."""
    table = _open_scores(db_path, label)
    if table is None:
        return None
    meta = table.schema.metadata or {}
    if _RUN_KEY not in meta:
        raise ValueError(f"table {scores_table_name(label)!r} has no run metadata: it was not written by retrain")
    return ScoreRun.from_json(meta[_RUN_KEY])


def read_runs(db_path: PathLike, label: str | None = None) -> pa.Table:
    """The ``score_runs`` history (of one label), oldest first; empty when nothing was trained."""
    db = connect(db_path)
    if not has_table(db, SCORE_RUNS):
        return SCORE_RUNS_SCHEMA.empty_table()
    table = db.open_table(SCORE_RUNS).to_arrow()
    if label is not None:
        table = table.filter(pc.equal(table.column("label"), label))
    return table.sort_by([("trained_at", "ascending")])


def read_scores(db_path: PathLike, label: str) -> pa.Table | None:
    """``(objid, score)`` of every object for ``label``, or ``None`` when never trained."""
    table = _open_scores(db_path, label)
    return None if table is None else table.to_arrow().select(["objid", "score"])


def is_stale(db_path: PathLike, label: str) -> bool:
    """Whether the stored scores of ``label`` predate the current labels, embedding model or object count.

    ``True`` also when ``label`` was never trained.
    """
    run = latest_run(db_path, label)
    if run is None or run.label_version != label_version(db_path):
        return True
    store = ObjectStore.open(db_path)
    return store.model_id != run.model_id or store.count() != run.n_objects


def _check_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    return int(n)


def _metadata(store: ObjectStore, objids: np.ndarray) -> dict[int, dict[str, Any]]:
    if len(objids) == 0:
        return {}
    where = f"objid IN ({', '.join(str(int(o)) for o in objids)})"
    rows = store.read(list(OBJECT_METADATA_COLUMNS), where).to_pylist()
    return {int(r["objid"]): r for r in rows}


def top_candidates(
    db_path: PathLike,
    label: str,
    n: int,
    filter: Filter | None = None,
    exclude_labelled: bool = False,
    wanted: Wanted | None = None,
) -> list[dict[str, Any]]:
    """The ``n`` highest-scoring objects for ``label`` that pass ``filter``, best first.

    The filter is applied before ranking, so ``n`` rows come back whenever ``n`` scored objects pass it.
    Ties are broken by objid.

    Parameters
    ----------
    db_path : path
    label : str
    n : int
        Number of candidates (positive).
    filter : Filter, optional
        Metadata filter on the ``objects`` table.
    exclude_labelled : bool
        Leave out objects that already carry any label.
    wanted : callable, optional
        Asked before the ranking and before each read of candidate rows (:func:`ssald_index.errors.check_wanted`).

    Returns
    -------
    list of dict
        Each object's metadata (no embedding; ``density_score`` is the anomaly score) plus ``score`` and
        ``label`` (the object's latest label, or ``None``).

    Raises
    ------
    ScoresNotTrained
        If ``label`` was never trained.
    ValueError
        If ``n`` or the filter is invalid.
    ssald_index.errors.Abandoned
        ``wanted`` answered ``False``.
    """
    n = _check_n(n)
    scores = read_scores(db_path, label)
    if scores is None:
        raise ScoresNotTrained(
            f"no stored scores for label {label!r}: train them first (ssald_index.active.scores.retrain)"
        )
    store = ObjectStore.open(db_path)
    objids = scores.column("objid").to_numpy()
    score = scores.column("score").to_numpy(zero_copy_only=False)
    keep = np.isfinite(score)
    where = filter.sql() if filter is not None else None
    if where:
        try:
            passing = store.read(["objid"], where).column("objid").to_numpy()
        except ValueError as exc:
            raise ValueError(f"bad filter {where!r}: {exc}") from None
        keep &= np.isin(objids, passing)
    latest = latest_labels(db_path)
    if exclude_labelled and latest:
        keep &= ~np.isin(objids, np.fromiter(latest, dtype=np.int64, count=len(latest)))
    passing_rows = np.flatnonzero(keep)
    out: list[dict[str, Any]] = []
    ranked_upto, depth = 0, 2 * n
    # Scores may name objects deleted since the run: read further down the ranking until n are found.
    while len(out) < n:
        check_wanted(wanted, f"ranking {len(passing_rows)} scores of {label!r}")
        ranked = _ranking(passing_rows, objids, score, depth)
        for start in range(ranked_upto, len(ranked), 2 * n):
            check_wanted(wanted, f"reading the rows of candidates {start}.. of {label!r}")
            chunk = ranked[start : start + 2 * n]
            meta = _metadata(store, objids[chunk])
            for i in chunk:
                row = meta.get(int(objids[i]))
                if row is not None and len(out) < n:
                    out.append({**row, "score": float(score[i]), "label": latest.get(int(objids[i]))})
            if len(out) == n:
                break
        if len(ranked) == len(passing_rows):
            break
        ranked_upto, depth = len(ranked), 4 * depth
    return out


def _ranking(rows: np.ndarray, objids: np.ndarray, score: np.ndarray, depth: int) -> np.ndarray:
    """At least the ``depth`` best of ``rows`` (all tied at the cut), by score descending then objid."""
    if depth < len(rows):
        cut = np.partition(-score[rows], depth - 1)[depth - 1]
        rows = rows[-score[rows] <= cut]
    return rows[np.lexsort((objids[rows], -score[rows]))]
