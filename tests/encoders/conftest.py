"""Shared fixtures for the encoders tests: real data paths and one tiny trained run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

TINY = dict(
    epochs=1,
    batch_size=8,
    widths=(8, 16),
    blocks=(1, 1),
    expander_dims=(32, 32),
    bands=("g", "r", "z"),
    stamp_size=32,
    log_every=1,
    precision="fp32",
    threads=1,
)


@pytest.fixture
def tiny_config() -> dict:
    """Keyword arguments of a TrainConfig small enough to train in about a second."""
    return dict(TINY)


@pytest.fixture(scope="session")
def tiny_stamps() -> np.ndarray:
    """16 normalised-looking 3x32x32 stamps: a blob with random position and colour on noise."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:32, :32]
    out = rng.uniform(0.0, 0.05, size=(16, 3, 32, 32)).astype(np.float32)
    for i in range(len(out)):
        cy, cx = rng.uniform(10, 22, size=2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * rng.uniform(1.5, 5) ** 2))
        out[i] += (rng.uniform(0.2, 0.9, size=(3, 1, 1)) * blob).astype(np.float32)
    return np.clip(out, 0, 1)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory, tiny_stamps: np.ndarray) -> Path:
    """A run directory with one epoch of a tiny 3-band 32x32 encoder."""
    from encoders.training.train import TrainConfig, train

    run_dir = tmp_path_factory.mktemp("run")
    return train(tiny_stamps, run_dir, TrainConfig(**TINY), progress=False)


@pytest.fixture(scope="session")
def exported_model(tmp_path_factory: pytest.TempPathFactory, trained_run: Path) -> Path:
    """The tiny run exported to ONNX."""
    from encoders.training.onnx_export import export_onnx

    return export_onnx(trained_run, tmp_path_factory.mktemp("onnx") / "model.onnx")
