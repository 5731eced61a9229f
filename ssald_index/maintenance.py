"""Upkeep of the ``objects`` table after writes: indexes, missing density scores, old versions.

``ssald ingest`` ends with :func:`finalize` (also :meth:`ssald_index.store.ObjectStore.finalize`), so a
table is searchable and every object scored as soon as an ingest returns, whatever its size;
``ssald index`` rebuilds everything instead.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from ssald_index.ann import refresh_indexes
from ssald_index.density import update_density
from ssald_index.search import StoreView

__all__ = ["finalize"]

log = logging.getLogger(__name__)


def finalize(
    store: StoreView, keep_versions_for: timedelta = timedelta(hours=1), progress: bool = False
) -> dict[str, float]:
    """Bring indexes and anomaly scores up to date after writes.

    Missing indexes are created and new rows folded into existing ones without a rebuild
    (:func:`ssald_index.ann.refresh_indexes`). Every row without a density score is then scored against
    the whole table (:func:`ssald_index.density.update_density`: a batched scan of the IVF partitions,
    memory bounded whatever the table's size), and the rewritten rows folded back into the indexes. Old
    versions are removed.

    Parameters
    ----------
    store : StoreView
        The store written to (an :class:`ssald_index.store.ObjectStore`).
    keep_versions_for : timedelta
        Table versions older than this are deleted; readers (a running server)
        may still hold a recent one, so they are not removed at once.
    progress : bool
        Show a progress bar while scoring.

    Returns
    -------
    dict
        ``indexes_seconds``, ``scores_seconds`` and ``scored`` (objects scored).
    """
    table = store.table
    start = time.perf_counter()
    refresh_indexes(table, keep_versions_for=keep_versions_for)
    indexed = time.perf_counter()
    scored = update_density(store, only_missing=True, progress=progress)
    if scored:
        # The scored rows were rewritten: fold them back into the indexes.
        table.optimize(cleanup_older_than=keep_versions_for)
    seconds = time.perf_counter() - indexed
    if scored:
        log.info("scored %d objects in %.1f s (%.0f objects/s)", scored, seconds, scored / max(seconds, 1e-9))
    return {"indexes_seconds": indexed - start, "scores_seconds": seconds, "scored": float(scored)}
