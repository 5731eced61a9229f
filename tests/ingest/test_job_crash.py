"""Crash safety: SIGKILL the ``ssald ingest`` process at several points, re-run, compare with an uninterrupted run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from astropy.io import fits

from ssald_index.store import ObjectStore

CHUNK = 30


def _input(survey: Path, tmp_path: Path) -> Path:
    """The survey's stamps plus a truncated file and a duplicate objid, so quarantine happens mid-run."""
    data = tmp_path / "data"
    shutil.copytree(survey / "stamps", data)
    stamps = sorted(data.glob("*.fits"))
    (data / "9000000001.fits").write_bytes(stamps[0].read_bytes()[:3000])
    fits.writeto(data / "zz_duplicate.fits", fits.getdata(stamps[5]), fits.getheader(stamps[5]))
    return data


def _ingest_cmd(data: Path, model: Path, db: Path, catalogue: Path) -> list[str]:
    args = ["ingest", "--data", str(data), "--model", str(model), "--db", str(db), "--catalogue", str(catalogue)]
    args += ["--chunk-size", str(CHUNK), "--batch-size", "16", "--workers", "1", "--no-progress"]
    return [sys.executable, "-m", "clients.cli", *args]


def _commits(db: Path) -> int:
    versions = db / "objects.lance" / "_versions"
    return len(list(versions.glob("*.manifest"))) if versions.is_dir() else 0


def _run_and_kill(cmd: list[str], db: Path, after_commits: int) -> bool:
    """Start ``cmd``; SIGKILL it once the objects table has ``after_commits`` more versions. True if killed."""
    start = _commits(db)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if _commits(db) - start >= after_commits:
            os.killpg(proc.pid, signal.SIGKILL)  # the whole group: the ingest process and its decoding workers
            proc.wait()
            return True
        time.sleep(0.005)
    proc.wait()
    return False


def _table(db: Path) -> pa.Table:
    table = ObjectStore.open(db).table.to_arrow()
    return table.sort_by("objid")


def test_sigkill_at_several_points_then_rerun_equals_uninterrupted_run(survey, tiny_model, tmp_path):
    data = _input(survey, tmp_path)
    catalogue = survey / "catalogue.fits"
    reference_db, crashed_db = tmp_path / "reference", tmp_path / "crashed"

    done = subprocess.run(_ingest_cmd(data, tiny_model, reference_db, catalogue), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ingested 240 stamps, quarantined 2" in done.stdout

    cmd = _ingest_cmd(data, tiny_model, crashed_db, catalogue)
    kills = [_run_and_kill(cmd, crashed_db, after) for after in (1, 2, 3)]
    assert all(kills), f"the ingest finished before it could be killed: {kills}"
    partial = ObjectStore.open(crashed_db).count()
    assert 0 < partial < 240, partial
    rerun = subprocess.run(cmd, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"skipped {partial} (already embedded)" in rerun.stdout

    want, got = _table(reference_db), _table(crashed_db)
    objids = got.column("objid").to_numpy()
    assert len(objids) == len(np.unique(objids)) == 240
    np.testing.assert_array_equal(objids, want.column("objid").to_numpy())
    np.testing.assert_allclose(
        np.stack(got.column("embedding").to_numpy(zero_copy_only=False)),
        np.stack(want.column("embedding").to_numpy(zero_copy_only=False)),
        atol=1e-5,
    )
    for name in ("ra", "dec", "source", "z", "spec_class", "bpt_class", "truth_class", "model_id"):
        assert got.column(name).to_pylist() == want.column(name).to_pylist(), name
