"""SIGKILL at seeded random points of the first commit of ``labels``, ``quarantine`` and ``models``.

Each kill hits a process doing the product's own first write of the table (see :mod:`tests.first_commit`);
whatever it left (a half-created folder, or a committed table when the kill came late), the next
write works and keeps what was committed, and a half-created folder is set aside with a log line
naming the table.
"""

from __future__ import annotations

import logging

import pytest

from ssald_index import registry
from ssald_index.active.labels import Label, add_labels, read_labels
from ssald_index.registry import append_quarantine, read_models, read_quarantine, register_model
from ssald_index.schema import LABELS, MODELS, QUARANTINE
from tests.first_commit import COMMITTED, HALF_CREATED, Writers, ensure_half_created, seeded_delays

SEED = 15
KILLS = 6


@pytest.fixture(scope="module")
def writers():
    """One process that forks the killed writers."""
    process = Writers()
    yield process
    process.close()


def _next_write(table: str, db) -> list:
    """The next run's write of ``table``, then the table's identifying column."""
    if table == "labels":
        add_labels(db, [Label(2, "ring", "next")])
        return read_labels(db).column("user").to_pylist()
    if table == "quarantine":
        append_quarantine(db, [{"source": "next.fits", "objid": 2, "reason": "unreadable"}])
        return read_quarantine(db).column("source").to_pylist()
    register_model(db, {"model_id": "next", "embedding_dim": 32, "path": "next.onnx"})
    return read_models(db).column("model_id").to_pylist()


KILLED = {"labels": "killed", "quarantine": "killed.fits", "models": "killed"}
NEXT = {"labels": "next", "quarantine": "next.fits", "models": "next"}


@pytest.mark.parametrize("table,name", [("labels", LABELS), ("quarantine", QUARANTINE), ("models", MODELS)])
def test_sigkill_during_first_commit_then_next_write_repairs(table, name, writers, tmp_path, monkeypatch, caplog):
    delays = seeded_delays(table, name, tmp_path / "timing", f"{SEED}-{table}", KILLS)
    dbs = [tmp_path / f"db{i}" for i in range(KILLS)]
    states = [writers.kill_first_write(table, name, db, delay) for db, delay in zip(dbs, delays)]
    print(table, [f"{d * 1000:.1f} ms: {s}" for d, s in zip(delays, states)])
    states = ensure_half_created(states, table, name, dbs[0])

    monkeypatch.setattr(registry, "SETTLE_SECONDS", 0.0)
    for db, state in zip(dbs, states):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger=registry.__name__):
            kept = _next_write(table, db)
        assert kept == ([KILLED[table]] if state == COMMITTED else []) + [NEXT[table]], (state, kept)
        repaired = [r.getMessage() for r in caplog.records if "half-created" in r.getMessage()]
        if state == HALF_CREATED:
            assert repaired and f"table {name!r}" in repaired[0], (state, caplog.text)
            assert list(db.glob(f"{name}.lance.incomplete-*")) or "removed" in repaired[0]
        else:
            assert not repaired, (state, caplog.text)
