"""``--engine ray`` on a tiny local Ray instance produces the same table as the local engine."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from astropy.io import fits

from ingest.job import ingest
from ingest.options import IngestInput, IngestOptions
from ssald_index.store import ObjectStore, read_quarantine


@pytest.fixture
def local_ray():
    import ray  # the `ray` extra, also in `dev`

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_engine_equals_local_engine(survey, tiny_model, tmp_path, local_ray):
    data = tmp_path / "data"
    data.mkdir()
    stamps = sorted((survey / "stamps").glob("*.fits"))[:24]
    for p in stamps:
        shutil.copy(p, data / p.name)
    (data / "9000000001.fits").write_bytes(stamps[0].read_bytes()[:3000])  # truncated
    fits.writeto(data / "zz_duplicate.fits", fits.getdata(stamps[3]), fits.getheader(stamps[3]))
    catalogue = survey / "catalogue.fits"

    local = ingest(
        IngestInput(data, catalogue=catalogue), tiny_model, tmp_path / "local", IngestOptions(progress=False, workers=0)
    )
    ray_run = ingest(
        IngestInput(data, catalogue=catalogue),
        tiny_model,
        tmp_path / "ray",
        IngestOptions(progress=False, engine="ray"),
    )
    for summary in (local, ray_run):
        assert (summary.ingested, summary.quarantined, summary.without_catalogue_row) == (24, 2, 0)
    assert ray_run.engine == "ray" and not (tmp_path / "ray" / "_staging").exists()

    want = ObjectStore.open(tmp_path / "local").table.to_arrow().sort_by("objid")
    got = ObjectStore.open(tmp_path / "ray").table.to_arrow().sort_by("objid")
    for name in ("objid", "ra", "dec", "survey", "bands", "source", "z", "spec_class", "bpt_class", "truth_class"):
        assert got.column(name).to_pylist() == want.column(name).to_pylist(), name
    np.testing.assert_allclose(
        np.stack(got.column("embedding").to_numpy(zero_copy_only=False)),
        np.stack(want.column("embedding").to_numpy(zero_copy_only=False)),
        atol=1e-5,
    )
    reasons = sorted(r.split(": ")[-1][:20] for r in read_quarantine(tmp_path / "ray").column("reason").to_pylist())
    assert reasons == sorted(
        r.split(": ")[-1][:20] for r in read_quarantine(tmp_path / "local").column("reason").to_pylist()
    )

    again = ingest(
        IngestInput(data, catalogue=catalogue),
        tiny_model,
        tmp_path / "ray",
        IngestOptions(progress=False, engine="ray"),
    )
    assert again.ingested == 0 and again.skipped == 24 and ObjectStore.open(tmp_path / "ray").count() == 24
