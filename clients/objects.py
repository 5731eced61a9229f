"""Plain Python objects of the SSALD client (the conversion from and to protobuf is :mod:`clients.conversions`).

:mod:`clients.client` re-exports the public classes; import them from there or from :mod:`clients`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from clients.errors import SsaldError

__all__ = ["BatchResult", "ConeMatch", "GalaxyObject", "InCone", "Neighbour", "ObjectInCone"]


@dataclass(frozen=True)
class GalaxyObject:
    """One object of the ``objects`` table. Fields that are null in the table are ``None``.

    Attributes
    ----------
    objid : int
    ra, dec : float
        Degrees (ICRS).
    survey, bands, source : str
        Survey name, comma-separated band names, and the stamp's file name (the server never sends its
        folders; ``SsaldClient.stamp_png(objid)`` fetches the stamp).
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


@dataclass(frozen=True)
class ConeMatch:
    """Answer of :meth:`SsaldClient.cone_search`: the matched object, its separation and its neighbours."""

    match: GalaxyObject
    separation_arcsec: float
    neighbours: list[Neighbour]


@dataclass(frozen=True)
class ObjectInCone(GalaxyObject):
    """A :class:`GalaxyObject` found by :meth:`SsaldClient.objects_in_cone`, ``separation_arcsec`` from the centre."""

    separation_arcsec: float = field(kw_only=True)


@dataclass(frozen=True)
class InCone:
    """Answer of :meth:`SsaldClient.objects_in_cone`: iterate it for the objects, nearest first.

    ``n_found`` counts every object in the cone; more than ``len(self)`` when the limit cut the list.
    """

    objects: list[ObjectInCone]
    n_found: int

    def __iter__(self) -> Iterator[ObjectInCone]:
        return iter(self.objects)

    def __len__(self) -> int:
        return len(self.objects)

    @property
    def truncated(self) -> bool:
        """Whether the limit left objects of the cone out."""
        return self.n_found > len(self.objects)


@dataclass
class BatchResult:
    """One input's answer in :meth:`SsaldClient.find_similar_batch`: its neighbours, or its error as a value.

    Attributes
    ----------
    index : int
        The input's position: objids first (``0 .. len(objids) - 1``), then positions.
    objid : int or None
        The query object: the input objid, or the object matched to a position (None when none was).
    neighbours : list of Neighbour
        Nearest first; empty when ``error`` is set.
    match : GalaxyObject or None
        For a position input, the object matched to it.
    separation_arcsec : float or None
        For a position input, the match's distance from the position.
    error : SsaldError or None
        Why this input failed (e.g. :class:`~clients.errors.NotFound` for an unknown objid or no object
        within the radius), not raised: the other inputs are answered.
    """

    index: int
    objid: int | None
    neighbours: list[Neighbour]
    match: GalaxyObject | None = None
    separation_arcsec: float | None = None
    error: SsaldError | None = None

    @property
    def ok(self) -> bool:
        """True when this input was answered (``error`` is None)."""
        return self.error is None
