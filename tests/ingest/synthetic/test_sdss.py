"""SDSS objID / specObjID packing: round trips, ranges, and real identifiers."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from ingest.synthetic.sdss import decode_objid, decode_specobjid, encode_objid, encode_specobjid

GOTHIC = Path(__file__).resolve().parents[3].parent / "shared/data/catalogues/gothic_double_nuclei_681.csv"


def test_objid_round_trip_over_random_fields():
    rng = np.random.default_rng(0)
    for _ in range(500):
        fields = {
            "run": int(rng.integers(0, 2**16)),
            "rerun": int(rng.integers(0, 2**11)),
            "camcol": int(rng.integers(1, 7)),
            "field": int(rng.integers(0, 2**12)),
            "obj": int(rng.integers(0, 2**16)),
            "sky_version": int(rng.integers(0, 16)),
            "first_field": int(rng.integers(0, 2)),
        }
        objid = encode_objid(**fields)
        assert 0 <= objid < 2**63
        assert decode_objid(objid) == fields
        assert decode_objid(np.int64(objid)) == fields


def test_objid_bit_positions():
    # Each field alone sets exactly the documented bits.
    base = encode_objid(run=0, rerun=0, camcol=1, field=0, obj=0, sky_version=0)
    assert base == 1 << 29
    assert encode_objid(0, 0, 1, 0, 1, sky_version=0) - base == 1
    assert encode_objid(0, 0, 1, 1, 0, sky_version=0) - base == 1 << 16
    assert encode_objid(0, 0, 1, 0, 0, sky_version=0, first_field=1) - base == 1 << 28
    assert encode_objid(1, 0, 1, 0, 0, sky_version=0) - base == 1 << 32
    assert encode_objid(0, 1, 1, 0, 0, sky_version=0) - base == 1 << 48
    assert encode_objid(0, 0, 1, 0, 0, sky_version=1) - base == 1 << 59


@pytest.mark.skipif(not GOTHIC.exists(), reason="shared GOTHIC catalogue not present")
def test_real_gothic_objids_decode_as_dr8_layout_and_reencode():
    with open(GOTHIC, newline="") as handle:
        objids = [int(row["obj ID"]) for row in csv.DictReader(handle)]
    assert len(objids) > 1000
    for objid in objids:
        fields = decode_objid(objid)
        assert fields["sky_version"] == 2
        assert fields["rerun"] == 301
        assert 1 <= fields["camcol"] <= 6
        assert encode_objid(**fields) == objid
    # The first row of the file: run 109, camcol 4, field 153.
    first = decode_objid(1237645942905700478)
    assert (first["run"], first["camcol"], first["field"], first["obj"]) == (109, 4, 153, 126)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("run", -1),
        ("run", 2**16),
        ("rerun", 2**11),
        ("camcol", 0),
        ("camcol", 7),
        ("field", 2**12),
        ("obj", 2**16),
        ("sky_version", 16),
        ("first_field", 2),
    ],
)
def test_objid_out_of_range_names_the_field(name, value):
    fields = {"run": 94, "rerun": 301, "camcol": 1, "field": 11, "obj": 1}
    fields[name] = value
    with pytest.raises(ValueError, match=rf"{name} must be in .*got {value}"):
        encode_objid(**fields)


@pytest.mark.parametrize("value", [1.5, "12", None, True])
def test_objid_rejects_non_integers(value):
    with pytest.raises(ValueError, match="run must be an integer"):
        encode_objid(run=value, rerun=301, camcol=1, field=11, obj=1)


@pytest.mark.parametrize("objid", [-1, 2**63])
def test_decode_objid_rejects_out_of_int64(objid):
    with pytest.raises(ValueError, match="objid must be in"):
        decode_objid(objid)


def test_specobjid_matches_sdss_and_round_trips():
    # Plate 266, MJD 51630, fibre 1, run2d 26: the first SDSS-I spectrum, as listed in SkyServer.
    assert encode_specobjid(266, 1, 51630, 26) == 299489677444933632
    assert decode_specobjid(299489677444933632) == {"plate": 266, "fiber": 1, "mjd": 51630, "run2d": 26}
    rng = np.random.default_rng(1)
    for _ in range(200):
        fields = {
            "plate": int(rng.integers(1, 8192)),
            "fiber": int(rng.integers(1, 1001)),
            "mjd": int(rng.integers(50000, 60000)),
            "run2d": int(rng.integers(0, 2**14)),
        }
        value = encode_specobjid(**fields)
        assert 0 < value < 2**63
        assert decode_specobjid(value) == fields


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"plate": 0}, "plate"),
        ({"plate": 8192}, "plate"),
        ({"fiber": 0}, "fiber"),
        ({"mjd": 49999}, "mjd"),
        ({"run2d": 2**14}, "run2d"),
    ],
)
def test_specobjid_out_of_range_names_the_field(kwargs, name):
    args = {"plate": 266, "fiber": 1, "mjd": 51630, "run2d": 26} | kwargs
    with pytest.raises(ValueError, match=name):
        encode_specobjid(**args)
