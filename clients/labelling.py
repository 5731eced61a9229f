"""The active-learning calls of :class:`clients.client.SsaldClient` and the plain objects they return.

``next_to_label`` asks which objects to label, ``submit_labels`` stores labels (durable when it returns)
and may retrain, ``candidates`` ranks objects by the stored classifier score and ``stamp_png`` fetches a
stamp to look at. A "no" to "is this X?" is stored as the label ``not_X``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from clients.conversions import filter_message, make_request, metadata_from_proto
from clients.errors import DeadlineExceeded, InvalidArgument, Unavailable
from clients.objects import GalaxyObject
from proto import ssald_pb2

__all__ = [
    "Candidate",
    "CandidateList",
    "LabelBatch",
    "LabellingCalls",
    "Retrained",
    "ScoreRun",
    "SubmitResult",
    "ToLabel",
    "SUBMIT_RETRIES",
]

#: Retries of a ``submit_labels`` call answered ``UNAVAILABLE`` or ``DEADLINE_EXCEEDED`` (with the same
#: request id, so labels the server had already committed are not written twice), and the first pause
#: between tries in seconds (doubled after each).
SUBMIT_RETRIES = 3
SUBMIT_RETRY_PAUSE = 0.5


@dataclass(frozen=True)
class ToLabel(GalaxyObject):
    """An object the active-learning strategy wants labelled, and why.

    Attributes
    ----------
    reason : str
        The strategy that chose it, or ``cold_start:example`` / ``cold_start:anomalies`` /
        ``cold_start:random`` while the label has nothing to learn from yet.
    probability : float or None
        Current classifier probability of the label, when there is a classifier.
    similarity : float or None
        Cosine similarity to the seed object (or latest positive) for ``cold_start:example``.
    """

    reason: str = field(kw_only=True)
    probability: float | None = field(default=None, kw_only=True)
    similarity: float | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class LabelBatch:
    """Answer of :meth:`SsaldClient.next_to_label`: iterate it for the objects, most wanted first."""

    items: list[ToLabel]
    strategy: str
    n_positive: int
    n_negative: int

    def __iter__(self) -> Iterator[ToLabel]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


# The client's mirror of ssald_index.active.scores.ScoreRun, as the ScoreRun message carries it: the client
# library may import only the proto stubs, so the two declarations of the same fields cannot be shared.
# pylint: disable=duplicate-code
@dataclass(frozen=True)
class ScoreRun:
    """One classifier training: what it learned from and its cross-validated ``metrics``
    (``cv_roc_auc``, ``cv_average_precision``; empty with fewer than two labels of a class)."""

    label: str
    classifier: str
    model_id: str | None
    label_version: int
    n_positive: int
    n_negative: int
    metrics: dict[str, float]
    n_objects: int
    trained_at: datetime | None


# pylint: enable=duplicate-code


@dataclass(frozen=True)
class Retrained:
    """Retraining of one target label after :meth:`SsaldClient.submit_labels`: ``run``, or why it was ``skipped``."""

    label: str
    run: ScoreRun | None
    skipped: str


@dataclass(frozen=True)
class SubmitResult:
    """Answer of :meth:`SsaldClient.submit_labels`; the labels were on disk when it was sent.

    ``replayed`` is true when the server had committed this request (its ``request_id``) before, e.g. on a
    try whose reply was lost: nothing was written twice, and ``n_written`` / ``labels_version`` are the
    first write's.
    """

    n_written: int
    labels_version: int
    label_counts: dict[str, int]
    retrained: list[Retrained]
    request_id: str = ""
    replayed: bool = False


@dataclass(frozen=True)
class Candidate(GalaxyObject):
    """An object ranked by classifier ``score`` for a label, with its latest label (``current_label``) if any."""

    score: float = field(kw_only=True)
    current_label: str | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class CandidateList:
    """Answer of :meth:`SsaldClient.candidates`: the candidates (highest score first), the run behind the
    scores, and whether labels were added since (``stale``)."""

    candidates: list[Candidate]
    run: ScoreRun
    stale: bool

    def __iter__(self) -> Iterator[Candidate]:
        return iter(self.candidates)

    def __len__(self) -> int:
        return len(self.candidates)


def _score_run_from_proto(msg: ssald_pb2.ScoreRun) -> ScoreRun:
    return ScoreRun(
        label=msg.label,
        classifier=msg.classifier,
        model_id=msg.model_id or None,
        label_version=msg.label_version,
        n_positive=msg.n_positive,
        n_negative=msg.n_negative,
        metrics=dict(msg.metrics),
        n_objects=msg.n_objects,
        trained_at=datetime.fromisoformat(msg.trained_at) if msg.trained_at else None,
    )


def _label_entry(item: Any, user: str) -> ssald_pb2.LabelEntry:
    """A ``LabelEntry`` from ``(objid, label)``, ``(objid, label, note)`` or a mapping/object with those names."""
    if isinstance(item, Mapping):
        fields = dict(item)
    elif isinstance(item, tuple):
        if not 2 <= len(item) <= 3:
            raise InvalidArgument(f"a label tuple is (objid, label[, note]), got {item!r}", "INVALID_ARGUMENT")
        fields = dict(zip(("objid", "label", "note"), item))
    else:
        fields = {name: getattr(item, name) for name in ("objid", "label", "user", "note") if hasattr(item, name)}
    if "objid" not in fields or "label" not in fields:
        raise InvalidArgument(f"a label needs an objid and a label, got {item!r}", "INVALID_ARGUMENT")
    fields.setdefault("user", user)
    fields["user"] = fields["user"] or user
    return make_request(ssald_pb2.LabelEntry, **{k: fields.get(k, "") for k in ("objid", "label", "user", "note")})


class LabellingCalls:
    """The active-learning RPCs; mixed into :class:`clients.client.SsaldClient`, which provides ``_call``
    (one RPC with the client's timeout and typed errors) and ``_stub``."""

    _stub: Any

    def _call(self, method: Any, request: Any) -> Any:
        raise NotImplementedError

    def next_to_label(
        self,
        label: str,
        n: int = 10,
        strategy: str = "",
        seed_objid: int | None = None,
        classifier: str = "",
        exclude_objids: Sequence[int] = (),
        **filters: Any,
    ) -> LabelBatch:
        """The ``n`` objects whose label would teach the classifier of ``label`` most; none already labelled.

        Parameters
        ----------
        label : str
            Target label, e.g. ``"dual_nucleus"``.
        n : int
            1..1000.
        strategy : str
            ``random``, ``top``, ``uncertainty``, ``margin``, ``entropy``, ``committee``, ``diversity``,
            ``anomaly`` or ``gp_ei``; ``""`` is the server's default (``gp_ei``).
        seed_objid : int, optional
            A known example: while the label has no positive yet, its neighbours come first (else the
            most anomalous objects do).
        classifier : str
            ``logistic`` or ``forest``, for strategies that need probabilities ("" = logistic).
        exclude_objids : sequence of int
            Never proposed either (e.g. objects skipped this session); the next choices replace them.
        **filters
            As for :meth:`find_similar`: only matching objects are proposed.

        Raises
        ------
        InvalidArgument
            Empty label, bad ``n``, unknown strategy (the message lists them) or filter.
        NotFound
            Unknown ``seed_objid``.
        """
        fields: dict[str, Any] = {
            "label": label,
            "n": n,
            "strategy": strategy,
            "classifier": classifier,
            "exclude_objids": [int(o) for o in exclude_objids],
        }
        if seed_objid is not None:
            fields["seed_objid"] = seed_objid
        request = make_request(ssald_pb2.NextToLabelRequest, **fields, filter=filter_message(**filters))
        reply = self._call(self._stub.NextToLabel, request)
        items = [
            ToLabel(
                **metadata_from_proto(item.object),
                reason=item.reason,
                probability=item.probability if item.HasField("probability") else None,
                similarity=item.similarity if item.HasField("similarity") else None,
            )
            for item in reply.items
        ]
        return LabelBatch(items, reply.strategy, reply.n_positive, reply.n_negative)

    def submit_labels(
        self,
        labels: Sequence[Any],
        retrain: bool = False,
        classifier: str = "",
        user: str = "",
        request_id: str | None = None,
        retries: int = SUBMIT_RETRIES,
    ) -> SubmitResult:
        """Store labels; when this returns they are on the server's disk. Optionally retrain and rescore.

        Safe to retry: the call carries a request id, and a retry of a request the server had committed
        writes nothing twice. ``UNAVAILABLE`` and ``DEADLINE_EXCEEDED`` answers are retried here, up to
        ``retries`` times with the same id (pauses of 0.5 s, 1 s, 2 s ...).

        Parameters
        ----------
        labels : sequence
            Each ``(objid, label)``, ``(objid, label, note)``, or a dict/object with ``objid``, ``label``
            and optionally ``user``, ``note``. A "no" to "is this X?" is the label ``not_X``. At most 10,000
            per call; a label is ``[A-Za-z0-9_]+`` of at most 64 characters (the limits are listed at
            ``SubmitLabels`` in ``proto/ssald.proto``).
        retrain : bool
            Retrain the classifier of each target label (``X`` for ``X`` and ``not_X``) and rescore every
            object; the cross-validated metrics come back in ``retrained``.
        classifier : str
            ``logistic`` (default) or ``forest``.
        user : str
            Recorded with labels that do not name their own user.
        request_id : str, optional
            This request's id (``[A-Za-z0-9._:-]``, at most 128 characters); a new uuid4 when not given
            (returned in :attr:`SubmitResult.request_id`). Choose one yourself to be able to retry a call that
            failed later on (e.g. once the server is back) without writing its labels twice.
        retries : int
            Retries after ``UNAVAILABLE`` / ``DEADLINE_EXCEEDED`` (0: none).

        Raises
        ------
        NotFound
            Some objids are not in the table (the message names them); nothing was written.
        InvalidArgument
            No labels, an entry over a limit, an unknown classifier, or a ``request_id`` used before for other
            labels; nothing was written.
        Unavailable, DeadlineExceeded
            Every try failed so; the labels may or may not be committed: retry with the same ``request_id``.
        """
        entries = [_label_entry(item, user) for item in labels]
        request_id = str(uuid.uuid4()) if request_id is None else request_id
        request = make_request(
            ssald_pb2.SubmitLabelsRequest,
            labels=entries,
            retrain=retrain,
            classifier=classifier,
            request_id=request_id,
        )
        for attempt in range(retries + 1):
            try:
                reply = self._call(self._stub.SubmitLabels, request)
                break
            except (Unavailable, DeadlineExceeded):
                if attempt == retries:
                    raise
                time.sleep(SUBMIT_RETRY_PAUSE * 2**attempt)
        retrained = [
            Retrained(r.label, _score_run_from_proto(r.run) if r.HasField("run") else None, r.skipped)
            for r in reply.retrained
        ]
        return SubmitResult(
            reply.n_written, reply.labels_version, dict(reply.label_counts), retrained, request_id, reply.replayed
        )

    def candidates(self, label: str, n: int = 100, exclude_labelled: bool = False, **filters: Any) -> CandidateList:
        """The ``n`` objects of highest classifier score for ``label`` (scores stored by the last retrain).

        Raises
        ------
        SsaldError
            ``FAILED_PRECONDITION`` when no classifier was trained for ``label`` yet
            (:meth:`submit_labels` with ``retrain=True`` trains one).
        InvalidArgument
            Empty label, ``n`` outside [1, 1000], bad filter.
        """
        request = make_request(
            ssald_pb2.CandidatesRequest,
            label=label,
            n=n,
            exclude_labelled=exclude_labelled,
            filter=filter_message(**filters),
        )
        reply = self._call(self._stub.Candidates, request)
        candidates = [
            Candidate(
                **metadata_from_proto(c.object),
                score=c.score,
                current_label=c.current_label if c.HasField("current_label") else None,
            )
            for c in reply.candidates
        ]
        return CandidateList(candidates, _score_run_from_proto(reply.run), reply.stale)

    def stamp_png(self, objid: int) -> bytes:
        """The object's stamp as PNG bytes (Lupton RGB, north up).

        Raises
        ------
        NotFound
            Unknown objid, or the server cannot find its stamp file (the message names the file).
        """
        request = make_request(ssald_pb2.GetStampRequest, objid=objid)
        return bytes(self._call(self._stub.GetStamp, request).png)
