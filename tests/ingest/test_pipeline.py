"""The ingest stages: shared-memory hand-over from worker processes, the writer thread off the critical path."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from encoders.embedder import OnnxEmbedder
from ingest.job import ingest, resolve_fit
from ingest.options import IngestOptions
from ingest.pipeline import Prefetcher, Spec
from ingest.sources import discover
from ssald_index.store import ObjectStore, read_quarantine
from tests.conftest import SURVEY_N


def _spec(model) -> Spec:
    emb = OnnxEmbedder(model, providers="cpu")
    return Spec(tuple(emb.bands), emb.stamp_size, emb.lupton, fit=resolve_fit(emb), morphology=False)


@pytest.fixture(scope="module")
def data_with_a_bad_stamp(survey, tmp_path_factory):
    data = tmp_path_factory.mktemp("data") / "stamps"
    data.mkdir()
    for path in sorted((survey / "stamps").glob("*.fits"))[:60]:
        shutil.copy(path, data / path.name)
    (data / "999.fits").write_bytes(b"not a FITS file")
    return data.parent


def _run(prefetcher: Prefetcher, items) -> tuple[list[int], np.ndarray, list[dict]]:
    objids, cubes, bad = [], [], []
    with prefetcher:
        for _, prepared in prefetcher.map(items):
            objids += prepared.objids
            bad += prepared.bad
            if prepared.cubes is not None:
                cubes.append(prepared.cubes)
    return objids, np.concatenate(cubes), bad


def test_shared_memory_pickle_and_thread_hand_over_the_same_stamps(tiny_model, data_with_a_bad_stamp) -> None:
    spec = _spec(tiny_model)
    items = discover(data_with_a_bad_stamp, bands=spec.bands)
    thread = Prefetcher(spec, 0, task_size=8)
    shared = Prefetcher(spec, 2, task_size=8, window=3, shared=True)
    pickled = Prefetcher(spec, 1, task_size=8, shared=False)
    assert (thread.transport, shared.transport, pickled.transport) == ("thread", "shared memory", "pickle")
    ring = shared._ring.path
    expected = _run(thread, items)
    assert len(expected[0]) == 60 and len(expected[2]) == 1 and expected[2][0]["objid"] is not None
    for prefetcher in (shared, pickled):
        objids, cubes, bad = _run(prefetcher, items)
        assert objids == expected[0] and bad == expected[2]
        np.testing.assert_array_equal(cubes, expected[1])
    assert not os.path.exists(ring)  # closing frees the shared memory


def test_the_ring_falls_back_to_a_file_when_dev_shm_is_small(tiny_model, data_with_a_bad_stamp, monkeypatch):
    import ingest.pipeline as pipeline

    spec = _spec(tiny_model)
    items = discover(data_with_a_bad_stamp, bands=spec.bands)[:20]
    monkeypatch.setattr(pipeline.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(64, 0, 64))
    prefetcher = Prefetcher(spec, 1, task_size=8)
    path = prefetcher._ring.path
    assert not path.startswith("/dev/shm") and os.path.exists(path)
    monkeypatch.undo()
    objids, cubes, _ = _run(prefetcher, items)
    expected = _run(Prefetcher(spec, 0, task_size=8), items)
    assert objids == expected[0]
    np.testing.assert_array_equal(cubes, expected[1])
    assert not os.path.exists(path)


def test_a_killed_jobs_ring_is_removed_by_the_next_one(tiny_model, tmp_path, monkeypatch) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    import ingest.pipeline as pipeline

    monkeypatch.setattr(pipeline.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(64, 0, 64))
    stale = tmp_path / "ssald-ingest-ring-999999999-abc.f32"  # no such pid
    live = tmp_path / f"ssald-ingest-ring-{os.getpid()}-abc.f32"
    stale.write_bytes(b"x")
    live.write_bytes(b"x")
    with Prefetcher(_spec(tiny_model), 1, task_size=4) as prefetcher:
        assert prefetcher._ring.path.startswith(str(tmp_path))
    assert not stale.exists() and live.exists()


def test_ingest_with_workers_equals_ingest_inline(survey, tiny_model, tmp_path) -> None:
    kwargs = {"progress": False, "batch_size": 16, "chunk_size": 40, "providers": "cpu", "morphology": False}
    inline = ingest(survey, tiny_model, tmp_path / "a", IngestOptions(workers=0, **kwargs))
    workers = ingest(survey, tiny_model, tmp_path / "b", IngestOptions(workers=2, **kwargs))
    assert inline.ingested == workers.ingested == SURVEY_N
    a, b = ObjectStore.open(tmp_path / "a"), ObjectStore.open(tmp_path / "b")
    ids = np.sort(a.objids())
    np.testing.assert_array_equal(ids, np.sort(b.objids()))
    for objid in ids[:: len(ids) // 8]:
        ra, rb = a.get(int(objid), with_embedding=True), b.get(int(objid), with_embedding=True)
        np.testing.assert_allclose(ra["embedding"], rb["embedding"], atol=1e-5)


def test_a_failed_commit_stops_the_job_and_a_rerun_loses_nothing(survey, tiny_model, tmp_path, monkeypatch) -> None:
    import ingest.job as job

    real, calls = ObjectStore.write, []

    def failing(db, rows, new):
        calls.append(rows.num_rows)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(db, rows, new=new)

    monkeypatch.setattr(job.ObjectStore, "write", staticmethod(failing))
    options = IngestOptions(progress=False, batch_size=16, chunk_size=40, providers="cpu", morphology=False, workers=0)
    with pytest.raises(OSError, match="disk full"):
        ingest(survey, tiny_model, tmp_path / "db", options)
    monkeypatch.setattr(job.ObjectStore, "write", staticmethod(real))
    again = ingest(survey, tiny_model, tmp_path / "db", options)
    assert again.skipped >= 80 and again.skipped + again.ingested == SURVEY_N
    store = ObjectStore.open(tmp_path / "db")
    assert store.count() == SURVEY_N == len(np.unique(store.objids()))
    assert read_quarantine(tmp_path / "db").num_rows == 0
