"""Upkeep of the ``objects`` table after writes: indexes, missing density scores, old versions.

``ssald ingest`` ends with :func:`finalize` (also :meth:`ssald_index.store.ObjectStore.finalize`), so a
table is searchable and scored as soon as an ingest returns; ``ssald index`` rebuilds everything instead.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from ssald_index.ann import refresh_indexes
from ssald_index.density import update_density
from ssald_index.search import StoreView

__all__ = ["FINALIZE_MAX_SCORED", "finalize"]

#: :func:`finalize` scores at most this many new objects itself; a larger first ingest leaves scoring
#: to ``ssald index``, which shows its progress.
FINALIZE_MAX_SCORED = 50_000

log = logging.getLogger(__name__)


def finalize(store: StoreView, keep_versions_for: timedelta = timedelta(hours=1), progress: bool = False) -> None:
    """Bring indexes and anomaly scores up to date after writes.

    Missing indexes are created and new rows folded into existing ones without a rebuild
    (:func:`ssald_index.ann.refresh_indexes`). Rows without a density score are then scored
    (:func:`ssald_index.density.update_density`, through the ANN index when there is one) if there
    are at most ``FINALIZE_MAX_SCORED`` of them. Old versions are removed.

    Parameters
    ----------
    store : StoreView
        The store written to (an :class:`ssald_index.store.ObjectStore`).
    keep_versions_for : timedelta
        Table versions older than this are deleted; readers (a running server)
        may still hold a recent one, so they are not removed at once.
    progress : bool
        Show progress bars.
    """
    table = store.table
    refresh_indexes(table, keep_versions_for=keep_versions_for)
    missing = table.count_rows("density_score IS NULL")
    if 0 < missing <= FINALIZE_MAX_SCORED:
        update_density(store, only_missing=True, progress=progress)
        # The scored rows were rewritten: fold them back into the indexes.
        table.optimize(cleanup_older_than=keep_versions_for)
    elif missing:
        log.warning("%d objects without a density score: run `ssald index --db DB` to score them", missing)
