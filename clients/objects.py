"""Plain Python objects of the SSALD client and their conversion from and to protobuf messages.

:mod:`clients.client` re-exports the public classes; import them from there or from :mod:`clients`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from clients.errors import InvalidArgument
from proto import ssald_pb2

__all__ = ["ConeMatch", "GalaxyObject", "Neighbour"]


@dataclass(frozen=True)
class GalaxyObject:
    """One object of the ``objects`` table. Fields that are null in the table are ``None``.

    Attributes
    ----------
    objid : int
    ra, dec : float
        Degrees (ICRS).
    survey, bands, source : str
        Survey name, comma-separated band names, where the stamp came from.
    mag_u, mag_g, mag_r, mag_i, mag_z : float or None
        Photometry.
    specobjid : int or None
    z, z_err : float or None
        Spectroscopic redshift and its error.
    spec_class, spec_subclass, bpt_class : str or None
        Spectroscopic classification.
    truth_class : str or None
        Ground-truth class (synthetic survey only).
    model_id : str
        The encoder that produced the embedding.
    embedding : tuple of float or None
        L2-normalised embedding, only when asked for (``get_object(..., with_embedding=True)``).
    density_score : float or None
        Anomaly score (larger = lower density), with the scorer in ``density_model``.
    cluster : int or None
    map_x, map_y : float or None
        Cluster label and 2-D map coordinates, when computed.
    """

    objid: int
    ra: float
    dec: float
    survey: str
    bands: str
    source: str
    mag_u: float | None
    mag_g: float | None
    mag_r: float | None
    mag_i: float | None
    mag_z: float | None
    specobjid: int | None
    z: float | None
    z_err: float | None
    spec_class: str | None
    spec_subclass: str | None
    bpt_class: str | None
    truth_class: str | None
    model_id: str
    embedding: tuple[float, ...] | None = None
    density_score: float | None = None
    cluster: int | None = None
    map_x: float | None = None
    map_y: float | None = None
    density_model: str | None = None


@dataclass(frozen=True)
class Neighbour(GalaxyObject):
    """A :class:`GalaxyObject` found near a query, with its cosine ``distance`` to it (0 = same direction).

    ``embedding`` is always ``None`` here; ask :meth:`SsaldClient.get_object` for it.
    """

    distance: float = field(kw_only=True)


_METADATA = tuple(f.name for f in dataclasses.fields(GalaxyObject) if f.name != "embedding")


@dataclass(frozen=True)
class ConeMatch:
    """Answer of :meth:`SsaldClient.cone_search`: the matched object, its separation and its neighbours."""

    match: GalaxyObject
    separation_arcsec: float
    neighbours: list[Neighbour]


def _filter(
    z_min: float | None = None,
    z_max: float | None = None,
    spec_class: Sequence[str] | str = (),
    bpt_class: Sequence[str] | str = (),
    magnitudes: Mapping[str, tuple[float | None, float | None]] | None = None,
    where: str | None = None,
) -> ssald_pb2.Filter:
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
    return _request(ssald_pb2.Filter, **fields)


# Proto3 `optional` fields have presence: unset means null in the table. Looked up once, not per message.
_PRESENCE = frozenset(name for name in _METADATA if ssald_pb2.Object.DESCRIPTOR.fields_by_name[name].has_presence)


def _metadata_from_proto(msg: ssald_pb2.Object) -> dict[str, Any]:
    return {name: None if name in _PRESENCE and not msg.HasField(name) else getattr(msg, name) for name in _METADATA}


def _object_from_proto(msg: ssald_pb2.Object) -> GalaxyObject:
    embedding = tuple(msg.embedding) if msg.embedding else None
    return GalaxyObject(**_metadata_from_proto(msg), embedding=embedding)


def _neighbour_from_proto(msg: ssald_pb2.Neighbour) -> Neighbour:
    return Neighbour(**_metadata_from_proto(msg.object), distance=msg.distance)


def _request(message_type: Any, **fields: Any) -> Any:
    # Protobuf rejects out-of-range integers (k beyond int32) with a bare ValueError/TypeError.
    try:
        return message_type(**fields)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"bad request {fields}: {exc}", "INVALID_ARGUMENT") from None
