"""Replies name a stamp by its file name, never by the server's folders (issue 15, fault 12: GetObject and
GetStamp sent the absolute path that ingest stored in ``source``)."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from clients import SsaldClient
from clients.errors import NotFound
from proto import ssald_pb2, ssald_pb2_grpc
from server.convert import public_source
from tests.server.helpers import make_rows, running_server, write_db


@pytest.mark.parametrize(
    "source,public",
    [
        ("/srv/survey/stamps/1237648720693755918.fits", "1237648720693755918.fits"),
        ("stamps/1237648720693755918.fits", "1237648720693755918.fits"),
        ("/srv/survey/cube.h5[12]", "cube.h5[12]"),
        ("/srv/survey/bands/1237648720693755918_{band}.fits", "1237648720693755918_{band}.fits"),
        (r"D:\survey\stamps\J001240.06-000210.4.png", "J001240.06-000210.4.png"),
        ("cutout(12.000000,-1.500000)", "cutout(12.000000,-1.500000)"),
        ("1237648720693755918.fits", "1237648720693755918.fits"),
    ],
)
def test_public_source_is_the_file_name(source, public):
    assert public_source(source) == public


def test_get_object_and_get_stamp_reveal_no_server_folder(tmp_path):
    folder = tmp_path / "srv" / "survey"
    (folder / "stamps").mkdir(parents=True)
    rows = make_rows(n=12)
    ids = [r["objid"] for r in rows]
    stamp = folder / "stamps" / f"{ids[0]}.npy"
    np.save(stamp, np.random.default_rng(0).normal(1.0, 0.3, size=(5, 64, 64)).astype(np.float32))
    rows[0]["source"] = str(stamp)
    rows[1]["source"] = f"{folder}/cube.h5[1]"
    rows[2]["source"] = str(folder / "stamps" / f"{ids[2]}.fits")  # never written: GetStamp says it is missing
    for row in rows[3:]:
        row["source"] = str(folder / "stamps" / f"{row['objid']}.fits")
    db_path = tmp_path / "ssald.lance"
    write_db(db_path, rows)
    secret = str(tmp_path).encode()

    with running_server(db_path, refresh_s=0) as address:
        with SsaldClient(address) as client:
            assert client.get_object(ids[0]).source == f"{ids[0]}.npy"
            assert client.get_object(ids[1]).source == "cube.h5[1]"
            neighbours = client.find_similar(ids[3], k=8)
            named = {ids[0]: f"{ids[0]}.npy", ids[1]: "cube.h5[1]"}
            assert [n.source for n in neighbours] == [named.get(n.objid, f"{n.objid}.fits") for n in neighbours]
            with pytest.raises(NotFound) as missing:
                client.stamp_png(ids[2])
            assert missing.value.message == f"stamp file '{ids[2]}.fits' of objid {ids[2]} is missing"
        with grpc.insecure_channel(address) as channel:
            stub = ssald_pb2_grpc.SsaldStub(channel)
            replies = [
                stub.GetObject(ssald_pb2.GetObjectRequest(objid=ids[0]), timeout=30),
                stub.GetStamp(ssald_pb2.GetStampRequest(objid=ids[0]), timeout=30),
                stub.FindSimilar(ssald_pb2.FindSimilarRequest(objid=ids[0], k=11), timeout=30),
                stub.NextToLabel(ssald_pb2.NextToLabelRequest(label="merger", n=11), timeout=30),
            ]
    stamp_reply = replies[1]
    assert stamp_reply.source == f"{ids[0]}.npy" and stamp_reply.png.startswith(b"\x89PNG")
    for reply in replies:
        assert secret not in reply.SerializeToString(), type(reply).__name__
