"""Ingest measures the non-parametric morphology of every good stamp into the morph_* columns (or not)."""

from __future__ import annotations

import numpy as np

from encoders.morphology import measure
from encoders.stamps import read_stamp
from ingest.job import ingest
from ingest.options import IngestInput, IngestOptions
from ssald_index.schema import MORPHOLOGY_COLUMNS, MORPHOLOGY_FEATURES
from ssald_index.store import ObjectStore
from tests.conftest import SURVEY_N


def test_ingest_fills_the_morphology_columns(survey, tiny_model, tmp_path):
    ingest(
        IngestInput(survey, catalogue=survey / "catalogue.fits"),
        tiny_model,
        tmp_path / "db",
        IngestOptions(progress=False),
    )
    table = ObjectStore.open(tmp_path / "db").read(["objid", "source", *MORPHOLOGY_COLUMNS])
    assert table.num_rows == SURVEY_N
    assert table.column("morph_flag").null_count == 0
    measured = np.array([table.column(c).null_count for c in MORPHOLOGY_FEATURES])
    assert (measured < 0.1 * SURVEY_N).all(), dict(zip(MORPHOLOGY_FEATURES, measured))
    gini = table.column("morph_gini").to_numpy(zero_copy_only=False)
    assert np.nanmin(gini) >= 0 and np.nanmax(gini) <= 1
    # The stored values are those of the stamp's linear fluxes, bands summed (before normalisation).
    row = table.slice(0, 1).to_pylist()[0]
    values, flag = measure(read_stamp(row["source"]).data)
    assert row["morph_flag"] == flag
    stored = np.array([np.nan if row[c] is None else row[c] for c in MORPHOLOGY_FEATURES], np.float32)
    assert np.allclose(stored, values, equal_nan=True)


def test_no_morphology_leaves_the_columns_null(survey, tiny_model, tmp_path):
    ingest(survey, tiny_model, tmp_path / "db", IngestOptions(progress=False, morphology=False))
    store = ObjectStore.open(tmp_path / "db")
    assert store.count() == SURVEY_N
    for name in MORPHOLOGY_COLUMNS:
        assert store.table.count_rows(f"{name} IS NULL") == SURVEY_N


def test_cli_flag_turns_morphology_off(survey, tiny_model, tmp_path):
    from clients.cli import main

    db = tmp_path / "db"
    args = ["ingest", "--data", str(survey), "--model", str(tiny_model), "--db", str(db), "--no-progress"]
    assert main([*args, "--no-morphology"]) == 0
    assert ObjectStore.open(db).table.count_rows("morph_flag IS NULL") == SURVEY_N
