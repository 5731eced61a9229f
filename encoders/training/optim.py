"""Optimisers and learning-rate schedule of VICReg training.

:class:`LARS` follows ``facebookresearch/vicreg`` (``main_vicreg.py``): SGD with momentum
whose update is rescaled layer by layer to ``eta * ||w|| / ||g||``, with biases and
normalisation parameters excluded from both weight decay and the rescaling.
:func:`make_optimizer` builds it or AdamW over the same parameter groups, and
:func:`lr_at` is the linear warm-up + cosine decay both use.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

__all__ = ["LARS", "OPTIMIZERS", "lr_at", "make_optimizer", "param_groups"]

OPTIMIZERS = ("adamw", "lars")


def param_groups(modules: Iterable[nn.Module], weight_decay: float) -> list[dict[str, Any]]:
    """Two groups: weights (decayed, LARS-adapted) and biases/norm parameters (neither)."""
    decay, no_decay = [], []
    for module in modules:
        for param in module.parameters():
            (no_decay if param.ndim <= 1 else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay, "lars_exclude": False},
        {"params": no_decay, "weight_decay": 0.0, "lars_exclude": True},
    ]


class LARS(torch.optim.Optimizer):
    """Layer-wise Adaptive Rate Scaling (You et al. 2017), as in VICReg's reference code.

    Parameters
    ----------
    params : iterable
        Parameters or groups; a group with ``lars_exclude=True`` gets plain momentum SGD.
    lr : float
        Learning rate (VICReg: ``0.2 * batch_size / 256``).
    weight_decay : float
        L2 penalty added to the gradient (VICReg: 1e-6).
    momentum : float
        Heavy-ball momentum (0.9).
    eta : float
        Trust coefficient (0.001).
    """

    def __init__(
        self, params: Any, lr: float, weight_decay: float = 1e-6, momentum: float = 0.9, eta: float = 0.001
    ) -> None:
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum, eta=eta, lars_exclude=False)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        """One update of every parameter with a gradient."""
        loss = None if closure is None else closure()
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                dp = p.grad
                if not g["lars_exclude"]:
                    dp = dp.add(p, alpha=g["weight_decay"])
                    param_norm, update_norm = torch.norm(p), torch.norm(dp)
                    one = torch.ones_like(param_norm)
                    q = torch.where(
                        param_norm > 0.0, torch.where(update_norm > 0, g["eta"] * param_norm / update_norm, one), one
                    )
                    dp = dp.mul(q)
                state = self.state[p]
                if "mu" not in state:
                    state["mu"] = torch.zeros_like(p)
                mu = state["mu"]
                mu.mul_(g["momentum"]).add_(dp)
                p.add_(mu, alpha=-g["lr"])
        return loss


def make_optimizer(
    name: str, modules: Iterable[nn.Module], lr: float, weight_decay: float, fused: bool = True
) -> torch.optim.Optimizer:
    """Build ``"adamw"`` (decoupled decay, fused kernel) or ``"lars"`` over :func:`param_groups`."""
    groups = param_groups(modules, weight_decay)
    if name == "adamw":
        for g in groups:
            g.pop("lars_exclude")
        return torch.optim.AdamW(groups, lr=lr, fused=fused)
    if name == "lars":
        return LARS(groups, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; expected one of {OPTIMIZERS}")


def lr_at(step: int, total: int, warmup: int, lr: float, min_lr_ratio: float) -> float:
    """Linear warm-up over ``warmup`` steps to ``lr``, then cosine decay to ``lr * min_lr_ratio`` at ``total``."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    floor = lr * min_lr_ratio
    return floor + (lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
