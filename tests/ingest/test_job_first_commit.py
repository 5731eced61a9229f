"""Crash safety of the first commit: a half-created ``objects`` table must not wedge later ingests."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ingest.job import ingest
from ingest.options import IngestInput, IngestOptions
from ssald_index import registry
from ssald_index.schema import MODELS, QUARANTINE
from ssald_index.store import ObjectStore, read_models, read_quarantine
from tests.conftest import SURVEY_N
from tests.first_commit import HALF_CREATED, Writers, age, ensure_half_created, seeded_delays, table_state

GOOD = 10


def _ingest(survey: Path, model: Path, db: Path):
    options = IngestOptions(progress=False, chunk_size=100)
    return ingest(IngestInput(survey, catalogue=survey / "catalogue.fits"), model, db, options)


def test_rerun_after_half_created_objects_ingests_everything(survey, tiny_model, tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "SETTLE_SECONDS", 0.0, raising=False)
    db = tmp_path / "db"
    _ingest(survey, tiny_model, db)
    folder = db / "objects.lance"
    shutil.rmtree(folder / "_versions")
    shutil.rmtree(folder / "_transactions", ignore_errors=True)

    summary = _ingest(survey, tiny_model, db)
    assert summary.ingested == SURVEY_N and summary.skipped == 0
    store = ObjectStore.open(db)
    assert store.count() == SURVEY_N and len(np.unique(store.objids())) == SURVEY_N
    assert len(list(db.glob("objects.lance.incomplete-*"))) == 1


def _cmd(survey: Path, model: Path, db: Path) -> list[str]:
    args = ["ingest", "--data", str(survey / "stamps"), "--model", str(model), "--db", str(db)]
    args += ["--catalogue", str(survey / "catalogue.fits"), "--chunk-size", "100", "--workers", "1", "--no-progress"]
    return [sys.executable, "-m", "clients.cli", *args]


def _kill_during_first_commit(cmd: list[str], db: Path) -> bool:
    """SIGKILL ``cmd`` once ``objects.lance`` holds data but no manifest. True if it was caught there."""
    folder = db / "objects.lance"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if (folder / "data").is_dir() and any((folder / "data").iterdir()):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return not list((folder / "_versions").glob("*.manifest"))
        time.sleep(0.0005)
    proc.wait()
    return False


def test_sigkill_during_first_commit_then_rerun_ingests_each_stamp_once(survey, tiny_model, tmp_path):
    for attempt in range(5):
        db = tmp_path / f"db{attempt}"
        if _kill_during_first_commit(_cmd(survey, tiny_model, db), db):
            break
    else:  # the kill never landed in the window (a fast first commit): leave what it would have left
        shutil.rmtree(db / "objects.lance" / "_versions")
        shutil.rmtree(db / "objects.lance" / "_transactions", ignore_errors=True)
    rerun = subprocess.run(_cmd(survey, tiny_model, db), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "half-created" in rerun.stderr
    store = ObjectStore.open(db)
    assert store.count() == SURVEY_N and len(np.unique(store.objids())) == SURVEY_N


def test_sigkill_during_first_commit_of_quarantine_and_models_then_ingest_repairs(survey, tiny_model, tmp_path, caplog):
    """The next ``ingest`` registers its model and quarantines a bad stamp over the half-created tables."""
    data, db = tmp_path / "data", tmp_path / "db"
    data.mkdir()
    good = sorted((survey / "stamps").glob("*.fits"))[:GOOD]
    for path in good:
        shutil.copy(path, data / path.name)
    (data / "broken.fits").write_bytes(b"not a FITS file")
    writers = Writers()
    try:
        for name in (QUARANTINE, MODELS):
            delay = seeded_delays(name, name, tmp_path / f"timing-{name}", f"15-ingest-{name}", 1)[0]
            # A late kill leaves a committed table: ensure_half_created then leaves what one inside the commit does.
            assert ensure_half_created([writers.kill_first_write(name, name, db, delay)], name, name, db)
            assert table_state(db, name) == HALF_CREATED
    finally:
        writers.close()
    for name in (QUARANTINE, MODELS):
        age(db / f"{name}.lance", 2 * registry.SETTLE_SECONDS)

    with caplog.at_level(logging.WARNING, logger=registry.__name__):
        summary = ingest(data, tiny_model, db, IngestOptions(progress=False))
    assert (summary.ingested, summary.quarantined) == (GOOD, 1)
    assert [Path(s).name for s in read_quarantine(db).column("source").to_pylist()] == ["broken.fits"]
    assert read_models(db).column("model_id").to_pylist() == [summary.model_id]
    for name in (QUARANTINE, MODELS):
        assert any(f"table {name!r} was half-created" in r.getMessage() for r in caplog.records), caplog.text
        assert len(list(db.glob(f"{name}.lance.incomplete-*"))) == 1
