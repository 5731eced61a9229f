"""The ``ssald.v1.Ssald`` servicer: similarity search (single, batch, by examples), cone search, anomalies, map, stats.

Every RPC converts its request (:mod:`server.convert`), calls the store, the feature or learned spaces, and
converts the answer back; the active-learning RPCs come from :class:`server.al_service.ActiveLearningServicer`.
The table is opened lazily by a :class:`server.handle.StoreHandle`. Exceptions map to the status codes
listed in :mod:`server.convert`.
"""

from __future__ import annotations

import functools
from typing import Any

import grpc
import numpy as np

from proto import ssald_pb2, ssald_pb2_grpc
from server.al_service import ActiveLearningServicer
from server.convert import (
    NoModel,
    batch_result_to_proto,
    catalogued_objid,
    ensure_wanted,
    filter_from_proto,
    neighbours_to_proto,
    object_to_proto,
    status_for_errors,
)
from server.handle import StoreHandle
from ssald_index.active.learned import LearnedSpaces
from ssald_index.active.session import ActiveLearning
from ssald_index.ann import index_state
from ssald_index.batch import find_similar_batch
from ssald_index.density import top_anomalies
from ssald_index.examples import NEGATIVE_WEIGHT, similar_to_examples
from ssald_index.feature_space import FeatureSpaces, resolve_space
from ssald_index.search import objects_in_cone

__all__ = ["MAP_CHUNK", "SsaldServicer"]

#: Objects per ``MapPointsChunk``: 20 bytes each, 2 MB a message (gRPC's default limit is 4 MB).
MAP_CHUNK = 100_000


class SsaldServicer(ActiveLearningServicer, ssald_pb2_grpc.SsaldServicer):
    """Implements ``ssald.v1.Ssald`` over a :class:`StoreHandle`.

    Parameters
    ----------
    handle : StoreHandle
        Gives the open store, or raises ``TableNotReady``.
    embedder : encoders.embedder.OnnxEmbedder, optional
        The encoder of the table's embeddings, for ``FindSimilarToImage``.
    al_features : str
        What the active-learning classifiers see (:class:`ssald_index.active.session.ActiveLearning`).
    """

    def __init__(self, handle: StoreHandle, embedder: Any = None, al_features: str = "embedding") -> None:
        self.handle = handle
        self.embedder = embedder
        # One morphology cache for the search spaces and the active-learning classifiers' features.
        self.spaces = FeatureSpaces()
        self.active_learning = ActiveLearning(handle, al_features, self.spaces)

    @functools.cached_property
    def learned(self) -> LearnedSpaces:
        """The learned-metric spaces of the served database, created on the first query that asks for one."""
        return LearnedSpaces(self.handle.db_path)

    def _neighbours_of(self, objid: int, request: Any) -> list[dict[str, Any]]:
        """Neighbours of a catalogued object for a FindSimilar or ConeSearch request.

        The request gives k, filter, exclude_radius_arcsec, metric and space: neighbours by cosine in the
        embedding, or in a morphology space or a learned metric's space.
        """
        store, metric = self.handle.store(), request.metric
        space, weight = resolve_space(request.space, request.morphology_weight, metric=bool(metric.label))
        kwargs = {"filter": filter_from_proto(request.filter), "exclude_radius_arcsec": request.exclude_radius_arcsec}
        if not metric.label:
            if metric.kind:
                raise ValueError(f"metric.kind {metric.kind!r} needs metric.label, the class whose labels it learns")
            if space == "embedding":
                return store.neighbours(objid, request.k, **kwargs)
            embeddings = self.active_learning.embeddings()
            return self.spaces.neighbours(store, embeddings, objid, request.k, space, weight, **kwargs)
        embeddings = self.active_learning.embeddings()
        extra = self.spaces.morphology(store, embeddings) if space == "embedding+morphology" else None
        return self.learned.neighbours(
            store, embeddings, objid, request.k, metric.label, metric.kind, extra=extra, **kwargs
        )

    def FindSimilar(self, request: ssald_pb2.FindSimilarRequest, context: grpc.ServicerContext):  # noqa: N802
        with status_for_errors(context):
            rows = self._neighbours_of(catalogued_objid(request.objid), request)
            return neighbours_to_proto(rows, self.handle.model_id)

    def SearchVector(self, request: ssald_pb2.SearchVectorRequest, context: grpc.ServicerContext):  # noqa: N802
        with status_for_errors(context):
            rows = self.handle.store().search_vector(
                np.asarray(request.vector, dtype=np.float32),
                request.k,
                exclude=request.exclude_objids,
                filter=filter_from_proto(request.filter),
            )
            return neighbours_to_proto(rows, self.handle.model_id)

    def FindSimilarToImage(self, request: ssald_pb2.FindSimilarToImageRequest, context: grpc.ServicerContext):  # noqa: N802
        with status_for_errors(context):
            store = self.handle.store()
            if self.embedder is None:
                raise NoModel("this server was started without --model: image queries need the ONNX encoder")
            # Imported here: only a server with a model reads stamps (numpy/astropy/PIL, never torch).
            from encoders.stamps import read_stamp

            if not request.image:
                raise ValueError("image is empty: send the bytes of a FITS, PNG or NPY stamp")
            stamp = read_stamp(bytes(request.image))
            if not np.isfinite(stamp.data).any():
                raise ValueError(f"image has no finite pixels: all {stamp.data.size} are NaN or infinite")
            # The model's fit first (a 424 px JPEG for a model of 64 px stamps), as ingestion does, so an upload
            # of an ingested file gets that file's embedding; then the size and band checks of embed_raw.
            data = self.embedder.fit.apply(stamp.data, self.embedder.stamp_size)
            cube = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
            ensure_wanted(context, "embedding the upload")
            vector = self.embedder.embed_raw(cube[np.newaxis])[0]
            ensure_wanted(context, "searching with the upload's embedding")
            rows = store.search_vector(vector, request.k, filter=filter_from_proto(request.filter))
            return neighbours_to_proto(rows, self.handle.model_id)

    def ConeSearch(self, request: ssald_pb2.ConeSearchRequest, context: grpc.ServicerContext):  # noqa: N802
        with status_for_errors(context):
            store = self.handle.store()
            match = store.nearest_object(request.ra, request.dec, request.radius_arcsec)
            rows = self._neighbours_of(match["objid"], request)
            return ssald_pb2.ConeSearchResponse(
                match=object_to_proto(match),
                separation_arcsec=match["separation_arcsec"],
                neighbours=neighbours_to_proto(rows, "").neighbours,
                model_id=self.handle.model_id,
            )

    def ObjectsInCone(self, request: ssald_pb2.ObjectsInConeRequest, context: grpc.ServicerContext):  # noqa: N802
        with status_for_errors(context):
            rows, n_found = objects_in_cone(
                self.handle.store(), request.ra, request.dec, request.radius_arcsec, request.limit,
                filter_from_proto(request.filter),
            )  # fmt: skip
            found = [
                ssald_pb2.ObjectInCone(object=object_to_proto(r), separation_arcsec=r["separation_arcsec"])
                for r in rows
            ]
            return ssald_pb2.ObjectsInConeResponse(objects=found, n_found=n_found)

    def FindSimilarBatch(self, request: ssald_pb2.FindSimilarBatchRequest, context: grpc.ServicerContext):  # noqa: N802
        with status_for_errors(context):
            # The space and metric kind are checked with the request, before the first result.
            resolve_space(request.space, request.morphology_weight, metric=bool(request.metric.label))
            results = find_similar_batch(
                self.handle.store(),
                request.objids,
                [(p.ra, p.dec) for p in request.positions],
                request.radius_arcsec,
                request.k,
                lambda objid: self._neighbours_of(catalogued_objid(objid), request),
            )
            # Checked before each input is computed: a cancelled call, or one past its deadline, costs no more.
            while context.is_active():
                result = next(results, None)
                if result is None:
                    return
                yield batch_result_to_proto(result, self.handle.model_id)

    def FindSimilarToExamples(self, request: ssald_pb2.FindSimilarToExamplesRequest, context: grpc.ServicerContext):  # noqa: N802
        with status_for_errors(context):
            rows = similar_to_examples(
                self.handle.store(),
                map(catalogued_objid, request.positive_objids),
                map(catalogued_objid, request.negative_objids),
                request.k,
                filter=filter_from_proto(request.filter),
                negative_weight=request.negative_weight if request.HasField("negative_weight") else NEGATIVE_WEIGHT,
                exclude_radius_arcsec=request.exclude_radius_arcsec,
                exclude=request.exclude_objids,
            )
            return neighbours_to_proto(rows, self.handle.model_id)

    def MapPoints(self, request: ssald_pb2.MapPointsRequest, context: grpc.ServicerContext):  # noqa: N802
        with status_for_errors(context):
            points = self.active_learning.map_points(request.color_by or "cluster", request.label)
            n = len(points.objids)
            for lo in range(0, max(n, 1), MAP_CHUNK):
                # Before each chunk, the first included: reading and colouring the map may outlast the deadline.
                ensure_wanted(context, f"sending the map from object {lo} of {n}")
                part = slice(lo, lo + MAP_CHUNK)
                yield ssald_pb2.MapPointsChunk(
                    objids=points.objids[part].astype("<i8").tobytes(),
                    x=points.x[part].astype("<f4").tobytes(),
                    y=points.y[part].astype("<f4").tobytes(),
                    values=points.values[part].astype("<f4").tobytes(),
                    categories=points.categories,
                    n_total=n,
                )

    def Anomalies(self, request: ssald_pb2.AnomaliesRequest, context: grpc.ServicerContext):  # noqa: N802
        with status_for_errors(context):
            rows = top_anomalies(
                self.handle.store(), request.n, filter_from_proto(request.filter), wanted=context.is_active
            )
            return ssald_pb2.AnomaliesResponse(anomalies=[ssald_pb2.Anomaly(object=object_to_proto(r)) for r in rows])

    def GetObject(self, request: ssald_pb2.GetObjectRequest, context: grpc.ServicerContext):  # noqa: N802
        with status_for_errors(context):
            row = self.handle.store().get(catalogued_objid(request.objid), with_embedding=request.with_embedding)
            return object_to_proto(row)

    def Stats(self, request: ssald_pb2.StatsRequest, context: grpc.ServicerContext):  # noqa: N802
        with status_for_errors(context):
            store = self.handle.store()
            labels = self.active_learning.labels_summary()
            return ssald_pb2.StatsResponse(
                n_objects=store.count(),
                model_id=self.handle.model_id,
                embedding_dim=store.dim,
                indexes=[ssald_pb2.IndexState(**state) for state in index_state(store.table)],
                table_version=store.version,
                n_scored=store.count_scored(),
                n_labels=labels.n_labels,
                n_labelled_objects=labels.n_labelled_objects,
                label_counts=labels.label_counts,
                labels_version=labels.version,
            )
