"""LARS against a hand-written update; the warm-up + cosine schedule."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from encoders.training.optim import LARS, lr_at, make_optimizer, param_groups


def test_lars_step_matches_the_reference_update() -> None:
    w = nn.Parameter(torch.tensor([[3.0, -4.0]]))
    b = nn.Parameter(torch.tensor([0.5]))
    w.grad, b.grad = torch.tensor([[0.1, 0.2]]), torch.tensor([0.3])
    opt = LARS([{"params": [w], "lars_exclude": False}, {"params": [b], "lars_exclude": True, "weight_decay": 0}],
               lr=0.5, weight_decay=0.01, momentum=0.9, eta=0.001)  # fmt: skip
    w0, b0 = w.detach().clone(), b.detach().clone()
    opt.step()
    d = torch.tensor([[0.1, 0.2]]) + 0.01 * w0
    q = 0.001 * 5.0 / math.sqrt(float((d**2).sum()))
    torch.testing.assert_close(w.detach(), w0 - 0.5 * q * d)
    torch.testing.assert_close(b.detach(), b0 - 0.5 * torch.tensor([0.3]))  # excluded: plain SGD
    opt.step()  # momentum: mu = 0.9 mu + d'
    assert opt.state[b]["mu"].item() == pytest.approx(0.9 * 0.3 + 0.3)


def test_param_groups_and_factory() -> None:
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    decay, no_decay = param_groups([model], 1e-4)
    assert [p.ndim for p in decay["params"]] == [2] and len(no_decay["params"]) == 3
    assert isinstance(make_optimizer("lars", [model], 0.1, 1e-6), LARS)
    assert isinstance(make_optimizer("adamw", [model], 0.1, 1e-4, fused=False), torch.optim.AdamW)
    with pytest.raises(ValueError, match="unknown optimizer"):
        make_optimizer("sgd", [model], 0.1, 0.0)


def test_warmup_then_cosine() -> None:
    assert lr_at(0, 100, 10, 1.0, 0.01) == pytest.approx(0.1)
    assert lr_at(9, 100, 10, 1.0, 0.01) == pytest.approx(1.0)
    assert lr_at(55, 100, 10, 1.0, 0.01) == pytest.approx(0.01 + 0.99 * 0.5)
    assert lr_at(100, 100, 10, 1.0, 0.01) == pytest.approx(0.01)
