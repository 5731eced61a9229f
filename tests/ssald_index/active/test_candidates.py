from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from clients.cli import main
from ssald_index.active.candidates import (
    AGN_BPT_CLASSES,
    candidate_filter,
    crossmatch,
    ensure_scores,
    export_candidates,
    find_candidates,
    read_reference,
)
from ssald_index.active.labels import Label, add_labels
from ssald_index.active.scores import latest_run, retrain
from tests.conftest import SHARED_DATA
from tests.ssald_index.active.test_scores import TARGET, label_some, write_survey_db

GOTHIC = SHARED_DATA / "catalogues" / "gothic_double_nuclei_681.csv"


@pytest.fixture(scope="module")
def gothic_ids() -> dict[int, str]:
    """Three real GOTHIC objids -> their system Number."""
    ref = Table.read(GOTHIC, format="ascii.csv")
    rows = [0, 10, 500]
    return {int(ref["obj ID"][i]): str(ref["Number"][i]) for i in rows}


@pytest.fixture(scope="module")
def survey_db(survey, gothic_ids, tmp_path_factory):
    """(db, rows, renamed): the survey table where three unlabelled edge-on objects carry real GOTHIC objids."""
    from tests.ssald_index.active.test_scores import survey_rows

    base = survey_rows(survey)
    edge = [o for o, t in zip(base.column("objid").to_pylist(), base.column("truth_class").to_pylist()) if t == TARGET]
    renamed = dict(zip(edge[-3:], gothic_ids))  # the labelled ones are the first edge-on objects
    db = tmp_path_factory.mktemp("cand") / "ssald.lance"
    rows = write_survey_db(survey, db, objids=renamed)
    label_some(db, rows)
    retrain(db, TARGET, cv=False)
    return db, rows, set(renamed.values())


def _all(db: Path, **kwargs) -> dict[str, np.ndarray]:
    return find_candidates(db, TARGET, 1000, **kwargs)


def test_objid_crossmatch_with_real_gothic(survey_db, gothic_ids):
    db, rows, renamed = survey_db
    cols = _all(db)
    assert len(cols["objid"]) == rows.num_rows
    ra, dec = np.asarray(cols["ra"], float), np.asarray(cols["dec"], float)
    match = crossmatch(cols["objid"], ra, dec, read_reference(GOTHIC), name="GOTHIC")
    assert match.objid_column == "obj ID" and match.ra_column is None and match.id_column == "Number"
    assert set(cols["objid"][match.known].tolist()) == renamed
    assert set(match.known_by[match.known]) == {"objid"} and set(match.known_by[~match.known]) == {""}
    assert {int(o): i for o, i in zip(cols["objid"], match.reference_id) if i} == gothic_ids
    assert np.isnan(match.separation_arcsec).all()
    assert "position matching not possible" in match.note
    # Renamed objects are edge-on and unlabelled: the classifier ranks them near the top.
    assert max(cols["rank"][match.known]) <= 60


def _reference_near(cols: dict[str, np.ndarray], offsets_arcsec: list[float]) -> Table:
    """A reference with RA/Dec that are the first candidates moved north by ``offsets_arcsec``; unrelated objids."""
    n = len(offsets_arcsec)
    dec = np.asarray(cols["dec"][:n], float) + np.asarray(offsets_arcsec) / 3600.0
    return Table({"RAJ2000": np.asarray(cols["ra"][:n], float), "DEJ2000": dec, "objID": np.arange(1, n + 1)})


def test_position_crossmatch_and_radius(survey_db, tmp_path):
    db, _, _ = survey_db
    cols = _all(db)
    ref = _reference_near(cols, [0.5, 10.0])
    path = tmp_path / "ref.fits"
    ref.write(path)
    ra, dec = np.asarray(cols["ra"], float), np.asarray(cols["dec"], float)
    match = crossmatch(cols["objid"], ra, dec, read_reference(path))
    assert (match.ra_column, match.dec_column, match.objid_column) == ("RAJ2000", "DEJ2000", "objID")
    assert match.known.tolist()[:2] == [True, False] and match.known.sum() == 1
    assert match.known_by[0] == "position" and match.reference_row[0] == 0 and match.reference_row[1] == -1
    assert match.separation_arcsec[0] == pytest.approx(0.5, abs=1e-3)
    assert match.separation_arcsec[1] == pytest.approx(10.0, abs=1e-2)
    wide = crossmatch(cols["objid"], ra, dec, read_reference(path), radius_arcsec=15.0)
    assert wide.known.tolist()[:2] == [True, True] and wide.reference_row[1] == 1
    # An objid match wins over position, and its separation is to that very entry.
    ref["objID"][1] = cols["objid"][5]
    both = crossmatch(cols["objid"], ra, dec, ref)
    assert both.known_by[5] == "objid" and both.reference_row[5] == 1
    assert both.separation_arcsec[5] > 15.0
    with pytest.raises(ValueError, match="no objid column and no RA/Dec columns"):
        crossmatch(cols["objid"], ra, dec, Table({"x": [1.0]}))
    with pytest.raises(ValueError, match="no RA column 'ra_deg'"):
        crossmatch(cols["objid"], ra, dec, ref, ra_column="ra_deg")
    with pytest.raises(ValueError, match="match radius"):
        crossmatch(cols["objid"], ra, dec, ref, radius_arcsec=0)


def test_bpt_and_redshift_filters(survey_db):
    db, rows, _ = survey_db
    bpt = [b or "" for b in rows.column("bpt_class").to_pylist()]
    z = rows.column("z").to_pylist()
    agn = {c.lower() for c in AGN_BPT_CLASSES}
    n_agn = sum(b.lower() in agn for b in bpt)
    assert 0 < n_agn < rows.num_rows
    cols = _all(db, filter=candidate_filter(bpt_agn=True))
    assert len(cols["objid"]) == n_agn and all(b.lower() in agn for b in cols["bpt_class"])
    seyfert = _all(db, filter=candidate_filter(bpt=["SEYFERT"]))
    assert len(seyfert["objid"]) == sum(b == "Seyfert" for b in bpt) > 0
    both = _all(db, filter=candidate_filter(bpt_agn=True, z_min=0.05, z_max=0.15, where="mag_r < 30"))
    expected = sum(b.lower() in agn and v is not None and 0.05 <= v <= 0.15 for b, v in zip(bpt, z))
    assert len(both["objid"]) == expected > 0
    assert np.all((both["z"] >= 0.05) & (both["z"] <= 0.15))
    top = find_candidates(db, TARGET, 5, filter=candidate_filter(bpt_agn=True))
    assert top["objid"].tolist() == cols["objid"][:5].tolist() and top["rank"].tolist() == [1, 2, 3, 4, 5]


def test_export_round_trips(survey_db, tmp_path):
    db, _, renamed = survey_db
    cols = _all(db)
    ra, dec = np.asarray(cols["ra"], float), np.asarray(cols["dec"], float)
    cols.update(crossmatch(cols["objid"], ra, dec, read_reference(GOTHIC)).columns())
    assert np.ma.isMaskedArray(cols["z"]) and cols["z"].mask.any()  # objects without spectra
    paths = export_candidates(cols, tmp_path / "cands.csv", ["csv", "fits", "votable", "parquet"])
    assert [p.name for p in paths] == ["cands.csv", "cands.fits", "cands.vot", "cands.parquet"]
    for path in paths:
        back = Table.read(path, format="ascii.csv" if path.suffix == ".csv" else None)
        assert back["objid"].tolist() == cols["objid"].tolist(), path
        assert np.allclose(back["score"], cols["score"], atol=1e-6)
        assert [str(v) for v in back["known"]] == [str(v) for v in cols["known"]]
        assert set(np.asarray(back["objid"])[np.asarray(back["known"]).astype(str) == "True"]) == renamed
        assert np.array_equal(np.ma.getmaskarray(back["z"]), cols["z"].mask), path
        strings = [str(v) for v in np.ma.filled(back["bpt_class"].astype(str), "")]
        assert [s if s != "--" else "" for s in strings] == cols["bpt_class"].tolist(), path
    with pytest.raises(ValueError, match="unknown export format"):
        export_candidates(cols, tmp_path / "x", ["xlsx"])
    with pytest.raises(ValueError, match="cannot tell the format"):
        export_candidates(cols, tmp_path / "x.txt")


def test_ensure_scores_trains_only_when_needed(survey_db):
    db, rows, _ = survey_db
    run, msg = ensure_scores(db, TARGET)
    assert msg.startswith("using stored logistic scores") and run == latest_run(db, TARGET)
    add_labels(db, [Label(int(rows.column("objid")[-1].as_py()), "not_edge_on")])
    run2, msg = ensure_scores(db, TARGET, cv=False)
    assert msg.startswith("labels, embedding model or objects changed") and run2.classifier == "logistic"
    assert run2.label_version > run.label_version and run2.n_negative == run.n_negative + 1
    run3, msg = ensure_scores(db, TARGET, classifier="forest", cv=False)
    assert "from a logistic classifier: training forest" in msg and run3.classifier == "forest"
    assert ensure_scores(db, TARGET)[0] == run3
    _, msg = ensure_scores(db, TARGET, classifier="logistic", force=True, cv=False)
    assert msg.startswith("retraining as asked")


def test_cli_end_to_end(survey, gothic_ids, tmp_path, capsys):
    db = tmp_path / "db"
    from tests.ssald_index.active.test_scores import survey_rows

    base = survey_rows(survey)
    edge = [o for o, t in zip(base.column("objid").to_pylist(), base.column("truth_class").to_pylist()) if t == TARGET]
    rows = write_survey_db(survey, db, objids=dict(zip(edge[-3:], gothic_ids)))
    label_some(db, rows)
    argv = ["candidates", "--db", str(db), "--label", TARGET, "--top", "100", "--reference", str(GOTHIC)]
    assert main([*argv, "--out", str(tmp_path / "c"), "--formats", "csv,fits,votable"]) == 0
    out = capsys.readouterr().out
    assert "no stored scores for 'edge_on': training" in out
    assert "position matching not possible" in out and "100 candidates for 'edge_on'" in out
    assert "3 already in gothic_double_nuclei_681.csv (3 by objid, 0 by position)" in out
    fits = Table.read(tmp_path / "c.fits")
    assert set(np.asarray(fits["objid"])[np.asarray(fits["known"])]) == set(gothic_ids)
    assert (tmp_path / "c.csv").is_file() and (tmp_path / "c.vot").is_file()
    assert main([*argv, "--bpt-agn", "--z-max", "0.2", "--out", str(tmp_path / "agn.vot")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("using stored logistic scores") and "lower(bpt_class) IN" in out
    agn = Table.read(tmp_path / "agn.vot")
    assert len(agn) > 0 and {str(b).lower() for b in agn["bpt_class"]} <= {"seyfert", "liner", "composite"}
    assert main(["candidates", "--db", str(db), "--label", "bad label", "--out", str(tmp_path / "x.csv")]) == 2
    assert "[A-Za-z0-9_]+" in capsys.readouterr().err
    # The installed entry point dispatches to the same command.
    ssald = Path(sys.executable).with_name("ssald")
    done = subprocess.run([str(ssald), "candidates", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--match-radius" in done.stdout
