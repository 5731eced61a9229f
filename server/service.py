"""The ``ssald.v1.Ssald`` servicer over an :class:`ssald_index.store.ObjectStore`.

The servicer holds no state of its own beyond a :class:`StoreHandle`, which opens the ``objects`` table
lazily: a server started before anything was ingested answers ``UNAVAILABLE`` until the table appears,
then serves it without a restart. Storage errors map to status codes as documented in
``proto/ssald.proto``:

=======================  ====================
``ObjectNotFound``       ``NOT_FOUND``
``ValueError``           ``INVALID_ARGUMENT``
``TableNotReady``        ``UNAVAILABLE``
anything else            ``INTERNAL`` (logged)
=======================  ====================
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from proto import ssald_pb2, ssald_pb2_grpc
from ssald_index.store import ObjectNotFound, ObjectStore, TableNotReady

__all__ = ["StoreHandle", "SsaldServicer", "object_to_proto"]

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
    """Opens the ``objects`` table on first use and keeps it open.

    The table version current at opening is served (LanceDB snapshot); restart the server to serve rows
    ingested since.

    Parameters
    ----------
    db_path : path
        LanceDB database directory.
    on_ready : callable, optional
        Called once, with the opened store, when the table is first opened (the server uses it to flip
        its health status to SERVING and to compare model ids).
    """

    def __init__(self, db_path: str | os.PathLike[str], on_ready: Callable[[ObjectStore], None] | None = None) -> None:
        self.db_path = os.fspath(db_path)
        self._on_ready = on_ready
        self._store: ObjectStore | None = None
        self._model_id: str | None = None
        self._lock = threading.Lock()

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
                store = ObjectStore.open(self.db_path)
                # model_id scans a column: read it once per opened snapshot, not per request.
                self._model_id = store.model_id
                self._store = store
                log.info("opened %s: %d objects, model %s", self.db_path, store.count(), self._model_id)
                if self._on_ready is not None:
                    self._on_ready(store)
            return self._store

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
    except ValueError as exc:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    except Exception as exc:  # noqa: BLE001 - the client gets a status, the log gets the traceback
        log.exception("internal error")
        context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}")


class SsaldServicer(ssald_pb2_grpc.SsaldServicer):
    """Implements ``ssald.v1.Ssald`` over a :class:`StoreHandle`.

    Parameters
    ----------
    handle : StoreHandle
        Gives the open store, or raises ``TableNotReady``.
    embedder : encoders.embedder.OnnxEmbedder, optional
        The encoder of the table's embeddings, kept for the image RPCs of DESIGN §5.
    """

    def __init__(self, handle: StoreHandle, embedder: Any = None) -> None:
        self._handle = handle
        self.embedder = embedder

    def FindSimilar(self, request: ssald_pb2.FindSimilarRequest, context: grpc.ServicerContext):  # noqa: N802
        with _status_for_errors(context):
            rows = self._handle.store().neighbours(request.objid, request.k)
            neighbours = [ssald_pb2.Neighbour(object=object_to_proto(row), distance=row["distance"]) for row in rows]
            return ssald_pb2.NeighboursResponse(neighbours=neighbours, model_id=self._handle.model_id)

    def GetObject(self, request: ssald_pb2.GetObjectRequest, context: grpc.ServicerContext):  # noqa: N802
        with _status_for_errors(context):
            row = self._handle.store().get(request.objid, with_embedding=request.with_embedding)
            return object_to_proto(row)

    def Stats(self, request: ssald_pb2.StatsRequest, context: grpc.ServicerContext):  # noqa: N802
        with _status_for_errors(context):
            store = self._handle.store()
            return ssald_pb2.StatsResponse(
                n_objects=store.count(), model_id=self._handle.model_id, embedding_dim=store.dim
            )
