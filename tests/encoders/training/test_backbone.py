"""ResNetEncoder: any band count, output dimension, input checks."""

from __future__ import annotations

import pytest
import torch

from encoders.training.backbone import ResNetEncoder


@pytest.mark.parametrize("in_bands", [1, 3, 5])
def test_any_band_count(in_bands: int) -> None:
    model = ResNetEncoder(in_bands=in_bands, widths=(8, 16, 32), blocks=(1, 2, 1)).eval()
    with torch.no_grad():
        out = model(torch.rand(2, in_bands, 64, 64))
    assert out.shape == (2, model.out_dim)
    assert model.out_dim == 32
    assert torch.all(torch.isfinite(out))


def test_defaults() -> None:
    model = ResNetEncoder()
    assert model.in_bands == 5 and model.out_dim == 256 and model.stem_stride == 2
    assert model.config() == {"in_bands": 5, "widths": [32, 64, 128, 256], "blocks": [1, 1, 1, 1], "stem_stride": 2}
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in model.modules())
    assert model.stem[0].kernel_size == (3, 3) and model.stem[0].stride == (2, 2)
    with torch.no_grad():
        assert model.eval()(torch.rand(1, 5, 64, 64)).shape == (1, 256)


@pytest.mark.parametrize("size", [24, 33, 48])
def test_other_stamp_sizes_and_stem_stride(size: int) -> None:
    model = ResNetEncoder(in_bands=2, widths=(4, 8), blocks=(1, 1), stem_stride=1).eval()
    with torch.no_grad():
        assert model(torch.rand(3, 2, size, size)).shape == (3, 8)


def test_small_scale_structure_reaches_the_output() -> None:
    """Two point sources 3 px apart and one point source embed differently."""
    torch.manual_seed(0)
    model = ResNetEncoder(in_bands=1, widths=(8, 16), blocks=(1, 1)).eval()
    single = torch.zeros(1, 1, 32, 32)
    single[0, 0, 16, 16] = 1.0
    double = single.clone()
    double[0, 0, 16, 19] = 1.0
    with torch.no_grad():
        assert not torch.allclose(model(single), model(double))


def test_rejects_bad_input_and_arguments() -> None:
    model = ResNetEncoder(in_bands=5, widths=(4,), blocks=(1,))
    with pytest.raises(ValueError, match=r"expects input \(N, 5, H, W\), got shape \(2, 3, 16, 16\)"):
        model(torch.rand(2, 3, 16, 16))
    with pytest.raises(ValueError, match="in_bands must be >= 1"):
        ResNetEncoder(in_bands=0)
    with pytest.raises(ValueError, match="equal length"):
        ResNetEncoder(widths=(8, 16), blocks=(1,))
    with pytest.raises(ValueError, match="stem_stride must be 1 or 2"):
        ResNetEncoder(stem_stride=4)


@pytest.mark.parametrize("arch", ["resnet18", "resnet34"])
def test_resnet_presets_of_the_cli(arch: str) -> None:
    from clients.cli.train import ARCHES

    model = ResNetEncoder(in_bands=2, widths=(4, 8, 16, 32), blocks=ARCHES[arch]).eval()
    assert [len(stage) for stage in model.stages] == list(ARCHES[arch])
    assert sum(isinstance(m, torch.nn.Conv2d) for m in model.modules()) == 1 + 2 * sum(ARCHES[arch]) + 3
    with torch.no_grad():
        assert model(torch.rand(2, 2, 48, 48)).shape == (2, 32)
