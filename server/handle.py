"""The served ``objects`` table: opened lazily, kept open, and following new versions.

A server started before anything was ingested answers ``UNAVAILABLE`` until the table appears, then serves
it without a restart.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from ssald_index.ann import SearchParams
from ssald_index.store import ObjectStore, TableNotReady

__all__ = ["StoreHandle"]

log = logging.getLogger(__name__)


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
