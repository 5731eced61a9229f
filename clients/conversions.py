"""Conversions between the client's plain Python objects and the protobuf messages of ``proto/ssald.proto``.

Kept apart from :mod:`clients.objects` so that the objects a user holds say nothing about the wire format,
and so that :mod:`clients.client` and :mod:`clients.labelling` share one conversion of each message.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from clients.errors import InvalidArgument, from_status
from clients.objects import BatchResult, GalaxyObject, Neighbour, ObjectInCone
from proto import ssald_pb2

__all__ = [
    "METADATA_FIELDS",
    "batch_result_from_proto",
    "filter_message",
    "metadata_from_proto",
    "neighbour_from_proto",
    "object_in_cone_from_proto",
    "object_from_proto",
    "make_request",
]

#: The metadata fields of :class:`GalaxyObject`, in the order of the dataclass (the embedding is not metadata).
METADATA_FIELDS = tuple(f.name for f in dataclasses.fields(GalaxyObject) if f.name != "embedding")


def filter_message(
    z_min: float | None = None,
    z_max: float | None = None,
    spec_class: Sequence[str] | str = (),
    bpt_class: Sequence[str] | str = (),
    magnitudes: Mapping[str, tuple[float | None, float | None]] | None = None,
    where: str | None = None,
) -> ssald_pb2.Filter:
    """The ``Filter`` message of the client's keyword filters (a single class may be given as a string)."""
    spec = [spec_class] if isinstance(spec_class, str) else list(spec_class)
    bpt = [bpt_class] if isinstance(bpt_class, str) else list(bpt_class)
    mags = [
        ssald_pb2.MagnitudeRange(column=column, **{k: v for k, v in (("min", lo), ("max", hi)) if v is not None})
        for column, (lo, hi) in (magnitudes or {}).items()
    ]
    fields: dict[str, Any] = {"spec_class": spec, "bpt_class": bpt, "magnitudes": mags, "where": where or ""}
    if z_min is not None:
        fields["z_min"] = z_min
    if z_max is not None:
        fields["z_max"] = z_max
    return make_request(ssald_pb2.Filter, **fields)


#: Proto3 `optional` fields have presence: unset means null in the table. Looked up once, not per message.
_PRESENCE = frozenset(name for name in METADATA_FIELDS if ssald_pb2.Object.DESCRIPTOR.fields_by_name[name].has_presence)


def metadata_from_proto(msg: ssald_pb2.Object) -> dict[str, Any]:
    """The metadata fields of an ``Object`` message, unset optional fields as ``None``."""
    return {
        name: None if name in _PRESENCE and not msg.HasField(name) else getattr(msg, name) for name in METADATA_FIELDS
    }


def object_from_proto(msg: ssald_pb2.Object) -> GalaxyObject:
    """A :class:`GalaxyObject` from an ``Object`` message (with its embedding when the message carries one)."""
    embedding = tuple(msg.embedding) if msg.embedding else None
    return GalaxyObject(**metadata_from_proto(msg), embedding=embedding)


def neighbour_from_proto(msg: ssald_pb2.Neighbour) -> Neighbour:
    """A :class:`Neighbour` from a ``Neighbour`` message."""
    return Neighbour(**metadata_from_proto(msg.object), distance=msg.distance)


def object_in_cone_from_proto(msg: ssald_pb2.ObjectInCone) -> ObjectInCone:
    """An :class:`ObjectInCone` from an ``ObjectInCone`` message."""
    return ObjectInCone(**metadata_from_proto(msg.object), separation_arcsec=msg.separation_arcsec)


def batch_result_from_proto(msg: ssald_pb2.BatchNeighbours) -> BatchResult:
    """A :class:`BatchResult` from a ``BatchNeighbours`` message, its error as a typed exception value."""
    matched = msg.HasField("match")
    return BatchResult(
        index=msg.index,
        objid=msg.objid if msg.HasField("objid") else None,
        neighbours=[neighbour_from_proto(n) for n in msg.neighbours],
        match=object_from_proto(msg.match) if matched else None,
        separation_arcsec=msg.separation_arcsec if matched else None,
        error=from_status(msg.error.code, msg.error.message) if msg.HasField("error") else None,
    )


def make_request(message_type: Any, **fields: Any) -> Any:
    """``message_type(**fields)``, with protobuf's bare ValueError/TypeError (an integer beyond int32, a wrong
    type) turned into :class:`~clients.errors.InvalidArgument` naming the fields."""
    try:
        return message_type(**fields)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"bad request {fields}: {exc}", "INVALID_ARGUMENT") from None
