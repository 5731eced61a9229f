"""The ``ssald.v1.Ssald`` servicer over an :class:`ssald_index.store.ObjectStore`.

The servicer holds no state of its own beyond a :class:`StoreHandle`, which opens the ``objects`` table
lazily: a server started before anything was ingested answers ``UNAVAILABLE`` until the table appears,
then serves it without a restart. Storage errors map to status codes as documented in
``proto/ssald.proto``:

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
import functools
import logging
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import numpy as np

from proto import ssald_pb2, ssald_pb2_grpc
from server.al_service import ActiveLearning, NoClassifier
from ssald_index.ann import SearchParams, index_state
from ssald_index.density import top_anomalies
from ssald_index.feature_space import FeatureSpaces, NoMorphology, resolve_space
from ssald_index.filters import Filter
from ssald_index.labels import Label
from ssald_index.metric import TooFewLabels
from ssald_index.metric_search import LearnedSpaces
from ssald_index.store import ObjectNotFound, ObjectStore, TableNotReady

__all__ = ["NoModel", "StoreHandle", "SsaldServicer", "filter_from_proto", "object_to_proto", "score_run_to_proto"]

log = logging.getLogger(__name__)

_OBJECT_FIELDS = frozenset(ssald_pb2.Object.DESCRIPTOR.fields_by_name)


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


class StoreHandle:
    """Opens the ``objects`` table on first use, keeps it open and follows new versions.

    The served store keeps the metadata columns in memory (:mod:`ssald_index.cache`). Every
    ``refresh_s`` seconds a background thread moves to the table's latest version (new ingests, new
    density scores) and rebuilds that cache, so the server never needs a restart to see new rows.

    Parameters
    ----------
    db_path : path
        LanceDB database directory.
    on_ready : callable, optional
        Called once, with the opened store, when the table is first opened (the server uses it to flip
        its health status to SERVING and to compare model ids).
    search_params : SearchParams, optional
        ANN query parameters.
    refresh_s : float
        Seconds between checks for a new table version; 0 disables following.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        on_ready: Callable[[ObjectStore], None] | None = None,
        search_params: SearchParams | None = None,
        refresh_s: float = 10.0,
    ) -> None:
        self.db_path = os.fspath(db_path)
        self._on_ready = on_ready
        self._search_params = search_params
        self._refresh_s = refresh_s
        self._store: ObjectStore | None = None
        self._model_id: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def ready(self) -> bool:
        """Whether the table has been opened."""
        return self._store is not None

    def try_open(self) -> bool:
        """Open the table if it is there; return whether it is open. Never raises ``TableNotReady``."""
        try:
            self.store()
        except TableNotReady:
            return False
        return True

    def store(self) -> ObjectStore:
        """The open store.

        Raises
        ------
        TableNotReady
            If the database has no ``objects`` table yet.
        """
        if self._store is not None:
            return self._store
        with self._lock:
            if self._store is None:
                store = ObjectStore.open(self.db_path, search_params=self._search_params)
                store.enable_cache(vectors=store.search_params.rerank == "memory")
                # model_id scans a column: read it once per opened snapshot, not per request.
                self._model_id = store.model_id
                self._store = store
                log.info("opened %s: %d objects, model %s", self.db_path, store.count(), self._model_id)
                if self._refresh_s > 0:
                    self._thread = threading.Thread(target=self._follow, name="ssald-refresh", daemon=True)
                    self._thread.start()
                if self._on_ready is not None:
                    self._on_ready(store)
            return self._store

    def refresh(self) -> bool:
        """Move to the latest table version now; returns whether it changed."""
        store = self._store
        if store is None or not store.refresh():
            return False
        self._model_id = store.model_id
        log.info("now serving version %d: %d objects", store.version, store.count())
        return True

    def _follow(self) -> None:
        while not self._stop.wait(self._refresh_s):
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - keep serving the version we have
                log.exception("cannot refresh %s", self.db_path)

    def close(self) -> None:
        """Stop following new versions."""
        self._stop.set()

    @property
    def model_id(self) -> str:
        """Model id of the served embeddings (``""`` if unknown or the table is not open)."""
        return self._model_id or ""


@contextlib.contextmanager
def _status_for_errors(context: grpc.ServicerContext) -> Iterator[None]:
    """Turn storage exceptions into the status codes documented in ``ssald.proto``."""
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


class NoModel(RuntimeError):
    """An image query reached a server started without an ONNX model."""


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


def _neighbours(rows: list[dict[str, Any]], model_id: str) -> ssald_pb2.NeighboursResponse:
    neighbours = [ssald_pb2.Neighbour(object=object_to_proto(row), distance=row["distance"]) for row in rows]
    return ssald_pb2.NeighboursResponse(neighbours=neighbours, model_id=model_id)


def score_run_to_proto(run: Any) -> ssald_pb2.ScoreRun:
    """The ``ScoreRun`` message of a :class:`ssald_index.scores.ScoreRun` (``trained_at`` as ISO 8601)."""
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


def _optional(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


class SsaldServicer(ssald_pb2_grpc.SsaldServicer):
    """Implements ``ssald.v1.Ssald`` over a :class:`StoreHandle`.

    Parameters
    ----------
    handle : StoreHandle
        Gives the open store, or raises ``TableNotReady``.
    embedder : encoders.embedder.OnnxEmbedder, optional
        The encoder of the table's embeddings, for ``FindSimilarToImage``.
    al_features : str
        What the active-learning classifiers see (:class:`server.al_service.ActiveLearning`).
    """

    def __init__(self, handle: StoreHandle, embedder: Any = None, al_features: str = "embedding") -> None:
        self._handle = handle
        self.embedder = embedder
        # One morphology cache for the search spaces and the active-learning classifiers' features.
        self.spaces = FeatureSpaces()
        self.active_learning = ActiveLearning(handle, al_features, self.spaces)

    @functools.cached_property
    def learned(self) -> LearnedSpaces:
        """The learned-metric spaces of the served database, created on the first query that asks for one."""
        return LearnedSpaces(self._handle.db_path)

    def _neighbours_of(self, objid: int, request: Any) -> list[dict[str, Any]]:
        """Neighbours of a catalogued object for a FindSimilar or ConeSearch request (k, filter,
        exclude_radius_arcsec, metric, space): by cosine in the embedding, or in a morphology space or a
        learned metric's space."""
        store, metric = self._handle.store(), request.metric
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
        with _status_for_errors(context):
            rows = self._neighbours_of(request.objid, request)
            return _neighbours(rows, self._handle.model_id)

    def SearchVector(self, request: ssald_pb2.SearchVectorRequest, context: grpc.ServicerContext):  # noqa: N802
        with _status_for_errors(context):
            rows = self._handle.store().search_vector(
                np.asarray(request.vector, dtype=np.float32),
                request.k,
                exclude=request.exclude_objids,
                filter=filter_from_proto(request.filter),
            )
            return _neighbours(rows, self._handle.model_id)

    def FindSimilarToImage(self, request: ssald_pb2.FindSimilarToImageRequest, context: grpc.ServicerContext):  # noqa: N802
        with _status_for_errors(context):
            store = self._handle.store()
            if self.embedder is None:
                raise NoModel("this server was started without --model: image queries need the ONNX encoder")
            # Imported here: only a server with a model reads stamps (numpy/astropy/PIL, never torch).
            from encoders.stamps import read_stamp

            if not request.image:
                raise ValueError("image is empty: send the bytes of a FITS, PNG or NPY stamp")
            stamp = read_stamp(bytes(request.image))
            # The model's fit first (a 424 px JPEG for a model of 64 px stamps), as ingestion does, so an upload
            # of an ingested file gets that file's embedding; then the size and band checks of embed_raw.
            data = self.embedder.fit.apply(stamp.data, self.embedder.stamp_size)
            cube = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
            vector = self.embedder.embed_raw(cube[np.newaxis])[0]
            rows = store.search_vector(vector, request.k, filter=filter_from_proto(request.filter))
            return _neighbours(rows, self._handle.model_id)

    def ConeSearch(self, request: ssald_pb2.ConeSearchRequest, context: grpc.ServicerContext):  # noqa: N802
        with _status_for_errors(context):
            store = self._handle.store()
            match = store.nearest_object(request.ra, request.dec, request.radius_arcsec)
            rows = self._neighbours_of(match["objid"], request)
            return ssald_pb2.ConeSearchResponse(
                match=object_to_proto(match),
                separation_arcsec=match["separation_arcsec"],
                neighbours=_neighbours(rows, "").neighbours,
                model_id=self._handle.model_id,
            )

    def Anomalies(self, request: ssald_pb2.AnomaliesRequest, context: grpc.ServicerContext):  # noqa: N802
        with _status_for_errors(context):
            rows = top_anomalies(self._handle.store(), request.n, filter_from_proto(request.filter))
            return ssald_pb2.AnomaliesResponse(anomalies=[ssald_pb2.Anomaly(object=object_to_proto(r)) for r in rows])

    def GetObject(self, request: ssald_pb2.GetObjectRequest, context: grpc.ServicerContext):  # noqa: N802
        with _status_for_errors(context):
            row = self._handle.store().get(request.objid, with_embedding=request.with_embedding)
            return object_to_proto(row)

    def Stats(self, request: ssald_pb2.StatsRequest, context: grpc.ServicerContext):  # noqa: N802
        with _status_for_errors(context):
            store = self._handle.store()
            labels = self.active_learning.labels_summary()
            return ssald_pb2.StatsResponse(
                n_objects=store.count(),
                model_id=self._handle.model_id,
                embedding_dim=store.dim,
                indexes=[ssald_pb2.IndexState(**state) for state in index_state(store.table)],
                table_version=store.version,
                n_scored=store.count_scored(),
                n_labels=labels["n_labels"],
                n_labelled_objects=labels["n_labelled_objects"],
                label_counts=labels["label_counts"],
                labels_version=labels["version"],
            )

    def NextToLabel(self, request: ssald_pb2.NextToLabelRequest, context: grpc.ServicerContext):  # noqa: N802
        with _status_for_errors(context):
            answer = self.active_learning.next_to_label(
                request.label,
                request.n,
                strategy=request.strategy,
                seed_objid=request.seed_objid if request.HasField("seed_objid") else None,
                filter=filter_from_proto(request.filter),
                classifier=request.classifier,
                exclude_objids=request.exclude_objids,
            )
            items = [
                ssald_pb2.LabelRequestItem(
                    object=object_to_proto(item),
                    reason=item["reason"],
                    **_optional(probability=item["probability"], similarity=item["similarity"]),
                )
                for item in answer["items"]
            ]
            return ssald_pb2.NextToLabelResponse(
                items=items,
                strategy=answer["strategy"],
                n_positive=answer["n_positive"],
                n_negative=answer["n_negative"],
            )

    def SubmitLabels(self, request: ssald_pb2.SubmitLabelsRequest, context: grpc.ServicerContext):  # noqa: N802
        with _status_for_errors(context):
            labels = [Label(e.objid, e.label, e.user, e.note) for e in request.labels]
            answer = self.active_learning.submit(labels, retrain=request.retrain, classifier=request.classifier)
            retrained = [
                ssald_pb2.RetrainResult(
                    label=r["label"], skipped=r["skipped"], **_optional(run=r["run"] and score_run_to_proto(r["run"]))
                )
                for r in answer["retrained"]
            ]
            return ssald_pb2.SubmitLabelsResponse(
                n_written=answer["n_written"],
                labels_version=answer["labels_version"],
                label_counts=answer["label_counts"],
                retrained=retrained,
            )

    def Candidates(self, request: ssald_pb2.CandidatesRequest, context: grpc.ServicerContext):  # noqa: N802
        with _status_for_errors(context):
            answer = self.active_learning.candidates(
                request.label,
                request.n,
                filter=filter_from_proto(request.filter),
                exclude_labelled=request.exclude_labelled,
            )
            candidates = [
                ssald_pb2.Candidate(
                    object=object_to_proto(row), score=row["score"], **_optional(current_label=row.get("label"))
                )
                for row in answer["candidates"]
            ]
            return ssald_pb2.CandidatesResponse(
                candidates=candidates, run=score_run_to_proto(answer["run"]), stale=answer["stale"]
            )

    def GetStamp(self, request: ssald_pb2.GetStampRequest, context: grpc.ServicerContext):  # noqa: N802
        with _status_for_errors(context):
            return ssald_pb2.Stamp(**self.active_learning.stamp_png(request.objid))
