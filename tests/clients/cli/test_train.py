"""``ssald train`` and ``ssald export``, run end to end on a handful of FITS stamps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from clients.cli import build_parser


def _survey(root: Path, n: int = 6) -> Path:
    rng = np.random.default_rng(0)
    (root / "stamps").mkdir(parents=True)
    for objid in range(n):
        hdu = fits.PrimaryHDU(rng.normal(0, 1, size=(5, 16, 16)).astype(">f4") + 20 * (objid % 2))
        hdu.header["OBJID"] = objid
        hdu.header["BANDS"] = "u,g,r,i,z"
        hdu.writeto(root / "stamps" / f"{objid}.fits")
    return root


def test_train_then_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, run, out = _survey(tmp_path / "survey"), tmp_path / "run", tmp_path / "model.onnx"
    args = build_parser().parse_args(
        ["train", "--data", str(data), "--run", str(run), "--epochs", "1", "--batch-size", "4",
         "--max-stamps", "5", "--threads", "1", "--precision", "fp32", "--no-progress"]
    )  # fmt: skip
    assert args.func(args) == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary.startswith("trained on 5 stamps 5x16x16") and str(run) in summary
    assert (run / "checkpoint.pt").exists()

    args = build_parser().parse_args(["export", "--run", str(run), "--out", str(out)])
    assert args.func(args) == 0
    assert "model_id" in capsys.readouterr().out and out.exists()

    from encoders.embedder import OnnxEmbedder

    embedder = OnnxEmbedder(out, providers=["CPUExecutionProvider"])
    assert embedder.bands == ("u", "g", "r", "i", "z") and embedder.stamp_size == 16
    assert embedder.embedding_dim == 256  # the default backbone


def test_train_reports_an_empty_survey(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "stamps").mkdir()
    args = build_parser().parse_args(["train", "--data", str(tmp_path), "--run", str(tmp_path / "run")])
    assert args.func(args) == 2
    assert "need at least 2 stamps" in capsys.readouterr().out


def _jpegs(folder: Path, names: list[str], side: int = 40) -> list[Path]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for name in names:
        Image.fromarray(rng.integers(0, 255, size=(side, side, 3), dtype=np.uint8)).save(folder / name)
    return [folder / n for n in names]


def test_train_finds_image_folders_as_they_come(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from clients.cli.train import stamp_files

    flat = _jpegs(tmp_path / "flat", ["2.jpeg", "1.png"])
    (tmp_path / "flat" / "labels.csv").write_text("file,objid\n")
    assert stamp_files(tmp_path / "flat") == (tmp_path / "flat", sorted(flat))
    nested = _jpegs(tmp_path / "gz" / "images", ["5.jpeg"])
    assert stamp_files(tmp_path / "gz") == (tmp_path / "gz" / "images", nested)
    args = build_parser().parse_args(["train", "--data", str(tmp_path / "gz"), "--run", str(tmp_path / "run")])
    assert args.func(args) == 2
    assert f"need at least 2 stamps in {tmp_path / 'gz' / 'images'}/" in capsys.readouterr().out
    # 40 px images without --fit are not --stamp-size 16: the error says to fit them
    args = build_parser().parse_args(
        ["train", "--data", str(tmp_path / "flat"), "--run", str(tmp_path / "run"), "--stamp-size", "16"]
    )
    assert args.func(args) == 2
    assert "are 40x40 pixels, not --stamp-size 16; give --fit" in capsys.readouterr().out
    args = build_parser().parse_args(
        ["train", "--data", str(tmp_path / "flat"), "--run", str(tmp_path / "run"), "--fit", "resample",
         "--fit-fraction", "1.5"]
    )  # fmt: skip
    assert args.func(args) == 2
    assert "fit fraction must be in (0, 1], got 1.5" in capsys.readouterr().out


def test_catalogue_labels_from_a_csv_by_file_or_objid(tmp_path: Path) -> None:
    from clients.cli.train import catalogue_labels

    paths = _jpegs(tmp_path / "images", ["588848901537202306.jpeg", "588848901532418163.jpeg"])
    csv = tmp_path / "labels.csv"
    csv.write_text(
        "file,objid,class_name\n"
        "images/588848901532418163.jpeg,588848901532418163,spiral\n"
        "images/588848901537202306.jpeg,588848901537202306,elliptical\n"
        "images/1.jpeg,1,merger\n"
    )
    assert catalogue_labels(csv, paths, "class_name") == ["elliptical", "spiral"]
    assert catalogue_labels(csv, paths, "class_name", "objid") == ["elliptical", "spiral"]
    assert catalogue_labels(csv, paths, "none") is None
    assert catalogue_labels(tmp_path / "missing.csv", paths, "class_name") is None
    with pytest.raises(ValueError, match=r"labels.csv has no column ring"):
        catalogue_labels(csv, paths, "ring")
    stray = _jpegs(tmp_path / "images", ["7.jpeg"])
    with pytest.raises(ValueError, match=r"1 of 3 stamps have no row in catalogue .*labels.csv by column 'file'"):
        catalogue_labels(csv, paths + stray, "class_name")


GZ1 = Path(__file__).resolve().parents[4] / "shared" / "data" / "real" / "gz1_sdss"


@pytest.mark.skipif(not (GZ1 / "labels.csv").exists(), reason="no Galaxy Zoo 1 sample in ../shared/data/real")
def test_real_galaxy_zoo_folder_and_labels() -> None:
    from clients.cli.train import catalogue_labels, stamp_files
    from encoders.fit import Fit
    from encoders.stamps import read_stamp

    folder, paths = stamp_files(GZ1)
    assert folder == GZ1 / "images" and len(paths) > 1000
    labels = catalogue_labels(GZ1 / "labels.csv", paths[:50], "class_name")
    assert len(labels) == 50
    assert set(labels) <= {"elliptical", "spiral_cw", "spiral_acw", "edge_on", "merger", "dont_know"}
    stamp = read_stamp(paths[0])
    assert Fit("resample").apply(stamp.data, 64).shape == (3, 64, 64) and stamp.shape[-1] in (423, 424)


def test_composite_preset_sets_the_colour_composite_recipe_and_flags_override_it(tmp_path: Path) -> None:
    import json

    from encoders.training.config import PRESETS

    folder = tmp_path / "jpegs"
    _jpegs(folder, [f"{i}.jpeg" for i in range(6)], side=48)
    run = tmp_path / "run"
    args = build_parser().parse_args(
        ["train", "--data", str(folder), "--run", str(run), "--preset", "composite", "--fit", "resample",
         "--stamp-size", "16", "--brightness", "0.1", "--max-steps", "1", "--batch-size", "4", "--threads", "1",
         "--precision", "fp32", "--no-progress"]
    )  # fmt: skip
    assert args.func(args) == 0
    config = json.loads((run / "config.json").read_text())
    for key, value in PRESETS["composite"].items():
        if key != "brightness":
            assert config[key] == (list(value) if isinstance(value, tuple) else value), key
    assert config["brightness"] == 0.1  # the explicit flag wins over the preset
    assert config["normalisation"] == "identity" and config["grey_prob"] > 0
