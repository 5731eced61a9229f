"""Every stamp format through the real ingest job: real DECaLS PNGs, the real Legacy Survey cube cut from a frame,
per-band FITS, HDF5 and NPY arrays."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import h5py
import numpy as np
import onnx
import pytest
from astropy.io import fits
from astropy.table import Table
from onnx import TensorProto, helper, numpy_helper

from encoders.embedder import OnnxEmbedder
from encoders.stamps import read_stamp
from ingest.catalogue import read_catalogue
from ingest.job import ingest
from ingest.options import IngestInput, IngestOptions
from ingest.sources import discover, load_item, objid_from_name, radec_from_iau
from ssald_index.store import ObjectStore, read_quarantine

REAL = Path(__file__).resolve().parents[3].parent / "shared/data/real"
RINGS = REAL / "decals_rings"
CUBE = REAL / "legacysurvey_fits/legacysurvey_dr9_grz_357.9087-54.8817.fits"


def _linear_model(path: Path, bands: str, size: int, dim: int = 16, stretch: float = 0.5) -> Path:
    """A real ONNX model (random projection + L2 norm) with the SSALD preprocessing contract in its metadata."""
    n_in = len(bands.split(",")) * size * size
    weights = np.random.default_rng(0).normal(size=(n_in, dim)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["stamps"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "w"], ["proj"]),
            helper.make_node("LpNormalization", ["proj"], ["embedding"], axis=1, p=2),
        ],
        "linear",
        [helper.make_tensor_value_info("stamps", TensorProto.FLOAT, ["N", len(bands.split(",")), size, size])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", dim])],
        [numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    meta = dict(bands=bands, stamp_size=str(size), lupton_q="8", lupton_stretch=str(stretch), lupton_minimum="0")
    helper.set_model_props(model, {**meta, "embedding_dim": str(dim), "model_id": f"linear-{bands}-{size}"})
    onnx.save(model, path)
    return path


def test_iau_names_give_radec_and_stable_objids():
    ra, dec = radec_from_iau("J001240.06-000210.4")
    assert ra == pytest.approx(15 * (12 / 60 + 40.06 / 3600)) and dec == pytest.approx(-(2 / 60 + 10.4 / 3600))
    assert radec_from_iau("1237645942905700478") is None
    assert objid_from_name("J001240.06-000210.4") == objid_from_name("J001240.06-000210.4") > 0


def test_real_decals_pngs_with_labels_catalogue(tmp_path):
    model = _linear_model(tmp_path / "grz.onnx", "g,r,z", 64)
    summary = ingest(
        IngestInput(RINGS, catalogue=RINGS / "labels.csv"),
        model,
        tmp_path / "db",
        IngestOptions(fit="bin", progress=False),
    )
    assert summary.ingested == 170 and summary.quarantined == 0
    assert summary.without_catalogue_row == 0 and summary.catalogue_rows_without_stamp == 0
    name = "J011854.30+042022.9"
    row = ObjectStore.open(tmp_path / "db").get(objid_from_name(name), with_embedding=True)
    assert (row["ra"], row["dec"]) == pytest.approx(radec_from_iau(name))
    assert row["bands"] == "g,r,z" and row["source"].endswith(f"{name}.png")
    cube = read_stamp(RINGS / f"{name}.png").data.reshape(3, 64, 2, 64, 2).mean(axis=(2, 4))
    assert np.allclose(row["embedding"], OnnxEmbedder(model).embed_raw(cube)[0], atol=1e-5)
    # without --fit the 128-pixel PNGs do not fit the 64-pixel model: quarantined, exit would be non-zero
    small = tmp_path / "two"
    small.mkdir()
    for p in sorted(RINGS.glob("*.png"))[:2]:
        shutil.copy(p, small / p.name)
    bad = ingest(small, model, tmp_path / "db2", IngestOptions(progress=False))
    assert bad.ingested == 0 and bad.quarantined == 2 and "(3, 128, 128)" in next(iter(bad.reasons))


def test_real_legacy_survey_frame_cut_at_catalogue_positions(tmp_path):
    model = _linear_model(tmp_path / "grz.onnx", "g,r,z", 64)
    cat = tmp_path / "cat.csv"
    with open(cat, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["objID", "RA", "DEC", "specObjID", "Z", "zErr", "CLASS", "subClass", "bptclass"])
        writer.writerow([1, 357.9087, -54.8817, 99, 0.05, 0.001, "GALAXY", "STARFORMING", "star-forming"])
        writer.writerow([2, 357.9087 + 0.004 / np.cos(np.radians(54.8817)), -54.8817, 0, "", "", "", "", ""])
        writer.writerow([3, 10.0, 10.0, 0, "", "", "", "", ""])  # off the frame
    summary = ingest(
        IngestInput(None, catalogue=cat, frames=[CUBE]), model, tmp_path / "db", IngestOptions(progress=False)
    )
    assert summary.ingested == 2 and summary.quarantined == 1
    assert "no frame in band 'g' covers" in read_quarantine(tmp_path / "db").column("reason")[0].as_py()
    store = ObjectStore.open(tmp_path / "db")
    row = store.get(1, with_embedding=True)
    assert row["z"] == pytest.approx(0.05) and row["spec_class"] == "GALAXY" and row["bpt_class"] == "star-forming"
    assert row["specobjid"] == 99 and store.get(2)["specobjid"] is None
    centre = fits.getdata(CUBE).astype(np.float32)[:, 96:160, 96:160]  # CRPIX 128.5: pixels 96..159 around the centre
    assert np.allclose(row["embedding"], OnnxEmbedder(model).embed_raw(centre)[0], atol=1e-5)


def test_per_band_fits_hdf5_and_npy_arrays_give_the_same_embeddings(survey, tiny_model, tmp_path):
    paths = sorted((survey / "stamps").glob("*.fits"))[:6]
    cubes = np.stack([read_stamp(p).data for p in paths])
    objids = np.array([fits.getheader(p)["OBJID"] for p in paths], np.int64)
    per_band = tmp_path / "per_band"
    per_band.mkdir()
    for objid, cube in zip(objids[:5], cubes):
        for band, plane in zip("ugriz", cube):
            fits.writeto(per_band / f"{objid}_{band}.fits", plane, fits.Header({"FILTER": band, "OBJID": int(objid)}))
    (per_band / f"{objids[5]}_u.fits").write_bytes((per_band / f"{objids[0]}_u.fits").read_bytes())  # bands missing
    h5 = tmp_path / "stamps.h5"
    with h5py.File(h5, "w") as f:
        f.create_dataset("images", data=cubes)
        f["images"].attrs["bands"] = "u,g,r,i,z"
        f.create_dataset("objid", data=objids)
    npy = tmp_path / "cubes.npy"
    np.save(npy, cubes)
    np.save(tmp_path / "cubes_objid.npy", objids)

    tables = {}
    for name, data, extra in (
        ("files", survey, {}),
        ("per_band", per_band, {"band_pattern": "{objid}_{band}.fits"}),
        ("hdf5", h5, {}),
        ("npy", npy, {}),
    ):
        db = tmp_path / f"db_{name}"
        summary = ingest(IngestInput(data, **extra), tiny_model, db, IngestOptions(progress=False))
        table = ObjectStore.open(db).table.to_arrow().sort_by("objid")
        tables[name] = {o: e for o, e in zip(table.column("objid").to_pylist(), table.column("embedding").to_pylist())}
        if name == "per_band":
            assert summary.ingested == 5 and summary.quarantined == 1
            assert "no file for band 'g'" in read_quarantine(db).column("reason")[0].as_py()
        elif name != "files":
            assert summary.ingested == 6 and summary.quarantined == 0
    for name in ("per_band", "hdf5", "npy"):
        for objid, embedding in tables[name].items():
            np.testing.assert_allclose(embedding, tables["files"][objid], atol=1e-5, err_msg=f"{name} {objid}")


def test_npy_rows_are_read_without_a_memory_map(tmp_path):
    from ingest.sources.arrays import NpyRows, open_array

    rng = np.random.default_rng(5)
    for dtype in ("<f4", ">f8", "<i2"):
        data = (rng.normal(0, 100, size=(7, 2, 5, 5))).astype(dtype)
        np.save(tmp_path / "a.npy", data)
        rows = NpyRows(str(tmp_path / "a.npy"))
        assert len(rows) == 7 and rows.dtype == np.dtype(dtype)
        for i in (0, 3, 6):
            np.testing.assert_array_equal(rows[i], data[i])
        np.testing.assert_array_equal(rows[2:6], data[2:6])
        assert rows[4:4].shape == (0, 2, 5, 5)
        with pytest.raises(IndexError):
            rows[7]
    fortran = np.asfortranarray(rng.normal(size=(3, 4, 4)).astype(np.float32))
    np.save(tmp_path / "f.npy", fortran)
    with pytest.raises(ValueError, match="C-ordered"):
        NpyRows(str(tmp_path / "f.npy"))
    # The reader still takes a Fortran-ordered array, through numpy's memory map.
    rows = open_array(str(tmp_path / "f.npy"), "images")
    assert len(rows) == 3
    np.testing.assert_array_equal(rows[1], fortran[1])


def test_a_truncated_npy_array_quarantines_its_missing_rows(tmp_path, tiny_model):
    rng = np.random.default_rng(6)
    cubes = rng.normal(10, 30, size=(6, 5, 64, 64)).astype(np.float32)  # the tiny model's bands and size
    path = tmp_path / "cubes.npy"
    np.save(path, cubes)
    np.save(tmp_path / "cubes_objid.npy", np.arange(6, dtype=np.int64) + 1237640000000000000)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - cubes[0].nbytes - 100])  # row 4 cut short, row 5 gone
    summary = ingest(path, tiny_model, tmp_path / "db", IngestOptions(progress=False, workers=0))
    assert summary.ingested == 4 and summary.quarantined == 2
    reasons = read_quarantine(tmp_path / "db").column("reason").to_pylist()
    assert all("truncated" in r and "cubes.npy[" in r for r in reasons)


def test_discovery_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="must contain"):
        discover(tmp_path, bands=("g",), band_pattern="{band}.fits")
    with pytest.raises(FileNotFoundError, match="matches the band pattern"):
        discover(tmp_path, bands=("g",), band_pattern="{objid}_{band}.fits")
    np.save(tmp_path / "a.npy", np.zeros((2, 1, 4, 4)))
    with pytest.raises(FileNotFoundError, match="no objid array beside it"):
        discover(tmp_path / "a.npy", bands=("g",))
    with pytest.raises(ValueError, match="cutouts from frames need a catalogue"):
        discover(None, bands=("g",), frames=[CUBE])
    named = tmp_path / "named"
    named.mkdir()
    np.save(named / "galaxy.npy", np.ones((1, 4, 4)))
    (item,) = discover(named, bands=("g",))
    with pytest.raises(ValueError, match="neither an objid nor an IAU name"):
        load_item(item)


def test_catalogue_maps_iau_names_to_objids():
    cat = read_catalogue(RINGS / "labels.csv")
    assert len(cat) == 170
    objid = objid_from_name("J011854.30+042022.9")
    assert cat.row(objid)["ra"] == pytest.approx(radec_from_iau("J011854.30+042022.9")[0])
    assert Table.read(RINGS / "labels.csv").colnames[0] == "iauname"


def test_per_band_files_matched_by_objid_header(tmp_path):
    model = _linear_model(tmp_path / "gr.onnx", "g,r", 16, stretch=1.0)
    data = tmp_path / "frames"
    data.mkdir()
    rng = np.random.default_rng(3)
    for name, objid in (("ngc1", 11), ("ngc2", 12)):
        for band in "gr":
            header = fits.Header({"OBJID": objid, "FILTER": band})
            fits.writeto(data / f"{name}-{band}.fits", rng.normal(size=(16, 16)).astype(np.float32), header)
    items = discover(data, bands=("g", "r"), band_pattern="{name}-{band}.fits")
    assert sorted(i.source.rsplit("/", 1)[-1] for i in items) == ["ngc1-{band}.fits", "ngc2-{band}.fits"]
    objid, stamp = load_item(items[0])
    assert objid == 11 and stamp.shape == (2, 16, 16) and stamp.bands == ("g", "r")
    summary = ingest(
        IngestInput(data, band_pattern="{name}-{band}.fits"), model, tmp_path / "db", IngestOptions(progress=False)
    )
    assert summary.ingested == 2 and sorted(ObjectStore.open(tmp_path / "db").objids()) == [11, 12]


def test_consecutive_array_rows_are_read_at_once_and_checked_one_by_one(tmp_path):
    from encoders.normalise import LuptonParams, lupton_asinh
    from ingest.pipeline import Spec, prepare

    rng = np.random.default_rng(8)
    cubes = rng.normal(10, 30, size=(7, 3, 16, 16)).astype(">f4")  # big-endian, as FITS-derived dumps often are
    cubes[1] = np.nan
    cubes[3] = 4.0
    cubes[5, 0, :8] = np.nan  # 1/6 of the pixels: under the 20% limit
    path = tmp_path / "cubes.npy"
    np.save(path, cubes)
    np.save(tmp_path / "cubes_objid.npy", np.arange(7, dtype=np.int64) + 100)
    items = discover(path, bands=("g", "r", "z"))
    spec = Spec(("g", "r", "z"), 16, LuptonParams())
    together = prepare(items, spec)
    assert together.objids == [100, 102, 104, 105, 106] and together.positions == [0, 2, 4, 5, 6]
    assert [(b["objid"], b["reason"]) for b in together.bad] == [
        (101, "all pixels are NaN or infinite"),
        (103, "stamp is constant"),
    ]
    np.testing.assert_array_equal(together.cubes, lupton_asinh(cubes[[0, 2, 4, 5, 6]]))
    one_by_one = [prepare([item], spec) for item in items]  # a run of one row: read by load_item
    np.testing.assert_array_equal(np.concatenate([p.cubes for p in one_by_one if p.objids]), together.cubes)
    assert [b for p in one_by_one for b in p.bad] == together.bad
    # Rows of the wrong shape go back to the one-by-one path, which names each of them.
    wrong = prepare(items[:3], Spec(("g", "r", "z"), 32, LuptonParams()))
    assert not wrong.objids and [b["objid"] for b in wrong.bad] == [100, 101, 102]
    assert all("does not match the model's (3, 32, 32)" in b["reason"] for b in wrong.bad)


def test_find_stamps_looks_in_stamps_then_images_then_the_folder(tmp_path):
    from ingest.sources import find_stamps

    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "b.png").write_bytes(b"x")
    (tmp_path / "flat" / "labels.csv").write_text("file\n")
    assert find_stamps(tmp_path / "flat") == [tmp_path / "flat" / "b.png"]
    (tmp_path / "gz" / "images").mkdir(parents=True)
    (tmp_path / "gz" / "images" / "1.jpeg").write_bytes(b"x")
    assert find_stamps(tmp_path / "gz") == [tmp_path / "gz" / "images" / "1.jpeg"]
    (tmp_path / "gz" / "stamps").mkdir()
    (tmp_path / "gz" / "stamps" / "2.fits").write_bytes(b"x")
    assert find_stamps(tmp_path / "gz") == [tmp_path / "gz" / "stamps" / "2.fits"]


def test_items_are_typed_per_kind_and_picklable(tmp_path):
    import pickle

    from ingest.sources import SOURCES, ArrayFile, ArrayItem, FileItem, array_run, open_source

    np.save(tmp_path / "a.npy", np.ones((3, 2, 8, 8), np.float32))
    np.save(tmp_path / "a_objid.npy", np.array([5, 6, 7]))
    source = open_source(tmp_path / "a.npy", bands=("g", "r"))
    assert isinstance(source, ArrayFile) and source.item_type is ArrayItem
    items = source.discover()
    assert [(i.kind, i.objid, i.index) for i in items] == [("array", 5, 0), ("array", 6, 1), ("array", 7, 2)]
    assert pickle.loads(pickle.dumps(items[1])) == items[1]
    assert array_run(items, 0) == 3
    mixed = [items[0], FileItem(source="x.fits", objid=1, path="x.fits"), items[2]]
    assert array_run(mixed, 0) == 1 and array_run(mixed, 1) == 2
    objid, stamp = load_item(items[2], bands=("g", "r"))
    assert objid == 7 and stamp.shape == (2, 8, 8)
    assert {s.item_type.kind for s in SOURCES} == {"file", "bands", "array", "cutout"}
