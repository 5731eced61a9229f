from __future__ import annotations

import shutil

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from encoders.embedder import OnnxEmbedder
from encoders.stamps import read_stamp
from ingest.job import ModelMismatch, default_workers, find_stamps, ingest
from ingest.options import IngestInput, IngestOptions
from ssald_index.store import ObjectStore, read_models, read_quarantine
from tests.conftest import SURVEY_N


def test_ingest_joins_catalogue_and_is_idempotent(survey, tiny_model, tmp_path):
    db = tmp_path / "db"
    summary = ingest(
        IngestInput(survey, catalogue=survey / "catalogue.fits"),
        tiny_model,
        db,
        IngestOptions(progress=False, chunk_size=100),
    )
    assert summary.ingested == SURVEY_N and summary.quarantined == 0
    assert summary.without_catalogue_row == 0 and summary.catalogue_rows_without_stamp == 0
    store = ObjectStore.open(db)
    assert store.count() == SURVEY_N

    cat = Table.read(survey / "catalogue.fits")
    first = cat[0]
    row = store.get(int(first["objid"]), with_embedding=True)
    assert row["truth_class"] == first["truth_class"]
    assert row["ra"] == pytest.approx(first["ra"])
    assert row["bands"] == "u,g,r,i,z" and row["survey"] == "SYNTH"
    assert row["model_id"] == OnnxEmbedder(tiny_model).model_id
    # The stored embedding is the model's embedding of the normalised stamp.
    embedder = OnnxEmbedder(tiny_model)
    stamp = read_stamp(survey / "stamps" / f"{int(first['objid'])}.fits")
    assert np.allclose(row["embedding"], embedder.embed_raw(stamp.data[None])[0], atol=1e-5)
    assert np.linalg.norm(row["embedding"]) == pytest.approx(1.0, abs=1e-5)

    again = ingest(
        IngestInput(survey, catalogue=survey / "catalogue.fits"), tiny_model, db, IngestOptions(progress=False)
    )
    assert again.ingested == 0 and again.skipped == SURVEY_N  # a re-run resumes: nothing left to do
    again = ingest(
        IngestInput(survey, catalogue=survey / "catalogue.fits"),
        tiny_model,
        db,
        IngestOptions(progress=False, refresh=True),
    )
    assert again.ingested == SURVEY_N and again.skipped == 0
    store = ObjectStore.open(db)
    assert store.count() == SURVEY_N
    assert len(np.unique(store.objids())) == SURVEY_N
    models = read_models(db)
    assert models.num_rows == 1 and models.column("embedding_dim")[0].as_py() == 32


def test_bad_stamps_are_quarantined_and_good_ones_kept(survey, tiny_model, tmp_path):
    data = tmp_path / "data"
    stamps = sorted((survey / "stamps").glob("*.fits"))[:20]
    data.mkdir()
    for p in stamps:
        shutil.copy(p, data / p.name)
    (data / "9000000001.fits").write_bytes(stamps[0].read_bytes()[:3000])  # truncated
    cube = fits.getdata(stamps[1]).astype(np.float32)
    header = fits.getheader(stamps[1])
    header["OBJID"] = 9000000002
    fits.writeto(data / "9000000002.fits", np.full_like(cube, np.nan), header)  # all NaN
    three = fits.Header({"OBJID": 9000000003, "BANDS": "g,r,i"})
    fits.writeto(data / "9000000003.fits", cube[:3], three)  # 3 bands, model wants 5
    header["OBJID"] = 9000000004
    fits.writeto(data / "9000000004.fits", np.ones_like(cube), header)  # constant
    dup = fits.getheader(stamps[2])
    fits.writeto(data / "zz_duplicate.fits", cube, dup)  # same OBJID as stamps[2]

    summary = ingest(data, tiny_model, tmp_path / "db", IngestOptions(progress=False))
    assert summary.ingested == 20 and summary.quarantined == 5
    assert summary.without_catalogue_row == 20
    q = {r["source"].split("/")[-1]: r for r in read_quarantine(tmp_path / "db").to_pylist()}
    assert set(q) == {"9000000001.fits", "9000000002.fits", "9000000003.fits", "9000000004.fits", "zz_duplicate.fits"}
    assert "NaN" in q["9000000002.fits"]["reason"] and q["9000000002.fits"]["objid"] == 9000000002
    assert "(3, 64, 64)" in q["9000000003.fits"]["reason"]
    assert "constant" in q["9000000004.fits"]["reason"]
    assert "duplicate objid" in q["zz_duplicate.fits"]["reason"]
    assert "9000000001.fits" in q["9000000001.fits"]["reason"]
    assert ObjectStore.open(tmp_path / "db").count() == 20


def test_refuses_to_mix_models(survey, tiny_model, tmp_path):
    import onnx

    db = tmp_path / "db"
    data = tmp_path / "data"
    data.mkdir()
    for p in sorted((survey / "stamps").glob("*.fits"))[:5]:
        shutil.copy(p, data / p.name)
    ingest(data, tiny_model, db, IngestOptions(progress=False))
    other = onnx.load(tiny_model)
    for prop in other.metadata_props:
        if prop.key == "model_id":
            prop.value = "another-model"
    onnx.save(other, tmp_path / "other.onnx")
    with pytest.raises(ModelMismatch, match="refusing to add model another-model"):
        ingest(data, tmp_path / "other.onnx", db, IngestOptions(progress=False))


def test_default_workers_decode_inline_where_inference_holds_every_core():
    cpu, gpu = ["CPUExecutionProvider"], ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert default_workers(100, 256, cpu, cores=16) == 0  # small input: no process start-up
    assert default_workers(100_000, 256, cpu, cores=2) == 0  # measured faster inline on 2 cores
    assert default_workers(100_000, 256, cpu, cores=1) == 0
    assert default_workers(100_000, 256, gpu, cores=2) == 1  # the GPU infers: the spare core decodes
    assert default_workers(100_000, 256, cpu, cores=16) == 15
    assert default_workers(100_000, 256, gpu, cores=16) == 15


def test_find_stamps_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_stamps(tmp_path / "missing")
    (tmp_path / "a.fits").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in find_stamps(tmp_path)] == ["a.fits"]


def _other_model(tiny_model, tmp_path, model_id="another-model"):
    import onnx

    other = onnx.load(tiny_model)
    for prop in other.metadata_props:
        if prop.key == "model_id":
            prop.value = model_id
    onnx.save(other, tmp_path / f"{model_id}.onnx")
    return tmp_path / f"{model_id}.onnx"


def test_reembed_replaces_every_embedding_and_records_both_models(survey, tiny_model, tmp_path):
    db = tmp_path / "db"
    data = tmp_path / "data"
    data.mkdir()
    stamps = sorted((survey / "stamps").glob("*.fits"))[:8]
    for p in stamps:
        shutil.copy(p, data / p.name)
    assert ingest(data, tiny_model, db, IngestOptions(progress=False, workers=0)).ingested == 8
    (data / stamps[-1].name).unlink()  # this object has no stamp in the re-embedding input
    other = _other_model(tiny_model, tmp_path)
    summary = ingest(data, other, db, IngestOptions(progress=False, reembed=True, workers=0))
    assert summary.ingested == 7 and summary.removed_other_model == 1
    store = ObjectStore.open(db)
    assert store.model_ids() == ["another-model"] and store.count() == 7
    registered = sorted(read_models(db).column("model_id").to_pylist())
    assert registered == sorted(["another-model", OnnxEmbedder(tiny_model).model_id])


def test_cli_exit_codes_strict_and_summary(survey, tiny_model, tmp_path, capsys):
    from clients.cli import main

    data = tmp_path / "data"
    data.mkdir()
    for p in sorted((survey / "stamps").glob("*.fits"))[:4]:
        shutil.copy(p, data / p.name)
    (data / "9000000001.fits").write_bytes(b"SIMPLE  =                    T")  # truncated
    args = ["ingest", "--data", str(data), "--model", str(tiny_model), "--no-progress", "--workers", "0"]
    assert main([*args, "--db", str(tmp_path / "db")]) == 0
    out = capsys.readouterr().out
    assert "ingested 4 stamps, quarantined 1, skipped 0" in out and "stamps/s" in out
    assert "quarantined x1: unreadable or truncated FITS file" in out
    assert main([*args, "--db", str(tmp_path / "db2"), "--strict"]) == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "1.fits").write_bytes(b"junk")
    assert main([*args[:2], str(empty), *args[3:], "--db", str(tmp_path / "db3")]) == 1
    other = _other_model(tiny_model, tmp_path)
    assert main([*args[:4], str(other), *args[5:], "--db", str(tmp_path / "db")]) == 3
    assert "--reembed" in capsys.readouterr().out


def test_ingest_applies_the_models_own_normalisation(survey, tiny_model, tmp_path):
    """A model exported with identity normalisation (e.g. trained on PNG composites) gets identity input."""
    import onnx

    model = onnx.load(tiny_model)
    keys = {p.key: p for p in model.metadata_props}
    keys["normalisation"].value = "identity"
    keys["model_id"].value = "identity-model"
    onnx.save(model, tmp_path / "identity.onnx")
    data = tmp_path / "data"
    data.mkdir()
    first = sorted((survey / "stamps").glob("*.fits"))[0]
    shutil.copy(first, data / first.name)
    ingest(data, tmp_path / "identity.onnx", tmp_path / "db", IngestOptions(progress=False))
    embedder = OnnxEmbedder(tmp_path / "identity.onnx")
    assert embedder.normalisation == "identity"
    stamp = read_stamp(first)
    stored = ObjectStore.open(tmp_path / "db").get(int(stamp.header["OBJID"]), with_embedding=True)["embedding"]
    assert np.allclose(stored, embedder.embed_raw(stamp.data[None])[0], atol=1e-5)
    assert not np.allclose(stored, OnnxEmbedder(tiny_model).embed_raw(stamp.data[None])[0], atol=1e-3)
    assert '"kind": "identity"' in read_models(tmp_path / "db").column("normalisation")[0].as_py()


def _operations(db, versions: int) -> list[str]:
    """Lance operations of the objects table's first commits (Overwrite, Append, Update for merge-insert ...)."""
    dataset = ObjectStore.open(db).table.to_lance()
    return [type(dataset.read_transaction(v).operation).__name__ for v in range(1, versions + 1)]


def _copy(survey, dest, stamps):
    dest.mkdir(exist_ok=True)
    for p in stamps:
        shutil.copy(p, dest / p.name)
    return dest


def test_new_objids_are_appended_and_existing_ones_merged(survey, tiny_model, tmp_path, monkeypatch):
    """A fresh ingest appends every chunk; a resumed one appends only new objids; --refresh merges."""
    stamps = sorted((survey / "stamps").glob("*.fits"))
    half = _copy(survey, tmp_path / "half", stamps[:100])
    data = _copy(survey, tmp_path / "all", stamps)
    db = tmp_path / "db"
    writes: list[tuple[int, bool]] = []
    write = ObjectStore.write.__func__

    def spy(cls, db_path, rows, *, new=False):
        writes.append((rows.num_rows, new))
        return write(cls, db_path, rows, new=new)

    monkeypatch.setattr(ObjectStore, "write", classmethod(spy))
    kwargs = {"progress": False, "workers": 0, "chunk_size": 40}
    assert ingest(half, tiny_model, db, IngestOptions(**kwargs)).ingested == 100
    assert len(writes) == 2 and all(new for _, new in writes)  # chunks close on 64-item task boundaries
    assert _operations(db, 2) == ["Overwrite", "Append"]  # the first chunk creates the table, no merge

    writes.clear()
    resumed = ingest(data, tiny_model, db, IngestOptions(**kwargs))
    assert (resumed.ingested, resumed.skipped) == (SURVEY_N - 100, 100)
    assert writes and all(new for _, new in writes) and sum(n for n, _ in writes) == SURVEY_N - 100
    store = ObjectStore.open(db)
    assert store.count() == SURVEY_N == len(np.unique(store.objids()))

    writes.clear()
    before = {r["objid"]: r["ingested_at"] for r in store.table.to_arrow().select(["objid", "ingested_at"]).to_pylist()}
    refreshed = ingest(data, tiny_model, db, IngestOptions(refresh=True, **kwargs))
    assert refreshed.ingested == SURVEY_N and writes and not any(new for _, new in writes)
    after = ObjectStore.open(db).table.to_arrow()
    assert after.num_rows == SURVEY_N == len(np.unique(after.column("objid").to_numpy()))
    assert all(r["ingested_at"] > before[r["objid"]] for r in after.select(["objid", "ingested_at"]).to_pylist())


def test_reembed_merges_rows_of_the_other_model(survey, tiny_model, tmp_path, monkeypatch):
    """--reembed writes over rows that exist under another model: merge-insert, never append."""
    data = _copy(survey, tmp_path / "data", sorted((survey / "stamps").glob("*.fits"))[:30])
    db = tmp_path / "db"
    ingest(data, tiny_model, db, IngestOptions(progress=False, workers=0))
    writes: list[bool] = []
    write = ObjectStore.write.__func__

    def spy(cls, db_path, rows, *, new=False):
        writes.append(new)
        return write(cls, db_path, rows, new=new)

    monkeypatch.setattr(ObjectStore, "write", classmethod(spy))
    summary = ingest(
        data, _other_model(tiny_model, tmp_path), db, IngestOptions(progress=False, workers=0, reembed=True)
    )
    assert summary.ingested == 30 and summary.removed_other_model == 0 and writes == [False]
    table = ObjectStore.open(db).table.to_arrow()
    assert table.num_rows == 30 == len(np.unique(table.column("objid").to_numpy()))
    assert set(table.column("model_id").to_pylist()) == {"another-model"}


def test_concurrent_ingests_into_one_db_are_serialised(survey, tiny_model, tmp_path):
    """Two runs with overlapping inputs at once: the second waits for the first, then skips its objids."""
    import threading

    stamps = sorted((survey / "stamps").glob("*.fits"))
    a = _copy(survey, tmp_path / "a", stamps[:80])
    b = _copy(survey, tmp_path / "b", stamps[40:120])
    db = tmp_path / "db"
    results = {}

    def run(name, data):
        results[name] = ingest(data, tiny_model, db, IngestOptions(progress=False, workers=0, chunk_size=16))

    threads = [threading.Thread(target=run, args=(name, data)) for name, data in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert sorted(results) == ["a", "b"]
    assert sum(s.ingested for s in results.values()) == 120 and sum(s.skipped for s in results.values()) == 40
    store = ObjectStore.open(db)
    assert store.count() == 120 == len(np.unique(store.objids()))


def test_ingest_lock_waits_for_the_holder(survey, tiny_model, tmp_path):
    import threading

    from ingest.bookkeeping import ingest_lock

    data = _copy(survey, tmp_path / "data", sorted((survey / "stamps").glob("*.fits"))[:5])
    db = tmp_path / "db"
    with ingest_lock(db):
        options = IngestOptions(progress=False, workers=0)
        worker = threading.Thread(target=ingest, args=(data, tiny_model, db, options))
        worker.start()
        worker.join(timeout=2)
        assert worker.is_alive() and not (db / "objects.lance").exists()
    worker.join(timeout=120)
    assert not worker.is_alive() and ObjectStore.open(db).count() == 5
