"""``ssald quality`` (from a LanceDB table and from a training run) and ``ssald plot-run``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from clients.cli import main
from encoders.training.diagnostics import quality_report
from ssald_index.schema import objects_schema
from ssald_index.store import ObjectStore


def _db(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 8)) * 4
    z = np.concatenate([c + rng.normal(size=(40, 8)) for c in centres]).astype(np.float32)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    labels = np.repeat(["ring", "spiral", "elliptical"], 40)
    schema = objects_schema(8)
    rows = [{"objid": i, "truth_class": str(lab), "embedding": v.tolist()} for i, (lab, v) in enumerate(zip(labels, z))]
    ObjectStore.write(tmp_path / "db", pa.Table.from_pylist(rows, schema=schema))
    return tmp_path / "db", z, labels


def test_quality_from_a_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, z, labels = _db(tmp_path)
    assert main(["quality", "--db", str(db), "--out", str(tmp_path / "q.json")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == json.loads((tmp_path / "q.json").read_text())
    order = np.argsort(np.arange(len(z)))  # rows come back in objid order here
    expected = quality_report(z[order], labels[order])
    for key in ("rankme", "std_mean", "knn_acc", "davies_bouldin", "tpcf"):
        assert report[key] == pytest.approx(expected[key], rel=1e-4), key
    assert report["n"] == 120 and report["dim"] == 8 and report["knn_acc"] > 0.9
    assert main(["quality", "--db", str(db), "--labels", "none"]) == 0
    assert "knn_acc" not in json.loads(capsys.readouterr().out)


def test_quality_of_a_run_on_a_survey_then_plot(
    survey: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from encoders.normalise import LuptonParams
    from encoders.training.train import TrainConfig, load_stamps, train

    paths = sorted((survey / "stamps").glob("*.fits"))[:64]
    stamps = load_stamps(paths, LuptonParams(), progress=False)
    config = TrainConfig(
        epochs=2, batch_size=32, widths=(8, 16), blocks=(1, 1), expander_dims=(32, 32), precision="fp32", threads=1,
        diag_samples=64,
    )  # fmt: skip
    from astropy.table import Table

    cat = Table.read(survey / "catalogue.fits")
    truth = dict(zip(np.asarray(cat["objid"]).tolist(), np.asarray(cat["truth_class"]).astype(str)))
    run = train(stamps, tmp_path / "run", config, progress=False, labels=[truth[int(p.stem)] for p in paths])
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["scope"] for m in logged if "knn_acc" in m] == ["init", "epoch", "epoch"]
    assert main(["quality", "--run", str(run), "--data", str(survey), "--max-objects", "100"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 100 and report["dim"] == 16 and 0 <= report["knn_acc"] <= 1  # truth_class labels
    assert main(["quality", "--run", str(run)]) == 2
    assert "needs --data" in capsys.readouterr().out

    assert main(["plot-run", str(run), "--out", str(tmp_path / "curves.png")]) == 0
    png = tmp_path / "curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert main(["plot-run", str(tmp_path)]) == 2  # no metrics.jsonl: one-line error
    assert "no metrics.jsonl" in capsys.readouterr().err
