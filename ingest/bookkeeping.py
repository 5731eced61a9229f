"""Which input objids an ingest run embeds, skips or quarantines, which commits may append, and what it counted.

Both engines (:mod:`ingest.job`, :mod:`ingest.ray_engine`) walk the input in order through one
:class:`Ledger`: the first occurrence of an objid this model has already embedded is skipped
(that is how a re-run resumes), any later occurrence of an objid met earlier in the input is
quarantined as a duplicate, and everything else is embedded. Because the ledger also knows
every objid the table held when the run started, it can tell the writer when a chunk is made
only of objids absent from the table: such a chunk is appended (one atomic Lance commit, no
join against the table's objids) rather than merge-inserted. An engine receives the ledger with the
rest of the run's state in one :class:`IngestRun` and counts what it did in its :class:`IngestSummary`.

Notes
-----
Appending is only safe while no other process inserts rows into the same table, so
:func:`ingest_lock` serialises ingest runs on one database: a second ``ssald ingest`` into the
same ``--db`` waits for the first to finish, then reads the table afresh (so it skips what the
first one embedded). The lock is an advisory ``fcntl`` lock on ``DB/_ingest.lock``: the kernel
drops it when the holder dies, even by SIGKILL. It does not protect a database on a file
system without POSIX locks, or writers that are not ``ssald ingest``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc

from ingest.catalogue import Catalogue
from ingest.pipeline import Spec
from ingest.sources import Item
from ssald_index.store import ObjectStore, TableNotReady

__all__ = ["LOCK_NAME", "IngestRun", "IngestSummary", "Ledger", "ingest_lock", "table_objids"]

#: File in the database directory whose lock serialises ingest runs.
LOCK_NAME = "_ingest.lock"
log = logging.getLogger(__name__)


def table_objids(db: str | os.PathLike[str], model_id: str) -> tuple[np.ndarray, np.ndarray]:
    """Sorted int64 objids in the ``objects`` table of ``db``: ``(embedded by model_id, all)``.

    Both are empty when there is no table yet. One scan of the ``objid`` and ``model_id`` columns.
    """
    try:
        table = ObjectStore.open(db).table
    except TableNotReady:
        empty = np.empty(0, np.int64)
        return empty, empty
    found = table.search().select(["objid", "model_id"]).limit(None).to_arrow()
    objids = found.column("objid").to_numpy().astype(np.int64)
    mine = pc.equal(found.column("model_id"), model_id).fill_null(False).to_numpy(zero_copy_only=False)
    return np.sort(objids[mine]), np.sort(objids)


def _contains(sorted_ids: np.ndarray, objid: int) -> bool:
    i = int(np.searchsorted(sorted_ids, objid))
    return i < len(sorted_ids) and int(sorted_ids[i]) == objid


@dataclass
class Ledger:
    """The skip/duplicate rules of one ingest run, applied in input order.

    Attributes
    ----------
    done : numpy.ndarray
        Sorted objids to skip (already embedded by this model; empty with ``--refresh``).
    present : numpy.ndarray
        Sorted objids in the table when the run started, whatever their model.
    seen : set of int
        Every objid met so far (embedded, skipped or quarantined with a known objid).
    skipped : int
        Objids skipped because ``done`` holds them.
    """

    done: np.ndarray
    present: np.ndarray
    seen: set[int] = field(default_factory=set)
    skipped: int = 0

    def todo(self, items: Sequence[Item]) -> list[int]:
        """Positions of the items left to prepare; items whose objid is already done are skipped here.

        Only items that carry their objid before reading (file names, catalogue rows) can be
        skipped up front; the others go through :meth:`take` once read.
        """
        keep = []
        for i, item in enumerate(items):
            objid = item.objid
            if objid is not None and objid not in self.seen and _contains(self.done, objid):
                self.seen.add(objid)
                self.skipped += 1
            else:
                keep.append(i)
        return keep

    def take(self, objid: int, source: str) -> tuple[bool, dict[str, Any] | None]:
        """Apply the rules to one good stamp, in input order: ``(embed it?, quarantine row or None)``.

        A repeated objid gives a quarantine row; an objid in ``done`` is skipped (counted in ``skipped``).
        """
        if objid in self.seen:
            return False, {"source": source, "objid": objid, "reason": f"duplicate objid {objid} in the input"}
        self.seen.add(objid)
        if _contains(self.done, objid):
            self.skipped += 1
            return False, None
        return True, None

    def quarantined(self, objid: int | None) -> None:
        """Record the objid of a stamp that failed to read or validate (a later copy is a duplicate)."""
        if objid is not None:
            self.seen.add(int(objid))

    def all_new(self, objids: Sequence[int] | np.ndarray) -> bool:
        """Whether none of ``objids`` was in the table when the run started (so they may be appended).

        Objids embedded earlier in this run are not in ``present``, but :meth:`take` never lets one
        objid be embedded twice in a run, so they cannot come back.
        """
        if not len(self.present):
            return True
        ids = np.asarray(objids, np.int64)
        pos = np.minimum(np.searchsorted(self.present, ids), len(self.present) - 1)
        return not bool(np.any(self.present[pos] == ids))


@dataclass
class IngestSummary:
    """What one ingest run did."""

    ingested: int = 0
    quarantined: int = 0
    skipped: int = 0
    without_catalogue_row: int = 0
    catalogue_rows_without_stamp: int = 0
    removed_other_model: int = 0
    seconds: float = 0.0
    pipeline_seconds: float = 0.0
    finalize_seconds: float = 0.0
    model_id: str = ""
    engine: str = "local"
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Ingested stamps per second."""
        return self.ingested / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        """One-line summary for the terminal."""
        return (
            f"ingested {self.ingested} stamps, quarantined {self.quarantined}, skipped {self.skipped} "
            f"(already embedded), {self.without_catalogue_row} without catalogue row, "
            f"{self.catalogue_rows_without_stamp} catalogue rows without stamp, "
            f"in {self.seconds:.1f} s ({self.rate:.0f} stamps/s; read-to-commit {self.pipeline_seconds:.1f} s, "
            f"indexes and scores {self.finalize_seconds:.1f} s), model {self.model_id}, engine {self.engine}"
        )

    def count(self, bad: Sequence[dict[str, Any]]) -> None:
        """Add quarantine rows to the counts (reasons keyed without the source name)."""
        self.quarantined += len(bad)
        for row in bad:
            reason = str(row["reason"]).removeprefix(f"{row['source']}: ")
            self.reasons[reason] = self.reasons.get(reason, 0) + 1


@dataclass
class IngestRun:
    """What :func:`ingest.job.ingest` resolved before an engine starts: the work, the rules and the counts.

    Both engines take one, so they see the same input, apply the same :class:`Ledger` and fill the same
    :class:`IngestSummary`.

    Attributes
    ----------
    items : list of Item
        Every discovered item, in input order.
    spec : Spec
        The model's contract and the reader options, for :func:`ingest.pipeline.prepare`.
    model : Path
        The ``.onnx`` file (the Ray engine's actors load their own sessions from it).
    db : Path
        The database directory.
    catalogue : Catalogue or None
        Joined on objid into every row.
    ledger : Ledger
        The skip/duplicate rules, applied in input order.
    summary : IngestSummary
        What the run did so far.
    """

    items: list[Item]
    spec: Spec
    model: Path
    db: Path
    catalogue: Catalogue | None
    ledger: Ledger
    summary: IngestSummary


@contextmanager
def ingest_lock(db: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the database's ingest lock (waiting, with a log line, while another run holds it).

    See the module notes. Where ``fcntl`` is unavailable (Windows) nothing is locked.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    path = Path(db)
    path.mkdir(parents=True, exist_ok=True)
    with open(path / LOCK_NAME, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            log.warning("another ingest (pid %s) is writing to %s: waiting for it to finish", holder, os.fspath(db))
            fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
