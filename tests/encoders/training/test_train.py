"""VICReg training loop: run directory contents, automatic resume, config, stamp loading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from astropy.io import fits

from encoders.normalise import LuptonParams, lupton_asinh
from encoders.stamps import StampError
from encoders.training.train import TrainConfig, load_backbone, load_stamps, train


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_run_directory_contents(trained_run: Path, tiny_config: dict) -> None:
    config = json.loads((trained_run / "config.json").read_text())
    assert config["epochs"] == 1 and config["bands"] == ["g", "r", "z"] and config["widths"] == [8, 16]
    assert config["lupton"] == LuptonParams().to_dict()
    assert config["device"] == "cpu" and config["precision"] == "fp32"  # "auto" values are resolved
    ckpt = torch.load(trained_run / "checkpoint.pt", weights_only=True)
    assert set(ckpt) >= {"model", "expander", "optimizer", "epoch", "step", "config"}
    assert (ckpt["epoch"], ckpt["step"]) == (1, 2)  # 16 stamps / batch 8
    lines = _metrics(trained_run)
    assert [m["scope"] for m in lines] == ["init", "window", "window", "epoch"]
    for key in ("std_mean", "std_min", "collapsed_frac", "rankme", "tpcf", "tpcf_spread"):
        assert np.isfinite(lines[0][key]) and np.isfinite(lines[-1][key])
    assert "knn_acc" not in lines[-1]  # no labels given
    for m in lines[1:]:
        assert {"epoch", "step", "loss", "inv", "var", "cov", "lr", "seconds"} <= set(m)
        assert np.isfinite(m["loss"])
        assert m["loss"] == pytest.approx(25 * m["inv"] + 25 * m["var"] + m["cov"], rel=1e-4)
    assert not list(trained_run.glob(".*tmp*"))  # atomic writes left no temporaries


def test_resumes_from_checkpoint(tmp_path: Path, tiny_stamps: np.ndarray, tiny_config: dict) -> None:
    train(tiny_stamps, tmp_path, TrainConfig(**tiny_config), progress=False)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["epoch"] == 1
    train(tiny_stamps, tmp_path, TrainConfig(**{**tiny_config, "epochs": 2}), progress=False)
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert (ckpt["epoch"], ckpt["step"]) == (2, 4)
    epochs = [(m["epoch"], m["step"]) for m in _metrics(tmp_path) if m["scope"] == "epoch"]
    assert epochs == [(0, 2), (1, 4)]  # epoch 0 was not trained again
    assert json.loads((tmp_path / "config.json").read_text())["epochs"] == 2

    # Resuming reproduces an uninterrupted run exactly (data order and augmentations are seeded per epoch).
    straight = tmp_path / "straight"
    train(tiny_stamps, straight, TrainConfig(**{**tiny_config, "epochs": 2}), progress=False)
    ref = torch.load(straight / "checkpoint.pt", weights_only=True)
    for key, value in ref["model"].items():
        torch.testing.assert_close(ckpt["model"][key], value, rtol=1e-5, atol=1e-6)

    # Nothing left to do: a third call trains no step.
    train(tiny_stamps, tmp_path, TrainConfig(**{**tiny_config, "epochs": 2}), progress=False)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == 4


def test_resume_refuses_a_different_architecture(trained_run: Path, tiny_stamps: np.ndarray, tiny_config: dict) -> None:
    with pytest.raises(ValueError, match=r"cannot resume .* widths=\(8, 16\)"):
        train(tiny_stamps, trained_run, TrainConfig(**{**tiny_config, "widths": (4, 8)}), progress=False)


def test_max_steps_stops_mid_epoch(tmp_path: Path, tiny_stamps: np.ndarray, tiny_config: dict) -> None:
    config = TrainConfig(**{**tiny_config, "batch_size": 4, "max_steps": 3})
    train(tiny_stamps, tmp_path, config, progress=False)
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert (ckpt["epoch"], ckpt["step"]) == (0, 3)


def test_rejects_stamps_that_disagree_with_the_config(tmp_path: Path, tiny_config: dict) -> None:
    config = TrainConfig(**tiny_config)
    with pytest.raises(ValueError, match=r"stamps have 5 bands but config.bands is \('g', 'r', 'z'\)"):
        train(np.zeros((4, 5, 32, 32), np.float32), tmp_path, config, progress=False)
    with pytest.raises(ValueError, match="stamps are 16x16 pixels but config.stamp_size is 32"):
        train(np.zeros((4, 3, 16, 16), np.float32), tmp_path, config, progress=False)
    with pytest.raises(ValueError, match="at least 2 stamps"):
        train(np.zeros((1, 3, 32, 32), np.float32), tmp_path, config, progress=False)


def test_load_backbone(trained_run: Path, tiny_stamps: np.ndarray) -> None:
    model, config = load_backbone(trained_run)
    assert not model.training and model.out_dim == 16 and config.bands == ("g", "r", "z")
    with torch.no_grad():
        assert model(torch.from_numpy(tiny_stamps[:3])).shape == (3, 16)
    with pytest.raises(FileNotFoundError, match="no checkpoint.pt"):
        load_backbone(trained_run / "nowhere")


def test_config_round_trip_and_validation() -> None:
    config = TrainConfig(bands=["g", "r"], lupton={"q": 9.0, "stretch": 3.0, "minimum": 0.0})
    data = config.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert TrainConfig.from_dict(data) == config
    assert config.bands == ("g", "r") and config.lupton == LuptonParams(q=9.0, stretch=3.0)
    with pytest.raises(ValueError, match="unknown keys"):
        TrainConfig.from_dict({"epoch": 3})
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="fp8")


def _write_fits(path: Path, data: np.ndarray) -> None:
    hdu = fits.PrimaryHDU(data.astype(">f4"))
    hdu.header["BANDS"] = ",".join("ugriz"[: data.shape[0]])
    hdu.writeto(path)


def test_load_stamps_reads_and_normalises(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    cubes = rng.normal(5, 20, size=(3, 5, 16, 16)).astype(np.float32)
    paths = []
    for i, cube in enumerate(cubes):
        paths.append(tmp_path / f"{i}.fits")
        _write_fits(paths[-1], cube)
    params = LuptonParams(stretch=5.0)
    out = load_stamps(paths, params, progress=False)
    assert out.shape == (3, 5, 16, 16) and out.dtype == np.float32
    np.testing.assert_array_equal(out, lupton_asinh(cubes, params))

    odd = tmp_path / "odd.fits"
    _write_fits(odd, cubes[0, :, :8, :8])
    expected = rf"{odd}: stamp has shape \(5, 8, 8\) but .*0.fits has \(5, 16, 16\)"
    with pytest.raises(StampError, match=expected):
        load_stamps([*paths, odd], params, progress=False)
    with pytest.raises(ValueError, match="no stamp paths"):
        load_stamps([], params, progress=False)


def test_fp16_needs_cuda(tmp_path: Path, tiny_stamps: np.ndarray, tiny_config: dict) -> None:
    config = TrainConfig(**{**tiny_config, "precision": "fp16", "device": "cpu"})
    with pytest.raises(ValueError, match="precision='fp16' needs a CUDA device"):
        train(tiny_stamps, tmp_path, config, progress=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (the CPU path is tested above)")
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_on_gpu(tmp_path: Path, tiny_stamps: np.ndarray, tiny_config: dict, precision: str) -> None:
    config = TrainConfig(**{**tiny_config, "precision": precision, "device": "cuda", "epochs": 2})
    train(tiny_stamps, tmp_path, config, progress=False)
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True, map_location="cpu")
    assert ckpt["step"] == 4 and all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())
    assert json.loads((tmp_path / "config.json").read_text())["precision"] == precision


def test_lars_and_full_augmentation_train(tmp_path: Path, tiny_stamps: np.ndarray, tiny_config: dict) -> None:
    config = TrainConfig(
        **tiny_config, optimizer="lars", lr=0.05, max_angle=180.0, scale_range=(0.9, 1.1), blur_sigma=(0.0, 1.0),
        band_noise=(0.0, 0.02), max_ebv=0.1, band_drop=0.1,
    )  # fmt: skip
    train(tiny_stamps, tmp_path, config, progress=False)
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 2 and "mu" in next(iter(ckpt["optimizer"]["state"].values()))
    initial = TrainConfig(**tiny_config)
    assert np.isfinite(_metrics(tmp_path)[-1]["loss"]) and initial.optimizer == "adamw"
