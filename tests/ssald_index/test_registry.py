"""A table folder left without a committed version (a crash during its first write) is absent, then recreated."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from ssald_index import registry
from ssald_index.active.labels import Label, add_labels, read_labels
from ssald_index.registry import append_quarantine, connect, has_table, read_models, read_quarantine, register_model
from ssald_index.schema import LABELS, MODELS, QUARANTINE
from tests.first_commit import half_create


@pytest.fixture(autouse=True)
def _no_settle(monkeypatch):
    monkeypatch.setattr(registry, "SETTLE_SECONDS", 0.0, raising=False)


def _model(model_id: str) -> dict:
    return {"model_id": model_id, "embedding_dim": 32, "path": "m.onnx"}


def _assert_set_aside(db: Path, name: str, caplog) -> None:
    assert len(list(db.glob(f"{name}.lance.incomplete-*"))) == 1
    assert any(name in r.getMessage() and "moved it aside" in r.getMessage() for r in caplog.records)


def test_half_created_quarantine_is_absent_then_recreated(tmp_path, caplog):
    db = tmp_path / "db"
    append_quarantine(db, [{"source": "a.fits", "objid": 1, "reason": "bad"}])
    half_create(db / f"{QUARANTINE}.lance")
    assert not has_table(connect(db), QUARANTINE)
    assert read_quarantine(db).num_rows == 0
    with caplog.at_level(logging.WARNING):
        append_quarantine(db, [{"source": "b.fits", "objid": 2, "reason": "bad"}])
    assert read_quarantine(db).column("source").to_pylist() == ["b.fits"]
    _assert_set_aside(db, QUARANTINE, caplog)


def test_half_created_models_is_absent_then_recreated(tmp_path, caplog):
    db = tmp_path / "db"
    register_model(db, _model("m1"))
    half_create(db / f"{MODELS}.lance")
    assert read_models(db).num_rows == 0
    with caplog.at_level(logging.WARNING):
        register_model(db, _model("m1"))
    assert read_models(db).column("model_id").to_pylist() == ["m1"]
    _assert_set_aside(db, MODELS, caplog)


def test_half_created_labels_is_absent_then_recreated(tmp_path, caplog):
    db = tmp_path / "db"
    add_labels(db, [Label(1, "lens")])
    half_create(db / f"{LABELS}.lance")
    assert read_labels(db).num_rows == 0
    with caplog.at_level(logging.WARNING):
        assert add_labels(db, [Label(2, "ring")]) == 1
    assert read_labels(db).column("objid").to_pylist() == [2]
    _assert_set_aside(db, LABELS, caplog)


def test_empty_half_created_folder_is_removed(tmp_path, caplog):
    db = tmp_path / "db"
    (db / f"{QUARANTINE}.lance" / "data").mkdir(parents=True)
    with caplog.at_level(logging.WARNING):
        append_quarantine(db, [{"source": "a.fits", "objid": 1, "reason": "bad"}])
    assert read_quarantine(db).num_rows == 1
    assert not list(db.glob("*.incomplete-*"))
    assert any("removed" in r.getMessage() for r in caplog.records)


def test_a_first_commit_in_progress_is_left_alone(tmp_path, monkeypatch):
    """A folder still being written (changed within the settle time) is not taken for a crashed one."""
    db = tmp_path / "db"
    append_quarantine(db, [{"source": "a.fits", "objid": 1, "reason": "bad"}])
    folder = db / f"{QUARANTINE}.lance"
    manifests = folder / "_versions"
    saved = tmp_path / "versions"
    shutil.move(manifests, saved)
    monkeypatch.setattr(registry, "SETTLE_SECONDS", 30.0)
    sleeps = []

    def commit_lands(seconds: float) -> None:  # the other process commits while we wait
        sleeps.append(seconds)
        shutil.move(saved, manifests)

    monkeypatch.setattr(registry.time, "sleep", commit_lands)
    assert registry.set_aside_incomplete(connect(db), QUARANTINE) is None
    assert sleeps and has_table(connect(db), QUARANTINE)
    assert read_quarantine(db).num_rows == 1
