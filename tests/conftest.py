"""Session fixtures shared across packages: a small real synthetic survey and a tiny real ONNX model.

They are built once per test session (a few seconds) and treated as read-only by tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SURVEY_N = 240


@pytest.fixture(scope="session")
def survey(tmp_path_factory) -> Path:
    """A 240-object synthetic survey (every class present), seed 7."""
    from ingest.synthetic import simulate

    out = tmp_path_factory.mktemp("survey")
    simulate(out, n=SURVEY_N, seed=7, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_model(survey, tmp_path_factory) -> Path:
    """A tiny VICReg encoder trained for a few steps on ``survey`` and exported to ONNX."""
    from encoders.normalise import LuptonParams
    from encoders.training.onnx_export import export_onnx
    from encoders.training.train import TrainConfig, load_stamps, train

    run = tmp_path_factory.mktemp("run")
    stamps = load_stamps(sorted((survey / "stamps").glob("*.fits")), LuptonParams(), progress=False)
    config = TrainConfig(epochs=1, batch_size=32, widths=(8, 16, 16, 32), expander_dims=(64, 64), max_steps=3)
    train(stamps, run, config, progress=False)
    return export_onnx(run, run / "model.onnx")
