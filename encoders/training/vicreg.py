"""VICReg loss (Bardes, Ponce & LeCun 2022) and its expander head.

Pure functions for the three terms behind a thin :class:`VICRegLoss` module, with
the paper's coefficients as keyword defaults. The arithmetic follows
``facebookresearch/vicreg`` ``main_vicreg.py``: the variance term is averaged over
the two branches, the covariance term summed over them, and each is divided by the
embedding dimension.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "Expander",
    "VICRegLoss",
    "covariance_loss",
    "invariance_loss",
    "variance_loss",
    "vicreg_loss",
]


def _check_embeddings(z: torch.Tensor, name: str) -> None:
    if z.ndim != 2:
        raise ValueError(f"VICReg {name} must have shape (N, D), got {tuple(z.shape)}")
    if z.shape[0] < 2:
        raise ValueError(f"VICReg {name} needs a batch of at least 2 embeddings, got {z.shape[0]}")


def invariance_loss(z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
    """Mean squared distance between the embeddings of two views.

    Parameters
    ----------
    z_a, z_b : torch.Tensor
        ``(N, D)`` embeddings of the two views of the same ``N`` stamps.

    Returns
    -------
    torch.Tensor
        Scalar ``mean((z_a - z_b) ** 2)`` over all ``N * D`` entries.
    """
    if z_a.shape != z_b.shape:
        raise ValueError(f"VICReg views have different shapes: {tuple(z_a.shape)} vs {tuple(z_b.shape)}")
    return F.mse_loss(z_a, z_b)


def variance_loss(z: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Hinge on the standard deviation of every embedding dimension.

    Parameters
    ----------
    z : torch.Tensor
        ``(N, D)`` embeddings of one view, ``N >= 2``.
    eps : float
        Added to the variance before the square root (numerical stability).

    Returns
    -------
    torch.Tensor
        Scalar ``mean_d relu(1 - sqrt(var_d(z) + eps))`` with the unbiased variance;
        ``1 - sqrt(eps)`` for collapsed (constant) embeddings, 0 when every
        dimension has standard deviation >= 1.
    """
    _check_embeddings(z, "embeddings")
    std = torch.sqrt(z.var(dim=0) + eps)
    return torch.mean(F.relu(1.0 - std))


def _off_diagonal(m: torch.Tensor) -> torch.Tensor:
    n = m.shape[0]
    return m.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


def covariance_loss(z: torch.Tensor) -> torch.Tensor:
    """Sum of squared off-diagonal covariances, divided by the dimension ``D``.

    Parameters
    ----------
    z : torch.Tensor
        ``(N, D)`` embeddings of one view, ``N >= 2``.

    Returns
    -------
    torch.Tensor
        Scalar ``sum_{i != j} C_ij ** 2 / D`` with ``C = z_c.T @ z_c / (N - 1)`` and
        ``z_c`` the batch-centred embeddings.
    """
    _check_embeddings(z, "embeddings")
    n, d = z.shape
    zc = z - z.mean(dim=0)
    cov = (zc.T @ zc) / (n - 1)
    return _off_diagonal(cov).pow(2).sum() / d


def vicreg_loss(
    z_a: torch.Tensor,
    z_b: torch.Tensor,
    sim_coeff: float = 25.0,
    std_coeff: float = 25.0,
    cov_coeff: float = 1.0,
    eps: float = 1e-4,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """VICReg loss of two batches of expander outputs.

    Parameters
    ----------
    z_a, z_b : torch.Tensor
        ``(N, D)`` embeddings of two augmented views of the same ``N`` stamps.
    sim_coeff, std_coeff, cov_coeff : float
        Weights of the invariance, variance and covariance terms (paper: 25, 25, 1).
    eps : float
        Variance stabiliser of :func:`variance_loss`.

    Returns
    -------
    total, inv, var, cov : torch.Tensor
        ``total = sim_coeff * inv + std_coeff * var + cov_coeff * cov`` and the three
        unweighted terms: ``inv`` = :func:`invariance_loss`, ``var`` = mean of
        :func:`variance_loss` over the two views, ``cov`` = sum of
        :func:`covariance_loss` over the two views.
    """
    inv = invariance_loss(z_a, z_b)
    var = variance_loss(z_a, eps) / 2 + variance_loss(z_b, eps) / 2
    cov = covariance_loss(z_a) + covariance_loss(z_b)
    total = sim_coeff * inv + std_coeff * var + cov_coeff * cov
    return total, inv, var, cov


class VICRegLoss(nn.Module):
    """Module wrapper of :func:`vicreg_loss` holding its coefficients.

    Parameters
    ----------
    sim_coeff, std_coeff, cov_coeff, eps : float
        See :func:`vicreg_loss`; defaults are the paper's values.
    """

    def __init__(
        self, sim_coeff: float = 25.0, std_coeff: float = 25.0, cov_coeff: float = 1.0, eps: float = 1e-4
    ) -> None:
        super().__init__()
        self.sim_coeff = sim_coeff
        self.std_coeff = std_coeff
        self.cov_coeff = cov_coeff
        self.eps = eps

    def forward(
        self, z_a: torch.Tensor, z_b: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return ``(total, inv, var, cov)``; see :func:`vicreg_loss`."""
        return vicreg_loss(z_a, z_b, self.sim_coeff, self.std_coeff, self.cov_coeff, self.eps)


class Expander(nn.Sequential):
    """VICReg expander: ``(Linear-BN-ReLU) * (k - 1)`` then a bias-free Linear.

    Parameters
    ----------
    in_dim : int
        Backbone feature dimension.
    dims : sequence of int
        Output width of each Linear layer. The paper uses 8192-8192-8192; the default
        512-512-512 keeps CPU training of small backbones fast.

    Attributes
    ----------
    out_dim : int
        ``dims[-1]``.
    """

    def __init__(self, in_dim: int, dims: Sequence[int] = (512, 512, 512)) -> None:
        dims = tuple(int(d) for d in dims)
        if in_dim < 1 or not dims or min(dims) < 1:
            raise ValueError(f"Expander needs in_dim >= 1 and non-empty positive dims, got {in_dim}, {dims}")
        sizes = (int(in_dim), *dims)
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-2], sizes[1:-1]):
            layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU(inplace=True)]
        layers.append(nn.Linear(sizes[-2], sizes[-1], bias=False))
        super().__init__(*layers)
        self.out_dim = dims[-1]
