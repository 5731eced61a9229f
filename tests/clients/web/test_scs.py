"""The IVOA Simple Cone Search endpoint, queried by pyvo's cone-search client against real servers."""

from __future__ import annotations

import io
import re
import warnings

import httpx
import numpy as np
import pytest
from astropy.io import votable
from pyvo.dal import DALOverflowWarning, DALQueryError, SCSService

from ssald_index.filters import angular_separation_arcsec
from tests.clients.web.conftest import CENTRE, N_CLUSTER


def _inside(rows, ra, dec, radius_deg) -> list[int]:
    sep = angular_separation_arcsec(ra, dec, np.array([r["ra"] for r in rows]), np.array([r["dec"] for r in rows]))
    return [rows[j]["objid"] for j in np.argsort(sep, kind="stable") if sep[j] <= radius_deg * 3600]


def test_pyvo_finds_every_object_in_the_cone_with_the_standard_ucds(served):
    rows, service = served["rows"], SCSService(f"{served['url']}/scs")
    result = service.search(pos=CENTRE, radius=0.15)
    expected = _inside(rows, *CENTRE, 0.15)
    assert 3 <= len(expected) < N_CLUSTER  # part of the cluster: the radius matters
    assert [int(r.id) for r in result] == expected
    assert result.fieldname_with_ucd("ID_MAIN") == "objid"
    assert result.fieldname_with_ucd("POS_EQ_RA_MAIN") == "ra" and result.fieldname_with_ucd("POS_EQ_DEC_MAIN") == "dec"
    fields = {f.name: f for f in result.resultstable.fields}
    assert fields["objid"].datatype == "char" and fields["ra"].datatype == fields["dec"].datatype == "double"
    by_id = {r["objid"]: r for r in rows}
    for record in result:
        row = by_id[int(record.id)]
        assert (record.pos.ra.deg, record.pos.dec.deg) == pytest.approx((row["ra"], row["dec"]))


def test_verb_chooses_the_columns_and_sr_0_is_a_metadata_query(served):
    service = SCSService(f"{served['url']}/scs")
    names = {v: service.search(pos=CENTRE, radius=0.1, verbosity=v).fieldnames for v in (1, 2, 3)}
    assert names[1] == ("objid", "ra", "dec")
    assert {"separation_arcsec", "mag_r", "z", "density_score"} <= set(names[2]) < set(names[3])
    assert {"truth_class", "model_id", "source"} <= set(names[3])
    assert [c.name for c in service.columns] == list(names[2])  # pyvo asks with SR=0: columns, no rows
    empty = httpx.get(f"{served['url']}/scs", params={"RA": 150, "DEC": 2, "SR": 0.1, "MAXREC": 0})
    assert len(votable.parse_single_table(io.BytesIO(empty.content)).array) == 0


def test_maxrec_cuts_the_nearest_and_says_overflow(served):
    rows, url = served["rows"], served["url"]
    answer = httpx.get(f"{url}/scs", params={"ra": CENTRE[0], "dec": CENTRE[1], "sr": 1.0, "maxrec": 4})
    parsed = votable.parse(io.BytesIO(answer.content))
    table = parsed.get_first_table().to_table()
    assert [int(o) for o in table["objid"]] == _inside(rows, *CENTRE, 1.0)[:4]
    assert [(i.name, i.value) for i in parsed.resources[0].infos] == [
        ("QUERY_STATUS", "OK"),
        ("QUERY_STATUS", "OVERFLOW"),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DALOverflowWarning)
        assert len(SCSService(f"{url}/scs").search(pos=CENTRE, radius=1.0, MAXREC=4)) == 4


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"RA": 150, "DEC": 91, "SR": 0.1}, "DEC must be in [-90, 90], got '91'"),
        ({"RA": 150, "DEC": 2}, "SR is required (decimal degrees)"),
        ({"RA": "abc", "DEC": 2, "SR": 0.1}, "RA must be a number, got 'abc'"),
        ({"RA": 150, "DEC": 2, "SR": 2}, "SR must be in [0, 1], got '2'"),
        ({"RA": 150, "DEC": 2, "SR": 0.1, "VERB": 4}, "VERB must be in [1, 3], got '4'"),
    ],
)
def test_errors_are_an_error_votable(served, params, message):
    answer = httpx.get(f"{served['url']}/scs", params=params)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/xml")
    infos = votable.parse(io.BytesIO(answer.content)).infos
    assert [(i.name, i.value) for i in infos] == [("Error", message)]


def test_pyvo_raises_the_services_error(served):
    # pyvo checks RA and DEC itself; the radius limit is the service's own.
    with pytest.raises(DALQueryError, match=re.escape("SR must be in [0, 1], got '2.0'")):
        SCSService(f"{served['url']}/scs").search(pos=CENTRE, radius=2.0)
