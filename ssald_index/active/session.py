"""An active-learning session over one database: what to label next, label writes, retrains, candidates.

:class:`ActiveLearning` is the logic behind the ``NextToLabel``, ``SubmitLabels`` and ``Candidates`` RPCs,
usable from Python without a server (:meth:`ActiveLearning.open`); it returns the dataclasses below, which
:mod:`server.al_service` turns into messages. It keeps the embedding matrix of the current table version in
memory (read on first use, reread when the version changes) and serialises every label write through one
lock, so that one session is the single writer of the ``labels`` table. Retraining after a write runs
outside that lock (a forest retrain can take a minute; other label writes go on meanwhile); retrains of one
target label are serialised by a lock of their own, so a slower, older retrain never overwrites a newer one.
A write may carry a request id: a retry of a request whose labels were already committed writes nothing
and answers as the first did (:attr:`Submitted.replayed`).

The long calls take ``wanted`` (:data:`ssald_index.errors.Wanted`; the server passes its call's
``context.is_active``) and stop between stages with :class:`~ssald_index.errors.Abandoned` once their caller has
gone: a retrain cut short after a label write stores nothing, and the labels stay.

scikit-learn (strategies, classifiers) is imported on the first call that needs it, not at import: it
would add seconds to every server start.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ssald_index.active.labels import (
    MAX_LABEL_NAMES,
    Label,
    add_labels,
    check_labels,
    check_request_id,
    find_request,
    latest_labels,
    negative_of,
    read_labels,
)
from ssald_index.ann import SearchParams
from ssald_index.errors import Wanted, check_wanted
from ssald_index.feature_space import FeatureSpaces
from ssald_index.filters import Filter
from ssald_index.maps import MapPoints, map_points
from ssald_index.metric_search import allowed_rows
from ssald_index.registry import connect, has_table
from ssald_index.schema import LABELS
from ssald_index.search import MAX_K
from ssald_index.store import ObjectNotFound, ObjectStore, embedding_matrix

__all__ = [
    "DEFAULT_STRATEGY",
    "DEFAULT_CLASSIFIER",
    "NoClassifier",
    "StoreSource",
    "OpenStore",
    "Embeddings",
    "LabelsSummary",
    "Proposal",
    "Proposals",
    "RetrainOutcome",
    "Submitted",
    "Candidates",
    "ActiveLearning",
    "target_of",
]

log = logging.getLogger(__name__)

#: The strategy used when none is named (see docs/BENCHMARKS.md for how the strategies compare).
DEFAULT_STRATEGY = "gp_ei"
DEFAULT_CLASSIFIER = "logistic"
# Strategies that rank by classifier probabilities (or fit one), so need both classes labelled.
_NEED_BOTH_CLASSES = frozenset({"top", "uncertainty", "margin", "entropy", "committee", "diversity"})


class NoClassifier(RuntimeError):
    """Candidates were asked for a label that has no trained classifier yet (``FAILED_PRECONDITION``)."""


def target_of(label: str) -> str:
    """The target label a stored label speaks about: ``not_X`` (a "no" answer) and ``X`` are both about X."""
    return label.removeprefix("not_")


def _check_label(label: str) -> str:
    if not isinstance(label, str) or not label.strip():
        raise ValueError(f"label must be a non-empty string, got {label!r}")
    return label.strip()


def _check_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_K:
        raise ValueError(f"n must be an integer between 1 and {MAX_K}, got {n!r}")
    return int(n)


def _check_classifier(classifier: str) -> str:
    from ssald_index.active.classify import CLASSIFIERS

    classifier = classifier or DEFAULT_CLASSIFIER
    if classifier not in CLASSIFIERS:
        raise ValueError(f"unknown classifier {classifier!r}; choose from {', '.join(CLASSIFIERS)}")
    return classifier


class StoreSource(Protocol):
    """Where a session finds its ``objects`` table (the server's ``StoreHandle`` is one)."""

    db_path: str

    def store(self) -> ObjectStore:
        """The open store; raises ``TableNotReady`` while the database has no ``objects`` table."""
        ...


class OpenStore:
    """A :class:`StoreSource` over a database directory: opens the ``objects`` table on first use.

    Parameters
    ----------
    db_path : path
        LanceDB database directory.
    search_params : SearchParams, optional
        ANN query parameters of the opened store.
    """

    def __init__(self, db_path: str | os.PathLike[str], search_params: SearchParams | None = None) -> None:
        self.db_path = os.fspath(db_path)
        self._search_params = search_params
        self._store: ObjectStore | None = None
        self._lock = threading.Lock()

    def store(self) -> ObjectStore:
        """The open store (opened once).

        Raises
        ------
        TableNotReady
            If the database has no ``objects`` table yet.
        """
        with self._lock:
            if self._store is None:
                self._store = ObjectStore.open(self.db_path, search_params=self._search_params)
            return self._store


@dataclass(frozen=True)
class Embeddings:
    """The embedding matrix of one table version, with objid lookups.

    Attributes
    ----------
    version : int
        Table version it was read from.
    objids : ndarray of int64, shape (N,)
        Objid of each row.
    x : ndarray of float32, shape (N, D)
        L2-normalised embeddings.
    anomaly : ndarray of float32, shape (N,), or None
        Density scores (NaN where missing); ``None`` when no object has one.
    """

    version: int
    objids: np.ndarray
    x: np.ndarray
    anomaly: np.ndarray | None
    _order: np.ndarray
    _reduced: list[np.ndarray] = field(default_factory=list)

    def reduced(self) -> np.ndarray:
        """The PCA projection the ``gp_ei`` strategy works in, computed once per table version."""
        from ssald_index.active.strategies import reduce_for_gp

        if not self._reduced:
            self._reduced.append(reduce_for_gp(self.x))
        return self._reduced[0]

    @classmethod
    def read(cls, store: Any) -> Embeddings:
        """Read ``objid``, ``embedding`` and ``density_score`` of every row of ``store``'s current version."""
        version = store.version
        shared = store.in_memory()  # the served cache's copy, when the server keeps the embeddings
        if shared is not None:
            objids, x, anomaly = shared
        else:
            table = store.read(["objid", "embedding", "density_score"])
            objids, x = table.column("objid").to_numpy(), embedding_matrix(table)
            anomaly = table.column("density_score").to_numpy(zero_copy_only=False).astype(np.float32)
        anomaly = anomaly if np.isfinite(anomaly).any() else None
        return cls(version, objids, x, anomaly, np.argsort(objids, kind="stable"))

    def rows_of(self, objids: Any) -> np.ndarray:
        """Row index of each objid (-1 where the table has no such object)."""
        wanted = np.asarray(objids, dtype=np.int64).reshape(-1)
        if len(self.objids) == 0:
            return np.full(len(wanted), -1, np.int64)
        pos = np.clip(np.searchsorted(self.objids, wanted, sorter=self._order), 0, len(self.objids) - 1)
        rows = self._order[pos]
        return np.where(self.objids[rows] == wanted, rows, -1).astype(np.int64)


@dataclass(frozen=True)
class LabelsSummary:
    """The ``labels`` table at a glance.

    Attributes
    ----------
    n_labels : int
        Label rows ever written.
    n_labelled_objects : int
        Objects with at least one label.
    label_counts : dict of str to int
        Objects per latest label; the :data:`~ssald_index.active.labels.MAX_LABEL_NAMES` most common when a
        table written before that limit holds more names (a warning is logged).
    version : int
        Version of the ``labels`` table (0 before the first label).
    """

    n_labels: int
    n_labelled_objects: int
    label_counts: dict[str, int]
    version: int


@dataclass(frozen=True)
class Proposal:
    """One object proposed for labelling.

    Attributes
    ----------
    row : dict
        The object's metadata (:meth:`ssald_index.store.ObjectStore.get`).
    reason : str
        The strategy that chose it, or ``cold_start:example``, ``cold_start:anomalies``, ``cold_start:random``.
    probability : float or None
        The classifier's probability of the target label, when one was available.
    similarity : float or None
        Cosine similarity to the seed example, for ``cold_start:example``.
    """

    row: dict[str, Any]
    reason: str
    probability: float | None = None
    similarity: float | None = None


@dataclass(frozen=True)
class Proposals:
    """Answer of :meth:`ActiveLearning.next_to_label`: the proposals, how they were chosen, the labels behind."""

    items: list[Proposal]
    strategy: str
    n_positive: int
    n_negative: int


@dataclass(frozen=True)
class RetrainOutcome:
    """A retrain of one target label after a submit: its run, or why it did not train (``skipped``)."""

    label: str
    run: Any = None
    skipped: str = ""


@dataclass(frozen=True)
class Submitted:
    """Answer of :meth:`ActiveLearning.submit`.

    Attributes
    ----------
    n_written : int
        Labels the request wrote (for a replay: wrote when it was first committed).
    labels_version : int
        The ``labels`` table version holding them.
    label_counts : dict of str to int
        Objects per latest label, now.
    retrained : list of RetrainOutcome
    replayed : bool
        The request id had been committed before: nothing was written this time.
    """

    n_written: int
    labels_version: int
    label_counts: dict[str, int]
    retrained: list[RetrainOutcome]
    replayed: bool = False


@dataclass(frozen=True)
class Candidates:
    """Answer of :meth:`ActiveLearning.candidates`.

    Attributes
    ----------
    candidates : list of dict
        Rows of :func:`ssald_index.active.scores.top_candidates`, highest score first.
    run : ScoreRun
        The retrain that stored the scores.
    stale : bool
        Whether labels, model or objects changed since that run.
    """

    candidates: list[dict[str, Any]]
    run: Any
    stale: bool


class ActiveLearning:
    """Active-learning state of one database.

    Parameters
    ----------
    source : StoreSource
        Gives the ``objects`` table (raises ``TableNotReady`` until it exists): the server's ``StoreHandle``,
        or an :class:`OpenStore` (see :meth:`open`).
    features : {"embedding", "morphology", "embedding+morphology"}
        What a classifier trained here sees (:func:`ssald_index.active.classify.feature_matrix`): retrains store
        it with their scores; strategies still work in the embedding.
    spaces : FeatureSpaces, optional
        Where the table's standardised morphology is read and kept per version; the servicer passes the one its
        morphology search spaces use, so the columns are read once for both.
    """

    def __init__(self, source: StoreSource, features: str = "embedding", spaces: FeatureSpaces | None = None) -> None:
        from ssald_index.active.classify import FEATURES

        if features not in FEATURES:
            raise ValueError(f"features must be one of {', '.join(FEATURES)}, got {features!r}")
        self.features = features
        self.spaces = spaces if spaces is not None else FeatureSpaces()
        self._inputs: tuple[int, np.ndarray] | None = None
        self._source = source
        self._embeddings: Embeddings | None = None
        self._read_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._retrain_locks: dict[str, threading.Lock] = {}
        self._retrain_locks_lock = threading.Lock()
        # The last in-memory classifier fit, keyed by what it depends on: a second call for the same
        # label, labels and table version reuses it.
        self._fit: tuple[tuple[Any, ...], np.ndarray] | None = None

    @classmethod
    def open(
        cls, db_path: str | os.PathLike[str], features: str = "embedding", search_params: SearchParams | None = None
    ) -> ActiveLearning:
        """A session over the database at ``db_path``, without a server."""
        return cls(OpenStore(db_path, search_params), features)

    @property
    def db_path(self) -> str:
        """The database directory."""
        return self._source.db_path

    def store(self) -> ObjectStore:
        """The open ``objects`` table (raises ``TableNotReady`` until it exists)."""
        return self._source.store()

    def embeddings(self) -> Embeddings:
        """The embeddings of the current table version (reread only when the version changed)."""
        store = self._source.store()
        current = self._embeddings
        if current is not None and current.version == store.version:
            return current
        with self._read_lock:
            if self._embeddings is None or self._embeddings.version != store.version:
                self._embeddings = Embeddings.read(store)
            return self._embeddings

    def labels_summary(self) -> LabelsSummary:
        """Label rows, labelled objects, objects per latest label and the ``labels`` table version."""
        db = connect(self.db_path)
        version = int(db.open_table(LABELS).version) if has_table(db, LABELS) else 0
        table = read_labels(self.db_path)
        latest = dict(zip(table.column("objid").to_pylist(), table.column("label").to_pylist()))
        counts = Counter(latest.values())
        if len(counts) > MAX_LABEL_NAMES:
            log.warning(
                "labels table of %s holds %d distinct latest labels (written before the limit of %d): "
                "replies count the %d most common",
                self.db_path,
                len(counts),
                MAX_LABEL_NAMES,
                MAX_LABEL_NAMES,
            )
            counts = Counter(dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_LABEL_NAMES]))
        return LabelsSummary(table.num_rows, len(latest), dict(counts), version)

    def next_to_label(
        self,
        label: str,
        n: int = 10,
        strategy: str = "",
        seed_objid: int | None = None,
        filter: Filter | None = None,
        classifier: str = "",
        exclude_objids: Any = (),
        wanted: Wanted | None = None,
    ) -> Proposals:
        """The ``n`` objects whose label ``strategy`` wants next for ``label``; never one already labelled.

        Parameters
        ----------
        label : str
            Target label.
        n : int
            1..1000; fewer come back when fewer unlabelled objects match (none when all are labelled or skipped).
        strategy : str
            A name from :data:`ssald_index.active.strategies.STRATEGIES` (``""``: :data:`DEFAULT_STRATEGY`).
        seed_objid : int, optional
            A known example, used while ``label`` has no positive label: its neighbours come first.
        filter : Filter, optional
            Only objects matching it are proposed (labels outside it still train the classifier).
        classifier : str
            Fitted in memory when a strategy needs probabilities and no fresh stored scores exist.
        exclude_objids : iterable of int
            Never proposed either (objects a person skipped): the strategy's next choices replace them.
        wanted : callable, optional
            Asked before each stage over the whole table (reading the embeddings, the filter, the classifier
            fit, the strategy, the proposed rows): :func:`ssald_index.errors.check_wanted`.

        Raises
        ------
        ValueError
            Empty label, bad ``n``, unknown strategy or classifier, bad filter.
        ObjectNotFound
            ``seed_objid`` is not in the table.
        ssald_index.errors.Abandoned
            ``wanted`` answered ``False``.
        """
        from ssald_index.active.strategies import STRATEGIES

        label, n = _check_label(label), _check_n(n)
        strategy = strategy or DEFAULT_STRATEGY
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
        classifier = _check_classifier(classifier)
        check_wanted(wanted, "reading the embeddings")
        emb = self.embeddings()
        store = self._source.store()
        latest = latest_labels(self.db_path)
        ids = np.fromiter(latest.keys(), dtype=np.int64, count=len(latest))
        rows = emb.rows_of(ids)
        known = rows >= 0
        rows = rows[known]
        y = np.array([v == label for v in latest.values()], dtype=np.int8)[known]
        n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
        seed_row = None
        if seed_objid is not None:
            seed_row = int(emb.rows_of([seed_objid])[0])
            if seed_row < 0:
                raise ObjectNotFound(int(seed_objid))
        check_wanted(wanted, "applying the filter")
        allowed = allowed_rows(store, emb, filter)

        skip = emb.rows_of(np.fromiter(exclude_objids, dtype=np.int64))
        skip = set(skip[skip >= 0].tolist())
        # Nothing to ask when every row that may be proposed is labelled or skipped (costs the labels, not the table).
        taken = np.union1d(rows, np.fromiter(skip, dtype=np.int64, count=len(skip)))
        exhausted = len(taken) >= len(emb.objids) if allowed is None else bool(np.isin(allowed, taken).all())
        if exhausted:
            return Proposals([], strategy, n_pos, n_neg)
        n_picked = n + len(skip)  # the skipped ones may be among the strategy's choices
        probs = None
        if n_pos and n_neg:
            check_wanted(wanted, f"scoring with the {classifier} classifier of {label!r}")
            probs = self._probabilities(label, emb, rows, y, classifier)
        check_wanted(wanted, f"running the strategy {strategy!r}")
        similarity = None
        if n_pos == 0 or (n_neg == 0 and strategy in _NEED_BOTH_CLASSES):
            # Nothing to learn from yet: look next to the seed (or the latest positive), else at anomalies.
            anchor = seed_row if n_pos == 0 else int(rows[np.flatnonzero(y)[-1]])
            picked, reason = self._cold_start(emb, rows, allowed, anchor, n_picked)
            used = reason
        else:
            picked = self._select(strategy, emb, rows, y, probs, allowed, n_picked, seed=len(y))
            used = reason = strategy
        picked = np.array([r for r in picked.tolist() if r not in skip][:n], dtype=np.int64)
        if used == "cold_start:example":
            similarity = emb.x[picked] @ emb.x[anchor]
        check_wanted(wanted, f"reading the {len(picked)} proposed objects")
        items = [
            Proposal(
                store.get(int(emb.objids[row])),
                reason,
                probability=float(probs[row]) if probs is not None else None,
                similarity=float(similarity[j]) if similarity is not None else None,
            )
            for j, row in enumerate(picked.tolist())
        ]
        return Proposals(items, used, n_pos, n_neg)

    def _cold_start(
        self, emb: Embeddings, labelled: np.ndarray, allowed: np.ndarray | None, anchor: int | None, n: int
    ) -> tuple[np.ndarray, str]:
        """Rows near ``anchor`` (or the most anomalous, or random), skipping labelled and filtered-out rows."""
        from ssald_index.active.strategies import cold_start_from_anomalies, cold_start_from_example

        base = None if allowed is None else np.union1d(allowed, [] if anchor is None else [anchor]).astype(np.int64)
        excluded = set(labelled.tolist())
        if base is not None and anchor is not None and not np.isin(anchor, allowed):
            excluded.add(anchor)
        spare = n + len(excluded)
        if anchor is not None:
            x = emb.x if base is None else emb.x[base]
            pos = anchor if base is None else int(np.searchsorted(base, anchor))
            found, reason = cold_start_from_example(x, pos, min(spare, len(x))), "cold_start:example"
        elif emb.anomaly is not None:
            scores = emb.anomaly if base is None else emb.anomaly[base]
            found = cold_start_from_anomalies(np.nan_to_num(scores, nan=-np.inf), min(spare, len(scores)))
            reason = "cold_start:anomalies"
        else:
            rng = np.random.default_rng(len(excluded))
            found, reason = rng.permutation(len(emb.x) if base is None else len(base)), "cold_start:random"
        found = found if base is None else base[found]
        return np.array([r for r in found.tolist() if r not in excluded][:n], dtype=np.int64), reason

    def _select(
        self,
        strategy: str,
        emb: Embeddings,
        rows: np.ndarray,
        y: np.ndarray,
        probs: np.ndarray | None,
        allowed: np.ndarray | None,
        n: int,
        seed: int,
    ) -> np.ndarray:
        """Run ``strategy`` over the allowed rows; the labelled rows are in its pool wherever they lie."""
        from ssald_index.active.strategies import Pool, select

        reduced = emb.reduced() if strategy == "gp_ei" else None
        if allowed is None:
            pool = Pool(emb.x, rows, y, probs=probs, anomaly=emb.anomaly, seed=seed, reduced=reduced)
            return select(strategy, pool, n)
        sub = np.union1d(allowed, rows).astype(np.int64)
        pool = Pool(
            emb.x[sub],
            np.searchsorted(sub, rows),
            y,
            probs=None if probs is None else probs[sub],
            anomaly=None if emb.anomaly is None else emb.anomaly[sub],
            seed=seed,
            reduced=None if reduced is None else reduced[sub],
        )
        return sub[select(strategy, pool, n)]

    def _probabilities(
        self, label: str, emb: Embeddings, rows: np.ndarray, y: np.ndarray, classifier: str
    ) -> np.ndarray:
        """Stored scores when they are fresh and cover every object, else a classifier fitted in memory."""
        from ssald_index.active import scores
        from ssald_index.active.classify import fit_and_score

        if scores.latest_run(self.db_path, label) is not None and not scores.is_stale(self.db_path, label):
            stored = scores.read_scores(self.db_path, label)
            if stored is not None:
                probs = np.full(len(emb.objids), np.nan, np.float32)
                at = emb.rows_of(stored.column("objid").to_numpy())
                probs[at[at >= 0]] = stored.column("score").to_numpy(zero_copy_only=False)[at >= 0]
                if np.isfinite(probs).all():
                    return probs
        key = (label, classifier, emb.version, rows.tobytes(), y.tobytes())
        if self._fit is None or self._fit[0] != key:
            self._fit = (key, fit_and_score(self._classifier_inputs(emb), rows, y, kind=classifier).scores)
        return self._fit[1]

    def _classifier_inputs(self, emb: Embeddings) -> np.ndarray:
        """The classifier's input in ``emb``'s row order: the embeddings, or with the morphology columns."""
        from ssald_index.active.classify import feature_matrix

        if self.features == "embedding":
            return emb.x
        if self._inputs is None or self._inputs[0] != emb.version:
            morphology = self.spaces.morphology(self._source.store(), emb)
            self._inputs = (emb.version, feature_matrix(emb.x, morphology, self.features, standardised=True))
        return self._inputs[1]

    def submit(
        self,
        labels: list[Label],
        retrain: bool = False,
        classifier: str = "",
        request_id: str = "",
        wanted: Wanted | None = None,
    ) -> Submitted:
        """Write labels (committed to disk when this returns), then retrain each target label if asked.

        All or nothing: with an entry over a limit (:func:`ssald_index.active.labels.check_labels`) or an
        unknown objid nothing is written. A target label that cannot train (one class only) is reported in
        :attr:`RetrainOutcome.skipped`, not raised. Labels are written under the session's write lock; the
        retrains run after it is released.

        Parameters
        ----------
        labels : list of Label
        retrain : bool
            Retrain and rescore each target label (``X`` for ``X`` and ``not_X``).
        classifier : str
            ``logistic`` (``""``) or ``forest``.
        request_id : str
            The caller's id of this request (``""``: none). When labels with this id are already committed,
            nothing is written and the answer repeats the first one's ``n_written`` and ``labels_version``
            with ``replayed`` set (retrains still run when asked, reusing fresh stored scores).
        wanted : callable, optional
            Asked, once the labels are committed, before each retrain and each of its stages
            (:func:`ssald_index.errors.check_wanted`). A retrain cut short stores nothing: the labels stay, the
            label's previous scores stay (and are stale), and the next retrain of that label does the work.

        Raises
        ------
        ValueError
            No labels, an entry over a limit, an unknown classifier, a malformed ``request_id``, a
            ``request_id`` committed before with other labels, or a write that would make the table hold more
            than :data:`~ssald_index.active.labels.MAX_LABEL_NAMES` distinct latest labels.
        ObjectNotFound
            Some objids are not in the table (all named).
        ssald_index.errors.Abandoned
            ``wanted`` answered ``False`` after the labels were committed: a retrain was cut short.
        """
        labels = check_labels(labels)
        if not labels:
            raise ValueError("no labels to submit")
        request_id = check_request_id(request_id)
        classifier = _check_classifier(classifier)
        store = self._source.store()
        with self._write_lock:
            previous = find_request(self.db_path, request_id) if request_id else None
            if previous is not None:
                if sorted(previous.entries) != sorted((x.objid, x.label) for x in labels):
                    raise ValueError(
                        f"request_id {request_id!r} was committed before with other labels; "
                        "use a new request_id for a new request"
                    )
                written = len(previous.entries)
            else:
                self._check_writable(store, labels)
                written = add_labels(self.db_path, labels, request_id)
            summary = self.labels_summary()
        version = previous.labels_version if previous is not None else summary.version
        retrained = []
        if retrain:
            for target in sorted({target_of(entry.label) for entry in labels}):
                retrained.append(self._retrain(target, classifier, wanted))
        return Submitted(written, version, summary.label_counts, retrained, replayed=previous is not None)

    def _check_writable(self, store: ObjectStore, labels: list[Label]) -> None:
        """Raise unless every objid is in the table and the labels keep the distinct names within the limit."""
        wanted = sorted({entry.objid for entry in labels})
        present = store.read(["objid"], where=f"objid IN ({', '.join(map(str, wanted))})").column("objid")
        missing = sorted(set(wanted) - set(present.to_pylist()))
        if missing:
            names = ", ".join(map(str, missing))
            raise ObjectNotFound(missing[0], f"objids not in the objects table: {names}; no label was written")
        latest = latest_labels(self.db_path)
        before = set(latest.values())
        after = set({**latest, **{entry.objid: entry.label for entry in labels}}.values())
        new_names = sorted(after - before)
        if new_names and len(after) > MAX_LABEL_NAMES:
            shown = ", ".join(new_names[:5]) + (" ..." if len(new_names) > 5 else "")
            raise ValueError(
                f"new label names ({shown}) would make {len(after)} distinct labels in the labels table; at most "
                f"{MAX_LABEL_NAMES} are allowed; no label was written"
            )

    def _retrain(self, target: str, classifier: str, wanted: Wanted | None = None) -> RetrainOutcome:
        """Retrain ``target`` (one retrain of a label at a time), or reuse its stored run when it is fresh."""
        from ssald_index.active import scores

        with self._retrain_locks_lock:
            lock = self._retrain_locks.setdefault(target, threading.Lock())
        check_wanted(wanted, f"retraining {target!r}")
        with lock:
            try:
                run = scores.latest_run(self.db_path, target)
            except ValueError:  # no run stored, or scores not written by retrain: retrain overwrites them
                run = None
            fresh = run is not None and (run.classifier, run.features) == (classifier, self.features)
            if fresh and not scores.is_stale(self.db_path, target):
                return RetrainOutcome(target, run)
            try:
                run = scores.retrain(
                    self.db_path, target, classifier=classifier, cv=True, features=self.features, wanted=wanted
                )
            except ValueError as exc:
                return RetrainOutcome(target, None, str(exc))
            return RetrainOutcome(target, run)

    def candidates(
        self,
        label: str,
        n: int = 100,
        filter: Filter | None = None,
        exclude_labelled: bool = False,
        wanted: Wanted | None = None,
    ) -> Candidates:
        """The ``n`` objects of highest stored score for ``label``, with the run behind them.

        ``wanted`` (optional) is asked before the ranking and each read of candidate rows
        (:func:`ssald_index.active.scores.top_candidates`).

        Raises
        ------
        NoClassifier
            No classifier was trained for ``label`` yet.
        ValueError
            Empty label, bad ``n`` or filter.
        ssald_index.errors.Abandoned
            ``wanted`` answered ``False``.
        """
        from ssald_index.active import scores

        label, n = _check_label(label), _check_n(n)
        self._source.store()
        run = scores.latest_run(self.db_path, label)
        if run is None:
            raise NoClassifier(
                f"no classifier trained for label {label!r} yet: submit labels with retrain=True "
                "(SubmitLabels, or `ssald label`) to train one"
            )
        rows = scores.top_candidates(
            self.db_path, label, n, filter=filter, exclude_labelled=exclude_labelled, wanted=wanted
        )
        return Candidates(rows, run, bool(scores.is_stale(self.db_path, label)))

    def map_points(self, color_by: str = "cluster", label: str = "") -> MapPoints:
        """The stored 2-D map of every object, coloured by a column (:data:`ssald_index.maps.MAP_COLOURS`),
        by the latest labels for ``label`` (``color_by="label"``: codes of ``label``, ``not_label``, ``other``)
        or by its classifier score (``color_by="score"``).

        Raises
        ------
        ValueError
            Unknown ``color_by``; ``label`` or ``score`` without a label.
        NoClassifier
            ``score`` for a label never trained.
        """
        from ssald_index.active import scores

        if color_by not in ("label", "score"):
            return map_points(self._source.store(), color_by)
        label = _check_label(label)
        points = map_points(self._source.store(), "cluster")
        if color_by == "score":
            stored = scores.read_scores(self.db_path, label)
            if stored is None:
                raise NoClassifier(f"no classifier trained for label {label!r} yet: no scores to colour the map by")
            by_objid = dict(zip(stored.column("objid").to_pylist(), stored.column("score").to_pylist()))
            values = np.array([by_objid.get(o, np.nan) for o in points.objids.tolist()], dtype=np.float32)
            return MapPoints(points.objids, points.x, points.y, values)
        categories = [label, negative_of(label), "other"]
        latest = latest_labels(self.db_path)
        code = {label: 0.0, negative_of(label): 1.0}
        values = np.array(
            [code.get(latest[o], 2.0) if o in latest else np.nan for o in points.objids.tolist()], dtype=np.float32
        )
        return MapPoints(points.objids, points.x, points.y, values, categories)
