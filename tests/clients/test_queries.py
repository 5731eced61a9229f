"""The client's query methods against a real server over a scored table; results against brute force."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from clients import InvalidArgument, NotFound, SsaldClient, SsaldError
from clients.tables import write_objects
from ssald_index.store import ObjectStore
from tests.server.helpers import exact_neighbours, running_server, write_db


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    db = tmp_path_factory.mktemp("scored") / "db"
    rows = write_db(db)
    ObjectStore.open(db).finalize()
    with running_server(db) as address, SsaldClient(address, timeout=30.0) as client:
        yield client, rows, ObjectStore.open(db)


def test_search_vector_and_filters(scored):
    client, rows, _ = scored
    query = rows[3]
    got = client.search_vector(query["embedding"], k=5, exclude_objids=[query["objid"]])
    assert [(n.objid, round(n.distance, 5)) for n in got] == [
        (o, round(d, 5)) for o, d in exact_neighbours(rows, query["objid"], 5)
    ]
    filtered = client.find_similar(query["objid"], k=4, spec_class="GALAXY", z_max=0.2, bpt_class=["Seyfert"])
    ok = {r["objid"] for r in rows if r["spec_class"] == "GALAXY" and r["z"] <= np.float32(0.2) and r["bpt_class"]}
    ranked = [o for o, _ in exact_neighbours(rows, query["objid"], len(rows)) if o in ok][:4]
    assert [n.objid for n in filtered] == ranked
    with pytest.raises(InvalidArgument, match="bad filter"):
        client.find_similar(query["objid"], k=4, where="nope >")
    mags = client.find_similar(query["objid"], k=3, magnitudes={"mag_r": (None, 18.0)})
    assert all(n.mag_r is not None and n.mag_r <= 18.0 for n in mags)


def test_cone_search_and_exclusion(scored):
    client, rows, _ = scored
    row = rows[7]
    found = client.cone_search(row["ra"], row["dec"], radius_arcsec=2.0, k=3)
    assert found.match.objid == row["objid"] and found.separation_arcsec == pytest.approx(0.0, abs=1e-6)
    assert [n.objid for n in found.neighbours] == [o for o, _ in exact_neighbours(rows, row["objid"], 3)]
    with pytest.raises(NotFound, match="no object within 2 arcsec"):
        client.cone_search((row["ra"] + 1) % 360, row["dec"], radius_arcsec=2.0)
    # The radius reaches the server (out of range there) and excludes what lies within it.
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    centre = SkyCoord(row["ra"] * u.deg, row["dec"] * u.deg)
    sep = {r["objid"]: centre.separation(SkyCoord(r["ra"] * u.deg, r["dec"] * u.deg)).arcsec for r in rows}
    got = client.find_similar(row["objid"], k=5, exclude_radius_arcsec=3600.0)
    expected = [o for o, _ in exact_neighbours(rows, row["objid"], len(rows)) if sep[o] > 3600.0][:5]
    assert [n.objid for n in got] == expected
    with pytest.raises(InvalidArgument, match="radius must be in"):
        client.find_similar(row["objid"], k=5, exclude_radius_arcsec=1e6)


def test_anomalies_and_export(scored, tmp_path):
    client, rows, store = scored
    scores = store.table.search().select(["objid", "density_score"]).limit(None).to_arrow()
    order = np.lexsort((scores.column("objid").to_numpy(), -scores.column("density_score").to_numpy()))
    top = client.anomalies(5)
    assert [a.objid for a in top] == scores.column("objid").to_numpy()[order[:5]].tolist()
    assert all(a.density_score is not None for a in top)
    path = write_objects(client.find_similar(rows[0]["objid"], k=6), tmp_path / "nb.vot")
    t = Table.read(path)
    assert len(t) == 6 and "distance" in t.colnames and np.all(np.diff(np.asarray(t["distance"])) >= 0)
    with pytest.raises(ValueError, match="cannot tell the format"):
        write_objects(top, tmp_path / "x.txt")


def test_image_query_needs_a_model(scored, tmp_path):
    client, _, _ = scored
    stamp = tmp_path / "s.npy"
    np.save(stamp, np.ones((5, 8, 8), np.float32))
    with pytest.raises(SsaldError) as err:
        client.find_similar_to_image(stamp, k=3)
    assert err.value.code == "FAILED_PRECONDITION"


def test_similar_and_anomalies_commands_filter_and_export(scored, tmp_path, capsys):
    from clients.cli import build_parser

    client, rows, _ = scored
    parser = build_parser()
    query = rows[5]["objid"]
    out = tmp_path / "nb.csv"
    argv = ["similar", str(query), "--server", client.address, "-k", "3", "--spec-class", "GALAXY", "--out", str(out)]
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    expected = [n.objid for n in client.find_similar(query, k=3, spec_class="GALAXY")]
    assert Table.read(out, format="ascii.csv")["objid"].tolist() == expected
    args = parser.parse_args(["anomalies", "--server", client.address, "-n", "4", "--z-max", "0.2"])
    assert args.func(args) == 0
    printed = capsys.readouterr().out.splitlines()[-4:]
    assert [int(line.split()[1]) for line in printed] == [a.objid for a in client.anomalies(4, z_max=0.2)]
