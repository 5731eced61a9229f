"""VICReg loss against an independent NumPy (float64) reference; expander layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from encoders.training.vicreg import (
    Expander,
    VICRegLoss,
    covariance_loss,
    invariance_loss,
    variance_loss,
    vicreg_loss,
)


def _reference(a: np.ndarray, b: np.ndarray, sim=25.0, std=25.0, cov=1.0, eps=1e-4):
    """VICReg written out from the paper's equations, loop by loop, in float64."""
    n, d = a.shape
    inv = sum((a[i, j] - b[i, j]) ** 2 for i in range(n) for j in range(d)) / (n * d)

    def var_term(z):
        total = 0.0
        for j in range(d):
            mean = sum(z[:, j]) / n
            variance = sum((z[i, j] - mean) ** 2 for i in range(n)) / (n - 1)
            total += max(0.0, 1.0 - np.sqrt(variance + eps))
        return total / d

    def cov_term(z):
        means = z.mean(axis=0)
        total = 0.0
        for j in range(d):
            for k in range(d):
                if j != k:
                    c = sum((z[i, j] - means[j]) * (z[i, k] - means[k]) for i in range(n)) / (n - 1)
                    total += c * c
        return total / d

    var = (var_term(a) + var_term(b)) / 2
    covariance = cov_term(a) + cov_term(b)
    return sim * inv + std * var + cov * covariance, inv, var, covariance


@pytest.mark.parametrize("scale", [0.3, 2.0])
def test_matches_numpy_reference(scale: float) -> None:
    rng = np.random.default_rng(int(scale * 10))
    a = rng.normal(0, scale, size=(12, 6)) + rng.normal(size=6)
    b = a + rng.normal(0, 0.3, size=a.shape)
    a[:, 1] += 0.8 * a[:, 0]  # correlated dimensions make the covariance term non-trivial
    ours = vicreg_loss(torch.from_numpy(a), torch.from_numpy(b))
    ref = _reference(a, b)
    for got, want in zip(ours, ref):
        assert got.item() == pytest.approx(want, abs=1e-5, rel=1e-5)
    ours32 = vicreg_loss(torch.from_numpy(a).float(), torch.from_numpy(b).float(), 5.0, 10.0, 2.0, 1e-3)
    for got, want in zip(ours32, _reference(a, b, 5.0, 10.0, 2.0, 1e-3)):
        assert got.item() == pytest.approx(want, rel=1e-4, abs=1e-5)


def test_terms_are_the_pure_functions() -> None:
    a, b = torch.randn(16, 8, dtype=torch.float64), torch.randn(16, 8, dtype=torch.float64)
    total, inv, var, cov = vicreg_loss(a, b)
    assert inv == invariance_loss(a, b)
    assert var == pytest.approx((variance_loss(a) + variance_loss(b)).item() / 2)
    assert cov == pytest.approx((covariance_loss(a) + covariance_loss(b)).item())
    assert total == pytest.approx(25 * inv.item() + 25 * var.item() + cov.item())
    module = VICRegLoss()
    assert all(torch.equal(x, y) for x, y in zip(module(a, b), (total, inv, var, cov)))


def test_collapse_costs_the_full_variance_term() -> None:
    z = torch.full((32, 16), 0.7, dtype=torch.float64)
    total, inv, var, cov = vicreg_loss(z, z.clone())
    assert inv.item() == 0.0
    assert cov.item() == pytest.approx(0.0, abs=1e-20)
    assert var.item() == pytest.approx(1.0 - np.sqrt(1e-4))  # relu(1 - sqrt(0 + eps)) in every dimension
    assert total.item() == pytest.approx(25.0 * (1.0 - 0.01))


def test_spread_out_decorrelated_embeddings_cost_nothing_but_invariance() -> None:
    z = torch.tensor(np.kron(np.eye(4), [[3.0], [-3.0]]))  # 8 x 4, std > 1, zero covariance
    _, inv, var, cov = vicreg_loss(z, z)
    assert (inv.item(), var.item()) == (0.0, 0.0)
    assert cov.item() == pytest.approx(0.0, abs=1e-12)


def test_input_checks() -> None:
    with pytest.raises(ValueError, match="at least 2 embeddings"):
        variance_loss(torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"shape \(N, D\)"):
        covariance_loss(torch.zeros(4))
    with pytest.raises(ValueError, match="different shapes"):
        invariance_loss(torch.zeros(4, 3), torch.zeros(4, 2))


def test_expander_layout() -> None:
    expander = Expander(16, dims=(32, 24, 8))
    kinds = [type(m).__name__ for m in expander]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert expander[-1].bias is None and expander[-1].out_features == 8 and expander.out_dim == 8
    assert expander(torch.randn(5, 16)).shape == (5, 8)
    assert Expander(16).out_dim == 512 and len(Expander(16)) == 7
