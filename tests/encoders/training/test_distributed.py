"""DDP: the training entry point under torchrun, 2 CPU processes with the gloo backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from astropy.io import fits

from encoders.training.config import TrainConfig
from encoders.training.distributed import vicreg_terms as _vicreg
from encoders.training.vicreg import vicreg_loss

REPO = Path(__file__).resolve().parents[3]


def test_single_process_loss_is_the_paper_loss() -> None:
    a, b = torch.randn(12, 6, dtype=torch.float64), torch.randn(12, 6, dtype=torch.float64)
    for got, want in zip(_vicreg(a, b, TrainConfig()), vicreg_loss(a, b)):
        assert got.item() == pytest.approx(want.item())


def test_torchrun_two_gloo_processes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    (tmp_path / "survey" / "stamps").mkdir(parents=True)
    for objid in range(16):
        hdu = fits.PrimaryHDU(rng.normal(0, 1, size=(3, 16, 16)).astype(">f4") + 30 * (objid % 3))
        hdu.header["BANDS"] = "g,r,z"
        hdu.writeto(tmp_path / "survey" / "stamps" / f"{objid}.fits")
    run = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "clients.cli", "train", "--data", str(tmp_path / "survey"), "--run-dir", str(run),
        "--epochs", "2", "--batch-size", "8", "--arch", "small", "--width", "4", "--expander", "16", "16",
        "--threads", "1", "--precision", "fp32", "--device", "cpu", "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("trained on 16 stamps 3x16x16") == 1  # rank 0 alone reports
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    assert (ckpt["epoch"], ckpt["step"]) == (2, 4)  # 16 stamps, global batch 8 (4 per process)
    epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = [m for m in epochs if m["scope"] == "epoch"]
    assert [m["epoch"] for m in epochs] == [0, 1] and all(m["world"] == 2 for m in epochs)
    assert all(np.isfinite(m["loss"]) and np.isfinite(m["rankme"]) for m in epochs)
