"""Data parallelism for VICReg: join torchrun's process group, gather embeddings with gradients.

Under ``torchrun --nproc_per_node N`` each process embeds its share of a global batch; the
variance and covariance terms need the statistics of the whole batch, so the embeddings are
gathered from every process with gradients flowing back (``FullGatherLayer`` of
``facebookresearch/vicreg``), while the invariance term stays local (its mean over processes,
which DDP's gradient averaging takes, is the global mean).
"""

from __future__ import annotations

import os

import torch

from encoders.training.config import TrainConfig
from encoders.training.vicreg import covariance_loss, invariance_loss, variance_loss

__all__ = ["gather", "init_distributed", "vicreg_terms", "world"]


def init_distributed(config: TrainConfig) -> bool:
    """Join the process group torchrun describes (if any); True when this call created it."""
    dist = torch.distributed
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return False
    if config.device.startswith("cuda"):
        torch.cuda.set_device(torch.device(config.device))
    dist.init_process_group(backend="nccl" if config.device.startswith("cuda") else "gloo")
    return True


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process; ``(0, 1)`` outside a process group."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather(z: torch.Tensor) -> torch.Tensor:
    """Concatenate ``z`` over all processes, with gradients flowing back to each (FullGatherLayer)."""
    if world()[1] == 1:
        return z
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(z), dim=0)


def vicreg_terms(z_a: torch.Tensor, z_b: torch.Tensor, config: TrainConfig) -> tuple[torch.Tensor, ...]:
    """VICReg terms: invariance on the local batch, variance and covariance on the gathered one."""
    inv = invariance_loss(z_a, z_b)
    g_a, g_b = gather(z_a), gather(z_b)
    var = variance_loss(g_a) / 2 + variance_loss(g_b) / 2
    cov = covariance_loss(g_a) + covariance_loss(g_b)
    return config.sim_coeff * inv + config.std_coeff * var + config.cov_coeff * cov, inv, var, cov
