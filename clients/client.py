"""Python client for the SSALD gRPC service: plain Python values in and out, no protobuf.

Example
-------
>>> with SsaldClient("127.0.0.1:50051") as client:          # doctest: +SKIP
...     for n in client.find_similar(1237648720693755918, k=5):
...         print(n.objid, round(n.distance, 3), n.z, n.spec_class)

Every RPC carries the client's timeout; failures raise the typed exceptions of :mod:`clients.errors`.
The returned objects live in :mod:`clients.objects` and, for active learning, :mod:`clients.labelling`;
they are re-exported here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

from clients.conversions import (
    filter_message,
    make_request,
    neighbour_from_proto,
    object_from_proto,
    object_in_cone_from_proto,
)
from clients.errors import Unavailable, from_rpc_error
from clients.labelling import (
    Candidate,
    CandidateList,
    LabelBatch,
    LabellingCalls,
    Retrained,
    ScoreRun,
    SubmitResult,
    ToLabel,
)
from clients.maps import MapCalls, MapPoints
from clients.multi import MultiQueryCalls, search_fields
from clients.objects import BatchResult, ConeMatch, GalaxyObject, InCone, Neighbour, ObjectInCone
from proto import ssald_pb2, ssald_pb2_grpc

__all__ = [
    "BatchResult",
    "Candidate",
    "CandidateList",
    "ConeMatch",
    "GalaxyObject",
    "InCone",
    "LabelBatch",
    "MapPoints",
    "Neighbour",
    "ObjectInCone",
    "Retrained",
    "ScoreRun",
    "SsaldClient",
    "SubmitResult",
    "ToLabel",
]


#: Largest message the client sends or receives: a 64 MiB stamp upload and the request's other fields.
MAX_MESSAGE_BYTES = 65 * 2**20


def _read_pem(path: str | os.PathLike[str] | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise OSError(f"cannot read the {what} {os.fspath(path)!r}: {exc.strerror or exc}") from None


class SsaldClient(LabellingCalls, MultiQueryCalls, MapCalls):
    """Client of one SSALD server.

    Similarity search and object lookups are defined here; the active-learning calls
    (``next_to_label``, ``submit_labels``, ``candidates``, ``stamp_png``) come from
    :class:`clients.labelling.LabellingCalls`, the batch and multi-example ones (``find_similar_batch``,
    ``find_similar_to_examples``) from :class:`clients.multi.MultiQueryCalls`, ``map_points`` from
    :class:`clients.maps.MapCalls`.

    Parameters
    ----------
    address : str
        ``HOST:PORT`` of the server (as printed by ``ssald serve``).
    timeout : float
        Seconds each RPC may take before it fails with :class:`~clients.errors.DeadlineExceeded`.
    token : str, optional
        Bearer token, sent as ``authorization: Bearer <token>`` metadata with every call; a server with a
        token needs it for writes (``submit_labels``), or for every call. Left out of ``repr``.
    ca_file : path, optional
        PEM CA certificate(s) that signed the server's certificate: connect with TLS.
    client_cert, client_key : path, optional
        PEM certificate and private key for a server that requires client certificates (implies TLS; the
        system's CA certificates verify the server when ``ca_file`` is not given).
    max_message_bytes : int
        Largest message sent or received (default 65 MiB: a 64 MiB stamp upload and its other fields;
        gRPC's own default would receive at most 4 MiB).

    Notes
    -----
    Connection problems surface as :class:`~clients.errors.Unavailable` on the first RPC, not here. Use as
    a context manager, or call :meth:`close`, to release the channel. A missing or wrong token raises
    :class:`~clients.errors.Unauthenticated`; the read-only token on a write raises
    :class:`~clients.errors.PermissionDenied`.
    """

    def __init__(
        self,
        address: str,
        timeout: float = 10.0,
        token: str | None = None,
        ca_file: str | os.PathLike[str] | None = None,
        client_cert: str | os.PathLike[str] | None = None,
        client_key: str | os.PathLike[str] | None = None,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive seconds, got {timeout!r}")
        if token is not None and (not token or not all(33 <= ord(c) <= 126 for c in token)):
            raise ValueError("token must be a non-empty string of printable ASCII characters without spaces")
        if (client_cert is None) != (client_key is None):
            raise ValueError("a client certificate needs its private key: give both client_cert and client_key")
        self.address = address
        self.timeout = timeout
        self._metadata = (("authorization", f"Bearer {token}"),) if token is not None else None
        options = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
        ]
        if ca_file is None and client_cert is None:
            self._channel = grpc.insecure_channel(address, options=options)
        else:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read_pem(ca_file, "CA file"),
                private_key=_read_pem(client_key, "client key"),
                certificate_chain=_read_pem(client_cert, "client certificate"),
            )
            self._channel = grpc.secure_channel(address, credentials, options=options)
        self._stub = ssald_pb2_grpc.SsaldStub(self._channel)

    def _call(self, method: Any, request: Any) -> Any:
        try:
            return method(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        except ValueError as exc:  # grpc's answer on a closed channel
            raise Unavailable(f"{self!r} is closed: {exc}", "UNAVAILABLE") from None

    def find_similar(
        self,
        objid: int,
        k: int = 10,
        exclude_radius_arcsec: float = 0.0,
        metric_label: str = "",
        metric_kind: str = "",
        space: str = "",
        morphology_weight: float | None = None,
        **filters: Any,
    ) -> list[Neighbour]:
        """The ``k`` nearest neighbours of an object, nearest first; the object itself is not among them.

        Parameters
        ----------
        objid : int
        k : int
            1..1000.
        exclude_radius_arcsec : float
            Objects closer than this on the sky to the query are left out (the other nucleus of a pair).
        metric_label : str
            Search in the space of a metric learned from this label's current labels (positives: latest
            label ``metric_label``; negatives: any other label) instead of the embedding; ``distance`` is
            then Euclidean in that space. ``""``: the embedding, by cosine.
        metric_kind : str
            ``"probe"`` (default when ``""``), ``"nca"`` or ``"head"`` (see ``ssald_index.metric``).
        space : str
            ``"embedding"`` (default when ``""``: cosine), ``"morphology"`` (the standardised ``morph_*``
            columns) or ``"embedding+morphology"`` (both, each part of mean squared norm 1); Euclidean in
            the morphology spaces. With ``metric_label``, ``"embedding+morphology"`` makes the metric learn
            from both.
        morphology_weight : float, optional
            Weight of the morphology part in ``"embedding+morphology"``, in (0, 10]; ``None``: 1.0.
        **filters
            Metadata prefilter: ``z_min``, ``z_max``, ``spec_class``, ``bpt_class`` (a str or a list),
            ``magnitudes`` (``{"mag_r": (lo, hi)}``, either bound ``None``), ``where`` (SQL).

        Raises
        ------
        NotFound
            ``objid`` is not in the table.
        InvalidArgument
            ``k`` is not in ``[1, 1000]``, an unknown ``metric_kind`` or ``space``, a weight out of range or
            without a morphology space, ``space="morphology"`` with ``metric_label``.
        FailedPrecondition
            ``metric_label`` has fewer than 2 positive or 2 negative labels (the message gives the counts),
            or a morphology space on a table without ``morph_*`` values.
        Unavailable, DeadlineExceeded
            The server cannot be reached, its table is not ready, or it did not answer in time.
        """
        request = make_request(
            ssald_pb2.FindSimilarRequest,
            objid=objid,
            k=k,
            **search_fields(exclude_radius_arcsec, metric_label, metric_kind, space, morphology_weight, filters),
        )
        return [neighbour_from_proto(n) for n in self._call(self._stub.FindSimilar, request).neighbours]

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
        request = make_request(
            ssald_pb2.SearchVectorRequest,
            vector=values,
            k=k,
            exclude_objids=[int(o) for o in exclude_objids],
            filter=filter_message(**filters),
        )
        return [neighbour_from_proto(n) for n in self._call(self._stub.SearchVector, request).neighbours]

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
        request = make_request(
            ssald_pb2.FindSimilarToImageRequest, image=payload, k=k, filter=filter_message(**filters)
        )
        return [neighbour_from_proto(n) for n in self._call(self._stub.FindSimilarToImage, request).neighbours]

    def cone_search(
        self,
        ra: float,
        dec: float,
        radius_arcsec: float = 3.0,
        k: int = 10,
        exclude_radius_arcsec: float = 0.0,
        metric_label: str = "",
        metric_kind: str = "",
        space: str = "",
        morphology_weight: float | None = None,
        **filters: Any,
    ) -> ConeMatch:
        """The object nearest to a sky position, and its ``k`` neighbours.

        Parameters
        ----------
        ra, dec : float
            ICRS degrees.
        radius_arcsec : float
            Match radius around (ra, dec).
        k, exclude_radius_arcsec, metric_label, metric_kind, space, morphology_weight, **filters
            As for :meth:`find_similar`.

        Raises
        ------
        NotFound
            No object within the radius.
        InvalidArgument
            Position or radius out of range, bad ``k`` or filter, or as for :meth:`find_similar`.
        FailedPrecondition
            As for :meth:`find_similar`.
        """
        request = make_request(
            ssald_pb2.ConeSearchRequest,
            ra=ra,
            dec=dec,
            radius_arcsec=radius_arcsec,
            k=k,
            **search_fields(exclude_radius_arcsec, metric_label, metric_kind, space, morphology_weight, filters),
        )
        reply = self._call(self._stub.ConeSearch, request)
        return ConeMatch(
            match=object_from_proto(reply.match),
            separation_arcsec=reply.separation_arcsec,
            neighbours=[neighbour_from_proto(n) for n in reply.neighbours],
        )

    def objects_in_cone(self, ra: float, dec: float, radius_arcsec: float, limit: int = 1000, **filters: Any) -> InCone:
        """Every object within ``radius_arcsec`` of (ra, dec) that matches the filters, nearest first.

        Parameters
        ----------
        ra, dec : float
            ICRS degrees.
        radius_arcsec : float
            (0, 3600].
        limit : int
            1..10000: at most this many come back; ``n_found`` of the answer counts them all.
        **filters
            As for :meth:`find_similar`.

        Raises
        ------
        InvalidArgument
            Position, radius or limit out of range, or a bad filter.
        """
        request = make_request(
            ssald_pb2.ObjectsInConeRequest,
            ra=ra,
            dec=dec,
            radius_arcsec=radius_arcsec,
            limit=limit,
            filter=filter_message(**filters),
        )
        reply = self._call(self._stub.ObjectsInCone, request)
        return InCone([object_in_cone_from_proto(o) for o in reply.objects], reply.n_found)

    def anomalies(self, n: int = 100, **filters: Any) -> list[GalaxyObject]:
        """The ``n`` most anomalous objects (highest ``density_score`` first) matching the filters.

        Raises
        ------
        InvalidArgument
            ``n`` outside [1, 1000] or a bad filter.
        """
        request = make_request(ssald_pb2.AnomaliesRequest, n=n, filter=filter_message(**filters))
        return [object_from_proto(a.object) for a in self._call(self._stub.Anomalies, request).anomalies]

    def get_object(self, objid: int, with_embedding: bool = False) -> GalaxyObject:
        """One object's metadata, and its embedding if ``with_embedding``.

        Raises
        ------
        NotFound
            ``objid`` is not in the table.
        Unavailable, DeadlineExceeded
            As for :meth:`find_similar`.
        """
        request = make_request(ssald_pb2.GetObjectRequest, objid=objid, with_embedding=with_embedding)
        return object_from_proto(self._call(self._stub.GetObject, request))

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
