"""The objid rule every input kind shares (:func:`ingest.sources.base.checked_objid`)."""

from __future__ import annotations

import numpy as np
import pytest

from encoders.stamps import StampError
from ingest.sources.base import OBJID_MAX, OBJID_MIN, checked_objid


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, 1), (2**63 - 1, 2**63 - 1), (np.int64(7), 7), (np.uint64(8), 8), ("1237645879551066262", 1237645879551066262)],
)
def test_integers_in_range_are_objids(value, expected):
    assert checked_objid(value, "x.fits: OBJID header value") == expected
    assert OBJID_MIN <= expected <= OBJID_MAX


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0, "0"),
        (-1, "-1"),
        (-(2**63), str(-(2**63))),
        (2**63, str(2**63)),
        (2**64, str(2**64)),
        (1.5, "1.5"),
        (1.0, "1.0"),
        (True, "T"),
        (np.bool_(True), repr(np.bool_(True))),
        ("12a", "'12a'"),
        ("", "''"),
        (None, "None"),
    ],
)
def test_anything_else_is_refused_naming_where_and_the_value(value, shown):
    with pytest.raises(StampError, match="not an objid") as err:
        checked_objid(value, "/data/x.fits: OBJID header value")
    assert str(err.value).startswith(f"/data/x.fits: OBJID header value {shown} ")
