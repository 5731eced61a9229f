from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from ingest.catalogue import read_catalogue

GOTHIC = Path(__file__).resolve().parents[2].parent / "shared/data/catalogues/gothic_double_nuclei_681.csv"


def test_real_gothic_catalogue_maps_sdss_columns():
    cat = read_catalogue(GOTHIC)
    assert len(cat) == 1393
    row = cat.row(1237645942905700478)
    assert row["z"] == pytest.approx(0.131)
    assert row["mag_z"] == pytest.approx(16.34)  # plain "z" beside u,g,r,i is a magnitude
    assert row["mag_r"] == pytest.approx(17.44)
    assert row["spec_class"] == "GALAXY"
    assert row["spec_subclass"] is None  # "..." means unclassified
    assert row["bpt_class"] == "composite"
    assert cat.row(1237645942905700479)["bpt_class"] is None
    assert cat.row(42) is None


def test_sdss_specobj_names_case_insensitive(tmp_path):
    t = Table(
        {
            "objID": np.array([1, 2], np.int64),
            "RA": [1.0, 2.0],
            "DEC": [3.0, 4.0],
            "specObjID": np.array([0, 77], np.int64),
            "z": [0.1, 0.2],
            "zErr": [0.01, 0.02],
            "class": ["GALAXY", "QSO"],
            "subClass": ["", "BROADLINE"],
        }
    )
    t.write(tmp_path / "cat.fits")
    cat = read_catalogue(tmp_path / "cat.fits")
    assert cat.row(1)["specobjid"] is None  # SDSS 0 = no spectrum
    assert cat.row(2)["specobjid"] == 77
    assert cat.row(2)["z"] == pytest.approx(0.2)  # plain "z" without ugri magnitudes is a redshift
    assert cat.row(2)["z_err"] == pytest.approx(0.02)
    assert cat.row(2)["spec_subclass"] == "BROADLINE"
    assert cat.row(1)["spec_subclass"] is None


def test_explicit_column_map_and_errors(tmp_path):
    Table({"id": [5, 6], "zphot": [0.3, 0.4]}).write(tmp_path / "c.csv", format="ascii.csv")
    with pytest.raises(ValueError, match="no objid column"):
        read_catalogue(tmp_path / "c.csv")
    cat = read_catalogue(tmp_path / "c.csv", {"objid": "id", "z": "zphot"})
    assert cat.row(6)["z"] == pytest.approx(0.4)
    with pytest.raises(ValueError, match="no column 'nope'"):
        read_catalogue(tmp_path / "c.csv", {"objid": "nope"})
    Table({"objid": [1, 1]}).write(tmp_path / "d.csv", format="ascii.csv")
    with pytest.raises(ValueError, match="objid 1 twice"):
        read_catalogue(tmp_path / "d.csv")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_catalogue(tmp_path / "missing.fits")


def test_parquet_catalogue_with_sdss_bpt_codes(tmp_path):
    t = Table(
        {
            "OBJID": np.array([10, 11, 12], np.int64),
            "ra": [1.0, 2.0, 3.0],
            "dec": [0.0, 0.0, 0.0],
            "BPTCLASS": np.array([1, 4, -1], np.int16),
            "photoz": np.array([0.1, 0.2, 0.3], np.float32),
        }
    )
    t.write(tmp_path / "cat.parquet")
    cat = read_catalogue(tmp_path / "cat.parquet", {"z": "photoz"})
    assert [cat.row(o)["bpt_class"] for o in (10, 11, 12)] == ["star-forming", "AGN", None]
    assert cat.row(12)["z"] == pytest.approx(0.3)


def test_mapped_columns_take_the_schema_type(tmp_path):
    # e.g. the DECaLS ring labels: `--column truth_class=ring` maps 0/1 integers onto a string column
    Table({"objid": [1, 2], "ring": [1, 0], "zz": ["0.5", "x"]}).write(tmp_path / "c.csv", format="ascii.csv")
    cat = read_catalogue(tmp_path / "c.csv", {"truth_class": "ring"})
    assert cat.row(1)["truth_class"] == "1" and cat.row(2)["truth_class"] == "0"
    with pytest.raises(ValueError, match=r"row 1: column 'zz' \(mapped to z\) holds 'x'"):
        read_catalogue(tmp_path / "c.csv", {"z": "zz"})
