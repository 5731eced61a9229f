"""Messy stamp folders through the real ``ingest()``: bad OBJIDs and entries that are not stamp files.

Every bad entry becomes a ``quarantine`` row naming the file and what was wrong; every good stamp is
still embedded, and a re-run neither aborts nor embeds anything twice.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
from astropy.io import fits

from ingest.job import ingest
from ingest.options import IngestOptions
from ssald_index.store import ObjectStore, read_quarantine

GOOD = 10


def _good_stamps(survey: Path, data: Path, n: int = GOOD) -> list[int]:
    """Copy ``n`` survey stamps into ``data``; their objids."""
    data.mkdir()
    objids = []
    for p in sorted((survey / "stamps").glob("*.fits"))[:n]:
        shutil.copy(p, data / p.name)
        objids.append(int(fits.getheader(p)["OBJID"]))
    return objids


def _stamp_with(survey: Path, path: Path, **cards: object) -> None:
    """A valid cube from the survey written to ``path`` with only ``cards`` (and BANDS) in its header."""
    source = sorted((survey / "stamps").glob("*.fits"))[-1]
    header = fits.Header({"BANDS": fits.getheader(source)["BANDS"]})
    for key, value in cards.items():
        header[key] = value
    fits.writeto(path, fits.getdata(source), header)


def _quarantine(db: Path) -> dict[str, dict]:
    return {Path(r["source"]).name: r for r in read_quarantine(db).to_pylist()}


BAD_OBJIDS = {
    "too_big.fits": 2**64,
    "minus_one.fits": -1,
    "zero.fits": 0,
    "int64_min.fits": -(2**63),
    "float.fits": 1.5,
    "bool.fits": True,
}


def test_bad_objid_headers_are_quarantined_and_the_job_carries_on(survey, tiny_model, tmp_path):
    data, db = tmp_path / "data", tmp_path / "db"
    good = _good_stamps(survey, data)
    for name, value in BAD_OBJIDS.items():
        _stamp_with(survey, data / name, OBJID=value)
    _stamp_with(survey, data / f"{2**64}.fits")  # no OBJID key: the numeric file name is out of range
    _stamp_with(survey, data / "0.fits")

    summary = ingest(data, tiny_model, db, IngestOptions(progress=False))

    assert summary.ingested == GOOD and summary.quarantined == len(BAD_OBJIDS) + 2
    assert sorted(ObjectStore.open(db).objids().tolist()) == sorted(good)
    q = _quarantine(db)
    assert set(q) == {*BAD_OBJIDS, f"{2**64}.fits", "0.fits"}
    for name, value in BAD_OBJIDS.items():
        reason = q[name]["reason"]
        assert name in reason and "OBJID" in reason, reason
        assert ("T" if value is True else repr(value)) in reason, reason
        assert q[name]["objid"] is None
    assert str(2**64) in q[f"{2**64}.fits"]["reason"] and "file name" in q[f"{2**64}.fits"]["reason"]
    assert "file name" in q["0.fits"]["reason"]

    again = ingest(data, tiny_model, db, IngestOptions(progress=False))
    assert again.ingested == 0 and again.skipped == GOOD and again.quarantined == len(BAD_OBJIDS) + 2
    assert ObjectStore.open(db).count() == GOOD


def test_objid_at_the_int64_limit_and_as_a_digit_string_are_kept(survey, tiny_model, tmp_path):
    data, db = tmp_path / "data", tmp_path / "db"
    _good_stamps(survey, data, n=2)
    _stamp_with(survey, data / "largest.fits", OBJID=2**63 - 1)
    _stamp_with(survey, data / "one.fits", OBJID=1)
    _stamp_with(survey, data / "string.fits", OBJID="1237645879551066262")

    summary = ingest(data, tiny_model, db, IngestOptions(progress=False))

    assert summary.ingested == 5 and summary.quarantined == 0, _quarantine(db)
    assert {2**63 - 1, 1, 1237645879551066262} <= set(ObjectStore.open(db).objids().tolist())


def test_directories_and_broken_links_are_quarantined_and_good_links_followed(survey, tiny_model, tmp_path):
    data, db = tmp_path / "data", tmp_path / "db"
    good = _good_stamps(survey, data)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    _stamp_with(survey, outside / "target.fits", OBJID=424242)
    os.symlink(outside / "target.fits", data / "linked.fits")
    (data / "x.fits").mkdir()
    os.symlink(outside, data / "dirlink.fits")
    os.symlink(tmp_path / "missing.fits", data / "dangling.fits")
    os.symlink("loop.fits", data / "loop.fits")
    os.symlink("ping.fits", data / "pong.fits")
    os.symlink("pong.fits", data / "ping.fits")
    (data / "notes.txt").write_text("not a stamp")  # not a stamp name: ignored, as before

    summary = ingest(data, tiny_model, db, IngestOptions(progress=False))

    assert summary.ingested == GOOD + 1
    assert sorted(ObjectStore.open(db).objids().tolist()) == sorted([*good, 424242])
    q = _quarantine(db)
    expected = {
        "x.fits": "is a directory",
        "dirlink.fits": "is a directory",
        "dangling.fits": "dangling symbolic link",
        "loop.fits": "symbolic link loop",
        "ping.fits": "symbolic link loop",
        "pong.fits": "symbolic link loop",
    }
    assert set(q) == set(expected) and summary.quarantined == len(expected)
    for name, problem in expected.items():
        assert problem in q[name]["reason"] and name in q[name]["reason"], q[name]["reason"]
    assert np.all([r["objid"] is None for r in q.values()])

    again = ingest(data, tiny_model, db, IngestOptions(progress=False))
    assert again.ingested == 0 and again.skipped == GOOD + 1


def test_bad_objids_of_an_array_file_are_quarantined_and_its_other_rows_embedded(survey, tiny_model, tmp_path):
    """Rows of an ``.npy`` stack whose objid (from ``cubes_objid.npy``) is -1, 0 or -2**63 are quarantined
    naming the row and the value; the rows between them are still read in runs and embedded."""
    paths = sorted((survey / "stamps").glob("*.fits"))[:7]
    good = [int(fits.getheader(p)["OBJID"]) for p in paths]
    objids = np.array([good[0], -1, good[2], good[3], 0, good[5], -(2**63)], np.int64)
    data, db = tmp_path / "data", tmp_path / "db"
    data.mkdir()
    np.save(data / "cubes.npy", np.stack([fits.getdata(p) for p in paths]))
    np.save(data / "cubes_objid.npy", objids)

    summary = ingest(data / "cubes.npy", tiny_model, db, IngestOptions(progress=False))

    assert (summary.ingested, summary.quarantined) == (4, 3)
    assert sorted(ObjectStore.open(db).objids().tolist()) == sorted(good[i] for i in (0, 2, 3, 5))
    q = _quarantine(db)
    assert set(q) == {"cubes.npy[1]", "cubes.npy[4]", "cubes.npy[6]"}
    for name, value in (("cubes.npy[1]", -1), ("cubes.npy[4]", 0), ("cubes.npy[6]", -(2**63))):
        assert f"{name}: objid entry {value} is not an objid" in q[name]["reason"], q[name]["reason"]
        assert q[name]["objid"] is None
