"""``ObjectsInCone``: every object within a radius, nearest first, cut at ``limit`` and counted in full."""

from __future__ import annotations

import numpy as np
import pytest

from clients import InvalidArgument, SsaldClient
from ssald_index.filters import angular_separation_arcsec


def _inside(rows, ra, dec, radius_arcsec, keep=lambda row: True) -> list[int]:
    """The reference: objids within the radius by astropy's separation, nearest first."""
    ras, decs = np.array([r["ra"] for r in rows]), np.array([r["dec"] for r in rows])
    sep = angular_separation_arcsec(ra, dec, ras, decs)
    order = [j for j in np.argsort(sep, kind="stable") if sep[j] <= radius_arcsec and keep(rows[j])]
    return [rows[j]["objid"] for j in order]


def test_every_object_in_the_cone_nearest_first_and_the_filter(address, db):
    _, rows = db
    centre = rows[5]
    with SsaldClient(address) as client:
        found = client.objects_in_cone(centre["ra"], centre["dec"], 3600.0)
        assert [o.objid for o in found] == _inside(rows, centre["ra"], centre["dec"], 3600.0)
        assert found.objects[0].objid == centre["objid"] and found.objects[0].separation_arcsec < 1e-6
        assert found.n_found == len(found) and not found.truncated
        # rows[6] has no spectrum (every third row has none): the filter drops the cone's own centre.
        nearby = client.objects_in_cone(rows[6]["ra"], rows[6]["dec"], 3600.0, spec_class="GALAXY")
        assert [o.objid for o in nearby] == _inside(
            rows, rows[6]["ra"], rows[6]["dec"], 3600.0, lambda r: r["spec_class"] == "GALAXY"
        )
        assert rows[6]["objid"] not in [o.objid for o in nearby]


def test_the_limit_cuts_the_nearest_and_counts_the_rest(tmp_path):
    from tests.server.helpers import make_rows, running_server, write_db

    rows = make_rows()
    for i, row in enumerate(rows[:10]):
        row["ra"], row["dec"] = 20.0 + 0.01 * i, 5.0
    write_db(tmp_path / "db", rows)
    with running_server(tmp_path / "db", refresh_s=0) as address, SsaldClient(address) as client:
        cut = client.objects_in_cone(20.0, 5.0, 600.0, limit=3)
        assert [o.objid for o in cut] == [r["objid"] for r in rows[:3]] and cut.n_found == 10 and cut.truncated
        with pytest.raises(InvalidArgument, match="limit must be an integer between 1 and 10000, got 0"):
            client.objects_in_cone(20.0, 5.0, 600.0, limit=0)
        with pytest.raises(InvalidArgument, match=r"radius must be in \(0, 3600\] arcsec"):
            client.objects_in_cone(20.0, 5.0, 4000.0)
