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
``Abandoned``            ``CANCELLED`` (the client gave up; nobody reads the answer)
anything else            ``INTERNAL`` (logged)
=======================  ====================

Every status message goes through :func:`bounded_message`: a request can echo a megabyte of filter or a
hundred thousand objids into an exception, and a status message over gRPC's metadata limit (16 KiB) never
reaches the client, which sees "Stream removed" instead of the real code. Messages are cut to
:data:`MAX_STATUS_BYTES`, long lists of numbers name :data:`MAX_LISTED` and count the rest, and the SQL and
absolute build or server paths that storage errors carry are removed.

Replies never carry the server's folders either: an object's ``source`` (where its stamp was read at
ingest, often an absolute path on the server) reaches the client as :func:`public_source`, the stamp's
file name; ``GetStamp`` with the objid fetches the stamp itself.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from typing import Any

import grpc

from proto import ssald_pb2
from ssald_index.active.session import NoClassifier
from ssald_index.batch import BatchResult
from ssald_index.errors import Abandoned, check_wanted
from ssald_index.feature_space import NoMorphology
from ssald_index.filters import Filter
from ssald_index.metric import TooFewLabels
from ssald_index.schema import OBJID_MAX, OBJID_MIN
from ssald_index.store import ObjectNotFound, TableNotReady

__all__ = [
    "Abandoned",
    "MAX_LISTED",
    "MAX_STATUS_BYTES",
    "NoModel",
    "batch_result_to_proto",
    "bounded_message",
    "catalogued_objid",
    "ensure_wanted",
    "error_status",
    "filter_from_proto",
    "neighbours_to_proto",
    "object_to_proto",
    "optional_fields",
    "public_source",
    "score_run_to_proto",
    "status_for_errors",
]

log = logging.getLogger(__name__)

_OBJECT_FIELDS = frozenset(ssald_pb2.Object.DESCRIPTOR.fields_by_name)
# Folder separators of a source path (POSIX and Windows): public_source keeps what follows the last one.
_SEPARATORS = re.compile(r"[/\\]")

#: Most bytes (UTF-8) of a status message: far under gRPC's 8 KiB soft and 16 KiB hard metadata limits.
MAX_STATUS_BYTES = 1024
#: Most items of a long list of numbers (objids) named in a status message; the rest are counted.
MAX_LISTED = 10
#: Longest run of non-space characters kept whole (a column name, a quoted value); longer ones lose their middle.
_MAX_RUN = 120

# A source location of the Lance/DataFusion build (", /home/runner/work/lance/.../scanner.rs:839:33").
_BUILD_LOCATION = re.compile(r",?\s*(?:[A-Za-z]:)?[/\\][^\s,'\"]*\.rs:\d+(?::\d+)?")
# Any other absolute path of at least two parts (a server's database or model folder).
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~/])/(?:[\w.@+~-]+/)+[\w.@+~-]*")
# The statement a storage error wraps around the user's filter ("SELECT 1 FROM t WHERE ((z >))").
_SQL_STATEMENT = re.compile(r"\bSELECT\s+.*?\s+FROM\s+\S+\s+WHERE\s+", re.IGNORECASE | re.DOTALL)
_NUMBER_LIST = re.compile(rf"-?\d+(?:,\s*-?\d+){{{MAX_LISTED},}}")
_LONG_RUN = re.compile(rf"\S{{{_MAX_RUN + 1},}}")


def _abbreviate_list(match: re.Match[str]) -> str:
    items = re.split(r",\s*", match.group(0))
    return f"{', '.join(items[:MAX_LISTED])} and {len(items) - MAX_LISTED} more"


def _shorten_run(match: re.Match[str]) -> str:
    run, keep = match.group(0), _MAX_RUN // 2
    return f"{run[:keep]}…[{len(run) - 2 * keep} characters]…{run[-keep:]}"


def bounded_message(text: str, limit: int = MAX_STATUS_BYTES) -> str:
    """A status message fit to send: no internal SQL or paths, lists and runs shortened, at most ``limit`` bytes.

    Parameters
    ----------
    text : str
        The exception's message, which may echo a request of any size.
    limit : int
        Most UTF-8 bytes of the result, the truncation marker included.

    Returns
    -------
    str
        ``text`` with Lance/DataFusion source locations dropped, the ``SELECT ... WHERE`` wrapped around a
        filter removed (the filter itself, as sent, stays), absolute paths replaced by ``<path>``, lists of
        more than :data:`MAX_LISTED` numbers cut to that many ``and N more``, and runs of over 120
        non-space characters cut in the middle; then cut to ``limit`` bytes, ending ``… [N more bytes]``.
    """
    text = _BUILD_LOCATION.sub("", text)
    text = _SQL_STATEMENT.sub("", text)
    text = _ABSOLUTE_PATH.sub("<path>", text)
    text = _NUMBER_LIST.sub(_abbreviate_list, text)
    text = _LONG_RUN.sub(_shorten_run, text)
    raw = text.encode()
    if len(raw) <= limit:
        return text
    marker = f"… [{len(raw)} bytes in all]"
    return raw[: max(0, limit - len(marker.encode()))].decode(errors="ignore") + marker


def catalogued_objid(objid: int) -> int:
    """``objid`` of a request, if it can be in the ``objects`` table.

    Objids are ``OBJID_MIN .. OBJID_MAX`` (:mod:`ssald_index.schema`): any other int64 names no object, so
    it is ``NOT_FOUND`` like any unknown objid, decided here rather than by the storage query (which fails
    on ``-2**63`` with a DataFusion literal error).

    Raises
    ------
    ObjectNotFound
        If ``objid`` is outside ``OBJID_MIN .. OBJID_MAX``.
    """
    if not OBJID_MIN <= objid <= OBJID_MAX:
        raise ObjectNotFound(objid, f"objid {objid} is not in the objects table (objids are 1..2**63-1)")
    return objid


class NoModel(RuntimeError):
    """An image query reached a server started without an ONNX model."""


def ensure_wanted(context: grpc.ServicerContext, step: str) -> None:
    """Raise :class:`~ssald_index.errors.Abandoned` when the call's client has gone, so that long work stops
    before ``step``.

    gRPC itself never starts a call whose client gave up while it waited for a worker thread; this is
    the check between the stages of a call that is already running. Work in ``ssald_index`` makes the same
    check itself when given ``wanted=context.is_active``.
    """
    check_wanted(context.is_active, step)


def error_status(exc: Exception) -> tuple[grpc.StatusCode, str]:
    """The status code of an exception (table above) and its bounded message; ``INTERNAL`` ones are logged."""
    if isinstance(exc, ObjectNotFound):
        return grpc.StatusCode.NOT_FOUND, bounded_message(str(exc))
    if isinstance(exc, TableNotReady):
        return grpc.StatusCode.UNAVAILABLE, bounded_message(f"table not ready: {exc}")
    if isinstance(exc, Abandoned):
        log.info("%s", exc)
        return grpc.StatusCode.CANCELLED, bounded_message(str(exc))
    if isinstance(exc, (NoModel, NoClassifier, TooFewLabels, NoMorphology)):
        return grpc.StatusCode.FAILED_PRECONDITION, bounded_message(str(exc))
    if isinstance(exc, ValueError):
        return grpc.StatusCode.INVALID_ARGUMENT, bounded_message(str(exc))
    log.error("internal error", exc_info=exc)
    return grpc.StatusCode.INTERNAL, bounded_message(f"internal error: {type(exc).__name__}: {exc}")


@contextlib.contextmanager
def status_for_errors(context: grpc.ServicerContext) -> Iterator[None]:
    """Turn exceptions into the status codes documented in ``ssald.proto`` (:func:`error_status`)."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - every exception becomes a status; INTERNAL ones are logged
        context.abort(*error_status(exc))


def public_source(source: str) -> str:
    """Where a stamp came from, as a client may see it: its file name, without the server's folders.

    The ``source`` column holds what ingest read, often an absolute path on the server
    (``/srv/survey/stamps/1237648720693755918.fits``), which would tell a client how the server's disks
    are laid out. Clients get the last part only (``1237648720693755918.fits``; ``cube.h5[12]`` for row 12
    of an array file, ``1237648720693755918_{band}.fits`` for per-band files, ``cutout(RA,DEC)`` as
    stored); the objid is the reference that fetches the stamp (``GetStamp``).

    Parameters
    ----------
    source : str
        A value of the ``source`` column.

    Returns
    -------
    str
    """
    return _SEPARATORS.split(source.rstrip("/\\"))[-1]


def object_to_proto(row: dict[str, Any]) -> ssald_pb2.Object:
    """Convert a store row to an ``Object`` message.

    Keys that are not ``Object`` fields (``distance``, derived columns) are ignored; ``None`` leaves the
    field unset, which for the ``optional`` fields is how a null crosses the wire. ``source`` is sent as
    :func:`public_source`.

    Parameters
    ----------
    row : dict
        A row as returned by ``ObjectStore.get`` or ``ObjectStore.neighbours``.

    Returns
    -------
    ssald_pb2.Object
    """
    fields = {k: v for k, v in row.items() if k in _OBJECT_FIELDS and v is not None}
    if "source" in fields:
        fields["source"] = public_source(fields["source"])
    return ssald_pb2.Object(**fields)


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


def batch_result_to_proto(result: BatchResult, model_id: str) -> ssald_pb2.BatchNeighbours:
    """The ``BatchNeighbours`` message of one :class:`ssald_index.batch.BatchResult`, its error as a status."""
    msg = ssald_pb2.BatchNeighbours(
        index=result.index,
        neighbours=neighbours_to_proto(result.neighbours, "").neighbours,
        model_id=model_id,
        **optional_fields(objid=result.objid),
    )
    if result.match is not None:
        msg.match.CopyFrom(object_to_proto(result.match))
        msg.separation_arcsec = result.match["separation_arcsec"]
    if result.error is not None:
        code, message = error_status(result.error)
        msg.error.CopyFrom(ssald_pb2.BatchError(code=code.name, message=message))
    return msg


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
