"""Python client for the SSALD gRPC service: plain Python values in and out, no protobuf.

Example
-------
>>> with SsaldClient("127.0.0.1:50051") as client:          # doctest: +SKIP
...     for n in client.find_similar(1237648720693755918, k=5):
...         print(n.objid, round(n.distance, 3), n.z, n.spec_class)

Every RPC carries the client's timeout; failures raise the typed exceptions of :mod:`clients.errors`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc

from clients.errors import InvalidArgument, Unavailable, from_rpc_error
from proto import ssald_pb2, ssald_pb2_grpc

__all__ = [
    "Candidate",
    "CandidateList",
    "ConeMatch",
    "GalaxyObject",
    "LabelBatch",
    "Neighbour",
    "Retrained",
    "ScoreRun",
    "SsaldClient",
    "SubmitResult",
    "ToLabel",
]


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


@dataclass(frozen=True)
class Retrained:
    """Retraining of one target label after :meth:`SsaldClient.submit_labels`: ``run``, or why it was ``skipped``."""

    label: str
    run: ScoreRun | None
    skipped: str


@dataclass(frozen=True)
class SubmitResult:
    """Answer of :meth:`SsaldClient.submit_labels`; the labels were on disk when it was sent."""

    n_written: int
    labels_version: int
    label_counts: dict[str, int]
    retrained: list[Retrained]


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
    return _request(ssald_pb2.LabelEntry, **{k: fields.get(k, "") for k in ("objid", "label", "user", "note")})


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


def _metadata_from_proto(msg: ssald_pb2.Object) -> dict[str, Any]:
    # Proto3 `optional` fields have presence: unset means null in the table.
    fields = msg.DESCRIPTOR.fields_by_name
    return {
        name: None if fields[name].has_presence and not msg.HasField(name) else getattr(msg, name) for name in _METADATA
    }


def _object_from_proto(msg: ssald_pb2.Object) -> GalaxyObject:
    embedding = tuple(msg.embedding) if msg.embedding else None
    return GalaxyObject(**_metadata_from_proto(msg), embedding=embedding)


def _neighbour_from_proto(msg: ssald_pb2.Neighbour) -> Neighbour:
    return Neighbour(**_metadata_from_proto(msg.object), distance=msg.distance)


class SsaldClient:
    """Client of one SSALD server.

    Parameters
    ----------
    address : str
        ``HOST:PORT`` of the server (as printed by ``ssald serve``).
    timeout : float
        Seconds each RPC may take before it fails with :class:`~clients.errors.DeadlineExceeded`.

    Notes
    -----
    Connection problems surface as :class:`~clients.errors.Unavailable` on the first RPC, not here. Use as
    a context manager, or call :meth:`close`, to release the channel.
    """

    def __init__(self, address: str, timeout: float = 10.0) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive seconds, got {timeout!r}")
        self.address = address
        self.timeout = timeout
        self._channel = grpc.insecure_channel(address)
        self._stub = ssald_pb2_grpc.SsaldStub(self._channel)

    def _call(self, method: Any, request: Any) -> Any:
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        except ValueError as exc:  # grpc's answer on a closed channel
            raise Unavailable(f"{self!r} is closed: {exc}", "UNAVAILABLE") from None

    def find_similar(
        self, objid: int, k: int = 10, exclude_radius_arcsec: float = 0.0, **filters: Any
    ) -> list[Neighbour]:
        """The ``k`` nearest neighbours of an object, nearest first; the object itself is not among them.

        Parameters
        ----------
        objid : int
        k : int
            1..1000.
        exclude_radius_arcsec : float
            Objects closer than this on the sky to the query are left out (the other nucleus of a pair).
        **filters
            Metadata prefilter: ``z_min``, ``z_max``, ``spec_class``, ``bpt_class`` (a str or a list),
            ``magnitudes`` (``{"mag_r": (lo, hi)}``, either bound ``None``), ``where`` (SQL).

        Raises
        ------
        NotFound
            ``objid`` is not in the table.
        InvalidArgument
            ``k`` is not in ``[1, 1000]``.
        Unavailable, DeadlineExceeded
            The server cannot be reached, its table is not ready, or it did not answer in time.
        """
        request = _request(
            ssald_pb2.FindSimilarRequest,
            objid=objid,
            k=k,
            filter=_filter(**filters),
            exclude_radius_arcsec=exclude_radius_arcsec,
        )
        return [_neighbour_from_proto(n) for n in self._call(self._stub.FindSimilar, request).neighbours]

    def search_vector(
        self, vector: Sequence[float], k: int = 10, exclude_objids: Sequence[int] = (), **filters: Any
    ) -> list[Neighbour]:
        """The ``k`` objects nearest to an embedding (length ``stats()["embedding_dim"]``).

        Raises
        ------
        InvalidArgument
            Wrong length, zero or non-finite vector, bad ``k`` or filter.
        """
        values = [float(v) for v in vector]
        request = _request(
            ssald_pb2.SearchVectorRequest,
            vector=values,
            k=k,
            exclude_objids=[int(o) for o in exclude_objids],
            filter=_filter(**filters),
        )
        return [_neighbour_from_proto(n) for n in self._call(self._stub.SearchVector, request).neighbours]

    def find_similar_to_image(
        self, image: bytes | str | os.PathLike[str], k: int = 10, **filters: Any
    ) -> list[Neighbour]:
        """Neighbours of a stamp you hold: the bytes (or path) of a FITS, PNG or NPY file.

        The server reads, normalises and embeds it with the table's ONNX model.

        Raises
        ------
        InvalidArgument
            Undecodable image, or bands/size that do not fit the model.
        SsaldError
            ``FAILED_PRECONDITION`` when the server runs without a model.
        """
        payload = image if isinstance(image, bytes) else Path(image).read_bytes()
        request = _request(ssald_pb2.FindSimilarToImageRequest, image=payload, k=k, filter=_filter(**filters))
        return [_neighbour_from_proto(n) for n in self._call(self._stub.FindSimilarToImage, request).neighbours]

    def cone_search(
        self,
        ra: float,
        dec: float,
        radius_arcsec: float = 3.0,
        k: int = 10,
        exclude_radius_arcsec: float = 0.0,
        **filters: Any,
    ) -> ConeMatch:
        """The object nearest to (ra, dec) within ``radius_arcsec``, and its ``k`` neighbours.

        Raises
        ------
        NotFound
            No object within the radius.
        InvalidArgument
            Position or radius out of range, bad ``k`` or filter.
        """
        request = _request(
            ssald_pb2.ConeSearchRequest,
            ra=ra,
            dec=dec,
            radius_arcsec=radius_arcsec,
            k=k,
            filter=_filter(**filters),
            exclude_radius_arcsec=exclude_radius_arcsec,
        )
        reply = self._call(self._stub.ConeSearch, request)
        return ConeMatch(
            match=_object_from_proto(reply.match),
            separation_arcsec=reply.separation_arcsec,
            neighbours=[_neighbour_from_proto(n) for n in reply.neighbours],
        )

    def anomalies(self, n: int = 100, **filters: Any) -> list[GalaxyObject]:
        """The ``n`` most anomalous objects (highest ``density_score`` first) matching the filters.

        Raises
        ------
        InvalidArgument
            ``n`` outside [1, 1000] or a bad filter.
        """
        request = _request(ssald_pb2.AnomaliesRequest, n=n, filter=_filter(**filters))
        return [_object_from_proto(a.object) for a in self._call(self._stub.Anomalies, request).anomalies]

    def get_object(self, objid: int, with_embedding: bool = False) -> GalaxyObject:
        """One object's metadata, and its embedding if ``with_embedding``.

        Raises
        ------
        NotFound
            ``objid`` is not in the table.
        Unavailable, DeadlineExceeded
            As for :meth:`find_similar`.
        """
        request = _request(ssald_pb2.GetObjectRequest, objid=objid, with_embedding=with_embedding)
        return _object_from_proto(self._call(self._stub.GetObject, request))

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
        request = _request(ssald_pb2.NextToLabelRequest, **fields, filter=_filter(**filters))
        reply = self._call(self._stub.NextToLabel, request)
        items = [
            ToLabel(
                **_metadata_from_proto(item.object),
                reason=item.reason,
                probability=item.probability if item.HasField("probability") else None,
                similarity=item.similarity if item.HasField("similarity") else None,
            )
            for item in reply.items
        ]
        return LabelBatch(items, reply.strategy, reply.n_positive, reply.n_negative)

    def submit_labels(
        self, labels: Sequence[Any], retrain: bool = False, classifier: str = "", user: str = ""
    ) -> SubmitResult:
        """Store labels; when this returns they are on the server's disk. Optionally retrain and rescore.

        Parameters
        ----------
        labels : sequence
            Each ``(objid, label)``, ``(objid, label, note)``, or a dict/object with ``objid``, ``label``
            and optionally ``user``, ``note``. A "no" to "is this X?" is the label ``not_X``.
        retrain : bool
            Retrain the classifier of each target label (``X`` for ``X`` and ``not_X``) and rescore every
            object; the cross-validated metrics come back in ``retrained``.
        classifier : str
            ``logistic`` (default) or ``forest``.
        user : str
            Recorded with labels that do not name their own user.

        Raises
        ------
        NotFound
            Some objids are not in the table (the message names them); nothing was written.
        InvalidArgument
            No labels, an empty label or an unknown classifier; nothing was written.
        """
        entries = [_label_entry(item, user) for item in labels]
        request = _request(ssald_pb2.SubmitLabelsRequest, labels=entries, retrain=retrain, classifier=classifier)
        reply = self._call(self._stub.SubmitLabels, request)
        retrained = [
            Retrained(r.label, _score_run_from_proto(r.run) if r.HasField("run") else None, r.skipped)
            for r in reply.retrained
        ]
        return SubmitResult(reply.n_written, reply.labels_version, dict(reply.label_counts), retrained)

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
        request = _request(
            ssald_pb2.CandidatesRequest, label=label, n=n, exclude_labelled=exclude_labelled, filter=_filter(**filters)
        )
        reply = self._call(self._stub.Candidates, request)
        candidates = [
            Candidate(
                **_metadata_from_proto(c.object),
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
        request = _request(ssald_pb2.GetStampRequest, objid=objid)
        return bytes(self._call(self._stub.GetStamp, request).png)

    def stats(self) -> dict[str, Any]:
        """Table statistics: ``n_objects``, ``model_id`` (or None), ``embedding_dim``, ``table_version``,
        ``n_scored`` (objects with a density score), ``indexes`` (one dict per index), and the labels:
        ``n_labels`` (every label given), ``n_labelled_objects``, ``label_counts`` (objects per latest
        label) and ``labels_version``."""
        reply = self._call(self._stub.Stats, ssald_pb2.StatsRequest())
        return {
            "n_objects": reply.n_objects,
            "model_id": reply.model_id or None,
            "embedding_dim": reply.embedding_dim,
            "table_version": reply.table_version,
            "n_scored": reply.n_scored,
            "n_labels": reply.n_labels,
            "n_labelled_objects": reply.n_labelled_objects,
            "label_counts": dict(reply.label_counts),
            "labels_version": reply.labels_version,
            "indexes": [
                {
                    "column": i.column,
                    "index_type": i.index_type,
                    "indexed_rows": i.indexed_rows,
                    "unindexed_rows": i.unindexed_rows,
                }
                for i in reply.indexes
            ],
        }

    def close(self) -> None:
        """Close the channel; further calls fail."""
        self._channel.close()

    def __enter__(self) -> SsaldClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SsaldClient({self.address!r}, timeout={self.timeout!r})"


def _request(message_type: Any, **fields: Any) -> Any:
    # Protobuf rejects out-of-range integers (k beyond int32) with a bare ValueError/TypeError.
    try:
        return message_type(**fields)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"bad request {fields}: {exc}", "INVALID_ARGUMENT") from None
