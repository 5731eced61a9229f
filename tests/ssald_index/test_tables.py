"""Export to Parquet, CSV, FITS and VOTable round-trips through astropy; ``ssald index`` and ``ssald dump``."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from astropy.table import Table

from ssald_index.ann import index_state
from ssald_index.store import ObjectStore
from ssald_index.tables import write_table
from tests.ssald_index.test_store import make_rows


@pytest.mark.parametrize("suffix", [".parquet", ".fits", ".vot", ".csv"])
def test_write_table_round_trips(tmp_path, suffix):
    emb = np.arange(12, dtype=np.float32).reshape(3, 4)
    path = write_table(
        {
            "objid": np.array([1237648720693755918, 2, 3]),
            "z": [0.1, None, 0.3],
            "cls": ["a", None, "c"],
            "embedding": emb,
        },
        tmp_path / f"t{suffix}",
    )
    t = Table.read(path, format="ascii.csv" if suffix == ".csv" else None)
    assert t["objid"].tolist() == [1237648720693755918, 2, 3]
    assert np.isclose(t["z"][0], 0.1) and np.ma.is_masked(t["z"][1])
    if suffix == ".csv":
        assert np.allclose(np.stack([t[f"embedding_{j}"] for j in range(4)], 1), emb)
    else:
        assert np.allclose(np.asarray(t["embedding"]), emb)


def test_unknown_suffix_is_refused(tmp_path):
    with pytest.raises(ValueError, match="cannot tell the format of .*t.txt"):
        write_table({"a": [1]}, tmp_path / "t.txt")


def test_index_and_dump_commands(tmp_path):
    rows = make_rows(np.arange(1, 301))
    ObjectStore.write(tmp_path / "db", rows)
    run = [sys.executable, "-m", "clients.cli"]
    out = subprocess.run(
        [*run, "index", "--db", str(tmp_path / "db"), "--min-rows", "0", "--partitions", "4"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("indexed 300 objects") and "300 density scores (knn)" in out.stdout
    assert "index" in out.stderr  # the progress bar
    store = ObjectStore.open(tmp_path / "db")
    state = {s["column"]: s for s in index_state(store.table)}
    assert state["embedding"]["index_type"] == "IVF_RQ" and state["embedding"]["unindexed_rows"] == 0
    assert store.count_scored() == 300
    out = subprocess.run(
        [*run, "dump", "--db", str(tmp_path / "db"), "--out", str(tmp_path / "e.fits")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    t = Table.read(tmp_path / "e.fits")
    ref = dict(zip(rows.column("objid").to_pylist(), rows.column("embedding").to_pylist()))
    assert len(t) == 300
    for objid, vec in zip(t["objid"][:20], t["embedding"][:20]):
        assert np.allclose(vec, ref[int(objid)])


def test_map_command_fits_pca_clusters_and_draws(tmp_path):
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.decomposition import PCA

    rows = make_rows(np.arange(1, 401))
    ObjectStore.write(tmp_path / "db", rows)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "clients.cli",
            "map",
            "--db",
            str(tmp_path / "db"),
            "--out",
            str(tmp_path / "m.png"),
            "--projection",
            "pca",
            "--clusters",
            "5",
            "--color",
            "spec_class",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    t = ObjectStore.open(tmp_path / "db").table.to_arrow()
    vec = np.stack(t.column("embedding").to_numpy(zero_copy_only=False))
    ref = PCA(n_components=2, random_state=0).fit(vec).transform(vec)
    xy = np.stack([t.column("map_x").to_numpy(), t.column("map_y").to_numpy()], 1)
    assert np.allclose(xy, ref, atol=1e-4)
    labels = MiniBatchKMeans(n_clusters=5, random_state=0, n_init=3).fit(vec).predict(vec)
    assert np.array_equal(t.column("cluster").to_numpy(), labels)
