"""The train/export subcommands, run end to end on a handful of FITS stamps."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from encoders.cli import add_parsers

REPO = Path(__file__).resolve().parents[2]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ssald")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    return parser


def _survey(root: Path, n: int = 6) -> Path:
    rng = np.random.default_rng(0)
    (root / "stamps").mkdir(parents=True)
    for objid in range(n):
        hdu = fits.PrimaryHDU(rng.normal(0, 1, size=(5, 16, 16)).astype(">f4") + 20 * (objid % 2))
        hdu.header["OBJID"] = objid
        hdu.header["BANDS"] = "u,g,r,i,z"
        hdu.writeto(root / "stamps" / f"{objid}.fits")
    return root


def test_cli_module_imports_only_the_standard_library() -> None:
    code = "import encoders.cli, sys; bad = {'torch', 'numpy'} & set(sys.modules); assert not bad, bad"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_train_then_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, run, out = _survey(tmp_path / "survey"), tmp_path / "run", tmp_path / "model.onnx"
    args = _parser().parse_args(
        ["train", "--data", str(data), "--run", str(run), "--epochs", "1", "--batch-size", "4",
         "--max-stamps", "5", "--threads", "1", "--precision", "fp32", "--no-progress"]
    )  # fmt: skip
    assert args.func(args) == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary.startswith("trained on 5 stamps 5x16x16") and str(run) in summary
    assert (run / "checkpoint.pt").exists()

    args = _parser().parse_args(["export", "--run", str(run), "--out", str(out)])
    assert args.func(args) == 0
    assert "model_id" in capsys.readouterr().out and out.exists()

    from encoders.embedder import OnnxEmbedder

    embedder = OnnxEmbedder(out, providers=["CPUExecutionProvider"])
    assert embedder.bands == ("u", "g", "r", "i", "z") and embedder.stamp_size == 16
    assert embedder.embedding_dim == 256  # the default backbone


def test_train_reports_an_empty_survey(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "stamps").mkdir()
    args = _parser().parse_args(["train", "--data", str(tmp_path), "--run", str(tmp_path / "run")])
    assert args.func(args) == 2
    assert "need at least 2 stamps" in capsys.readouterr().out
