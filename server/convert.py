"""Between messages and Python: proto ↔ rows, filters and score runs, and exceptions → gRPC status codes.

Storage and active-learning errors map to status codes as documented in ``proto/ssald.proto``:

=======================  ====================
``ObjectNotFound``       ``NOT_FOUND``
``ValueError``           ``INVALID_ARGUMENT``
``TableNotReady``        ``UNAVAILABLE``
``NoModel``              ``FAILED_PRECONDITION``
``NoClassifier``         ``FAILED_PRECONDITION``
``TooFewLabels``         ``FAILED_PRECONDITION`` (a learned metric's label has too few labels)
``NoMorphology``         ``FAILED_PRECONDITION`` (a morphology space on a table without morphology)
anything else            ``INTERNAL`` (logged)
=======================  ====================
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import grpc

from proto import ssald_pb2
from ssald_index.active.session import NoClassifier
from ssald_index.feature_space import NoMorphology
from ssald_index.filters import Filter
from ssald_index.metric import TooFewLabels
from ssald_index.store import ObjectNotFound, TableNotReady

__all__ = [
    "NoModel",
    "filter_from_proto",
    "neighbours_to_proto",
    "object_to_proto",
    "optional_fields",
    "score_run_to_proto",
    "status_for_errors",
]

log = logging.getLogger(__name__)

_OBJECT_FIELDS = frozenset(ssald_pb2.Object.DESCRIPTOR.fields_by_name)


class NoModel(RuntimeError):
    """An image query reached a server started without an ONNX model."""


@contextlib.contextmanager
def status_for_errors(context: grpc.ServicerContext) -> Iterator[None]:
    """Turn storage exceptions into the status codes documented in ``ssald.proto`` (table above)."""
    try:
        yield
    except ObjectNotFound as exc:
        context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
    except TableNotReady as exc:
        context.abort(grpc.StatusCode.UNAVAILABLE, f"table not ready: {exc}")
    except (NoModel, NoClassifier, TooFewLabels, NoMorphology) as exc:
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
    except ValueError as exc:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    except Exception as exc:  # noqa: BLE001 - the client gets a status, the log gets the traceback
        log.exception("internal error")
        context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}")


def object_to_proto(row: dict[str, Any]) -> ssald_pb2.Object:
    """Convert a store row to an ``Object`` message.

    Keys that are not ``Object`` fields (``distance``, derived columns) are ignored; ``None`` leaves the
    field unset, which for the ``optional`` fields is how a null crosses the wire.

    Parameters
    ----------
    row : dict
        A row as returned by ``ObjectStore.get`` or ``ObjectStore.neighbours``.

    Returns
    -------
    ssald_pb2.Object
    """
    return ssald_pb2.Object(**{k: v for k, v in row.items() if k in _OBJECT_FIELDS and v is not None})


def filter_from_proto(msg: ssald_pb2.Filter) -> Filter:
    """The :class:`ssald_index.filters.Filter` of a ``Filter`` message."""
    magnitudes = {
        m.column: (m.min if m.HasField("min") else None, m.max if m.HasField("max") else None) for m in msg.magnitudes
    }
    return Filter(
        z_min=msg.z_min if msg.HasField("z_min") else None,
        z_max=msg.z_max if msg.HasField("z_max") else None,
        spec_class=tuple(msg.spec_class),
        bpt_class=tuple(msg.bpt_class),
        magnitudes=magnitudes,
        where=msg.where or None,
    )


def neighbours_to_proto(rows: list[dict[str, Any]], model_id: str) -> ssald_pb2.NeighboursResponse:
    """The ``NeighboursResponse`` of search rows (each with its ``distance``)."""
    neighbours = [ssald_pb2.Neighbour(object=object_to_proto(row), distance=row["distance"]) for row in rows]
    return ssald_pb2.NeighboursResponse(neighbours=neighbours, model_id=model_id)


def score_run_to_proto(run: Any) -> ssald_pb2.ScoreRun:
    """The ``ScoreRun`` message of a :class:`ssald_index.active.scores.ScoreRun` (``trained_at`` as ISO 8601)."""
    trained_at = getattr(run, "trained_at", None)
    return ssald_pb2.ScoreRun(
        label=run.label,
        classifier=run.classifier or "",
        model_id=run.model_id or "",
        label_version=int(run.label_version or 0),
        n_positive=int(run.n_positive),
        n_negative=int(run.n_negative),
        metrics={k: float(v) for k, v in (run.metrics or {}).items()},
        n_objects=int(run.n_objects or 0),
        trained_at=trained_at.isoformat() if hasattr(trained_at, "isoformat") else str(trained_at or ""),
    )


def optional_fields(**fields: Any) -> dict[str, Any]:
    """The keyword arguments that are not ``None``: unset ``optional`` message fields."""
    return {k: v for k, v in fields.items() if v is not None}
