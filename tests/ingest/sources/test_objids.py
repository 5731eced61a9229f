"""Objids given by the user anywhere (per-band file names, array files, catalogue columns) pass the same check
as FITS ``OBJID`` headers (:func:`ingest.sources.base.checked_objid`; issue 15, fault 6).

2**64, -1, 0, -2**63, 1.5 and ``T`` are refused: an entry found by discovery becomes an item whose
``problem`` names it and the value (ingest quarantines it), a catalogue row is an error naming the row.
Before, an array's objids were cast to int64 (1.5 became 1, 2**64-1 became -1), a per-band name such as
``0_g.fits`` gave objid 0, and a catalogue's 1.5 became 1.
"""

from __future__ import annotations

import re

import h5py
import numpy as np
import pytest

from encoders.stamps import StampError
from ingest.catalogue import read_catalogue
from ingest.sources import discover, load_item

GOOD = 1237648720693755918
BAD_NAMES = ["18446744073709551616", "-1", "0", "-9223372036854775808", "1.5", "T"]


def test_per_band_names_with_bad_objids_become_items_that_say_why(tmp_path):
    for key in [str(GOOD), *BAD_NAMES]:
        for band in "gr":
            (tmp_path / f"{key}_{band}.fits").write_bytes(b"")
    items = {
        item.source.rsplit("/", 1)[-1]: item
        for item in discover(tmp_path, bands=("g", "r"), band_pattern="{objid}_{band}.fits")
    }
    assert set(items) == {f"{key}_{{band}}.fits" for key in [str(GOOD), *BAD_NAMES]}
    assert items[f"{GOOD}_{{band}}.fits"].objid == GOOD and items[f"{GOOD}_{{band}}.fits"].problem is None
    for key in BAD_NAMES:
        item = items[f"{key}_{{band}}.fits"]
        assert item.objid is None and f"objid in the file name {key!r} is not an objid" in item.problem
        with pytest.raises(StampError, match="^" + re.escape(f"{item.source}: objid in the file name {key!r}")):
            load_item(item)


@pytest.mark.parametrize(
    "values,shown",
    [
        (np.array([GOOD, -1, GOOD + 1], np.int64), "-1"),
        (np.array([GOOD, 0, GOOD + 1], np.int64), "0"),
        (np.array([GOOD, -(2**63), GOOD + 1], np.int64), str(-(2**63))),
        (np.array([GOOD, 2**64 - 1, GOOD + 1], np.uint64), str(2**64 - 1)),  # an int64 cast made it -1
        (np.array([GOOD, 2**64, GOOD + 1], np.float64), None),  # a float column: no entry is an objid
        (np.array([GOOD, 1.5, GOOD + 1], np.float64), None),
        (np.array([str(GOOD), "T", str(GOOD + 1)]), "'T'"),
    ],
)
@pytest.mark.parametrize("suffix", [".npy", ".h5"])
def test_array_objids_are_checked_one_by_one(tmp_path, values, shown, suffix):
    images = np.ones((3, 1, 4, 4), np.float32)
    path = tmp_path / f"cubes{suffix}"
    if suffix == ".h5":
        with h5py.File(path, "w") as f:
            f.create_dataset("images", data=images)
            f.create_dataset("objid", data=values.astype("S") if values.dtype.kind == "U" else values)
    else:
        np.save(path, images)
        np.save(tmp_path / "cubes_objid.npy", values)
    items = discover(path, bands=("g",))
    refused = [i for i, item in enumerate(items) if item.problem is not None]
    if shown is None:  # floats are never objids, even integral ones
        assert refused == [0, 1, 2]
        assert [item.objid for item in items] == [None] * 3
        return
    if values.dtype.kind == "U" and suffix == ".h5":  # HDF5 strings come back as bytes: not objids either
        assert refused == [0, 1, 2]
        return
    assert refused == [1] and [items[0].objid, items[2].objid] == [GOOD, GOOD + 1]
    assert items[1].objid is None and f"objid entry {shown} is not an objid" in items[1].problem
    with pytest.raises(StampError, match="^" + re.escape(f"{path}[1]: objid entry {shown} is not an objid")):
        load_item(items[1])


@pytest.mark.parametrize("value", BAD_NAMES)
def test_catalogue_objids_that_are_not_objids_are_an_error_naming_the_row(tmp_path, value):
    path = tmp_path / "cat.csv"
    path.write_text(f"objid,ra,dec\n{GOOD},1.0,2.0\n{value},3.0,4.0\n")
    with pytest.raises(ValueError, match=r"catalogue 'cat.csv': .*row 1: column 'objid' value .* is not an objid"):
        read_catalogue(path)


def test_catalogue_objids_in_range_are_kept(tmp_path):
    path = tmp_path / "cat.csv"
    path.write_text(f"objid,ra,dec\n{GOOD},1.0,2.0\n1,3.0,4.0\n{2**63 - 1},5.0,6.0\n")
    assert list(read_catalogue(path).index) == [GOOD, 1, 2**63 - 1]
