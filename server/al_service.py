"""The active-learning RPCs of ``ssald.v1.Ssald``: ``NextToLabel``, ``SubmitLabels``, ``Candidates``, ``GetStamp``.

:class:`ActiveLearningServicer` only converts: requests to calls of
:class:`ssald_index.active.session.ActiveLearning`, its typed answers to messages, its exceptions to status
codes (:func:`server.convert.status_for_errors`). :class:`server.service.SsaldServicer` inherits these RPCs.
Each long call gets ``wanted=context.is_active``, so its work stops between stages once the client has gone
(``CANCELLED``).
"""

from __future__ import annotations

import grpc

from proto import ssald_pb2
from server.convert import (
    catalogued_objid,
    filter_from_proto,
    object_to_proto,
    optional_fields,
    public_source,
    score_run_to_proto,
    status_for_errors,
)
from server.handle import StoreHandle
from ssald_index.active.labels import Label, check_labels
from ssald_index.active.session import ActiveLearning, Candidates, Proposals, Submitted
from ssald_index.errors import ObjectNotFound
from ssald_index.schema import OBJID_MAX, OBJID_MIN

__all__ = ["ActiveLearningServicer", "proposals_to_proto", "submitted_to_proto", "candidates_to_proto"]


def proposals_to_proto(answer: Proposals) -> ssald_pb2.NextToLabelResponse:
    """The ``NextToLabelResponse`` of :meth:`ActiveLearning.next_to_label`'s answer."""
    items = [
        ssald_pb2.LabelRequestItem(
            object=object_to_proto(item.row),
            reason=item.reason,
            **optional_fields(probability=item.probability, similarity=item.similarity),
        )
        for item in answer.items
    ]
    return ssald_pb2.NextToLabelResponse(
        items=items, strategy=answer.strategy, n_positive=answer.n_positive, n_negative=answer.n_negative
    )


def submitted_to_proto(answer: Submitted) -> ssald_pb2.SubmitLabelsResponse:
    """The ``SubmitLabelsResponse`` of :meth:`ActiveLearning.submit`'s answer."""
    retrained = [
        ssald_pb2.RetrainResult(
            label=r.label, skipped=r.skipped, **optional_fields(run=r.run and score_run_to_proto(r.run))
        )
        for r in answer.retrained
    ]
    return ssald_pb2.SubmitLabelsResponse(
        n_written=answer.n_written,
        labels_version=answer.labels_version,
        label_counts=answer.label_counts,
        retrained=retrained,
        replayed=answer.replayed,
    )


def candidates_to_proto(answer: Candidates) -> ssald_pb2.CandidatesResponse:
    """The ``CandidatesResponse`` of :meth:`ActiveLearning.candidates`' answer."""
    candidates = [
        ssald_pb2.Candidate(
            object=object_to_proto(row), score=row["score"], **optional_fields(current_label=row.get("label"))
        )
        for row in answer.candidates
    ]
    return ssald_pb2.CandidatesResponse(candidates=candidates, run=score_run_to_proto(answer.run), stale=answer.stale)


class ActiveLearningServicer:
    """The active-learning RPCs, over the servicer's ``active_learning`` session and store handle.

    A mixin of :class:`server.service.SsaldServicer`, which sets both attributes.
    """

    active_learning: ActiveLearning
    handle: StoreHandle

    def NextToLabel(self, request: ssald_pb2.NextToLabelRequest, context: grpc.ServicerContext):  # noqa: N802
        with status_for_errors(context):
            answer = self.active_learning.next_to_label(
                request.label,
                request.n,
                strategy=request.strategy,
                seed_objid=request.seed_objid if request.HasField("seed_objid") else None,
                filter=filter_from_proto(request.filter),
                classifier=request.classifier,
                exclude_objids=request.exclude_objids,
                wanted=context.is_active,
            )
            return proposals_to_proto(answer)

    def SubmitLabels(self, request: ssald_pb2.SubmitLabelsRequest, context: grpc.ServicerContext):  # noqa: N802
        with status_for_errors(context):
            # The limits first: an oversized request is INVALID_ARGUMENT whatever its objids.
            labels = check_labels(Label(e.objid, e.label, e.user, e.note) for e in request.labels)
            outside = [e.objid for e in labels if not OBJID_MIN <= e.objid <= OBJID_MAX]
            if outside:
                raise ObjectNotFound(None, f"objids not in the objects table (objids are 1..2**63-1): {outside}")
            # The labels are committed first; a retrain whose client has gone stops between stages (CANCELLED).
            answer = self.active_learning.submit(
                labels,
                retrain=request.retrain,
                classifier=request.classifier,
                request_id=request.request_id,
                wanted=context.is_active,
            )
            return submitted_to_proto(answer)

    def Candidates(self, request: ssald_pb2.CandidatesRequest, context: grpc.ServicerContext):  # noqa: N802
        with status_for_errors(context):
            answer = self.active_learning.candidates(
                request.label,
                request.n,
                filter=filter_from_proto(request.filter),
                exclude_labelled=request.exclude_labelled,
                wanted=context.is_active,
            )
            return candidates_to_proto(answer)

    def GetStamp(self, request: ssald_pb2.GetStampRequest, context: grpc.ServicerContext):  # noqa: N802
        from encoders.stamps.render import png_of_stamp  # Pillow and the normaliser load on the first stamp

        with status_for_errors(context):
            objid = catalogued_objid(request.objid)
            row = self.handle.store().get(objid)
            name = public_source(row["source"] or "")
            try:
                png = png_of_stamp(row["source"], f"stamp file {name!r} of objid {objid}")
            except FileNotFoundError as exc:
                raise ObjectNotFound(objid, str(exc)) from None
            return ssald_pb2.Stamp(objid=objid, png=png, source=name)
