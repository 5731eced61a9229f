"""VICReg training of the stamp encoder: one readable loop, one run directory.

A run directory holds everything about a run (after facebookresearch/vicreg):

* ``config.json``   the resolved :class:`TrainConfig`;
* ``metrics.jsonl`` one JSON object per logging window (``"scope": "window"``) and
  per epoch (``"scope": "epoch"``) with ``epoch`` (0-based index of the epoch being
  trained), ``step`` (optimiser steps so far), the mean ``loss, inv, var, cov`` over
  the window, ``lr``, ``seconds`` (cumulative compute time of the run) and ``stamps_per_s``;
* ``checkpoint.pt`` model, expander and optimizer state, ``epoch`` (completed
  epochs), ``step`` and the config as plain values, written atomically after every
  epoch. :func:`train` resumes from it automatically.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from encoders.augment import GalaxyAugment
from encoders.backbone import ResNetEncoder
from encoders.config import ARCH_FIELDS, TrainConfig
from encoders.stamps import load_stamps
from encoders.vicreg import Expander, vicreg_loss

__all__ = ["TrainConfig", "load_backbone", "load_stamps", "train"]

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_FILE = "checkpoint.pt"


def _check_stamps(stamps: np.ndarray, config: TrainConfig) -> None:
    if not isinstance(stamps, np.ndarray) or stamps.ndim != 4:
        raise ValueError(
            f"train expects normalised stamps as a numpy array (N, B, H, W), got "
            f"{type(stamps).__name__} of shape {getattr(stamps, 'shape', None)}"
        )
    n, b, h, w = stamps.shape
    if b != len(config.bands):
        raise ValueError(f"stamps have {b} bands but config.bands is {config.bands} ({len(config.bands)})")
    if (h, w) != (config.stamp_size, config.stamp_size):
        raise ValueError(f"stamps are {h}x{w} pixels but config.stamp_size is {config.stamp_size}")
    if n < 2:
        raise ValueError(f"train needs at least 2 stamps (VICReg uses batch statistics), got {n}")


def _build(config: TrainConfig) -> tuple[ResNetEncoder, Expander]:
    model = ResNetEncoder(len(config.bands), config.widths, config.blocks, config.stem_stride)
    return model, Expander(model.out_dim, config.expander_dims)


def _param_groups(modules: Iterable[nn.Module], weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for module in modules:
        for param in module.parameters():
            (no_decay if param.ndim <= 1 else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _lr_at(step: int, total: int, warmup: int, config: TrainConfig) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to ``lr * min_lr_ratio``."""
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    floor = config.lr * config.min_lr_ratio
    return floor + (config.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def _cpu_has_bf16() -> bool:
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # private helpers may move between torch versions
        return False


def _resolve_runtime(config: TrainConfig) -> TrainConfig:
    """Replace ``"auto"`` device/precision by what this machine will actually use."""
    device = config.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    precision = config.precision
    if precision == "auto":
        precision = "bf16" if device.startswith("cuda") or _cpu_has_bf16() else "fp32"
    return replace(config, device=device, precision=precision)


def _write_config(run_dir: Path, config: TrainConfig) -> None:
    text = json.dumps(config.to_dict(), indent=2) + "\n"
    _atomic_write(run_dir / CONFIG_FILE, lambda p: p.write_text(text))


class _BatchDataset(torch.utils.data.Dataset):
    """Indexable by a list of indices, so one fetch returns a whole batch."""

    def __init__(self, stamps: np.ndarray) -> None:
        self.stamps = stamps

    def __len__(self) -> int:
        return len(self.stamps)

    def __getitem__(self, idx: list[int]) -> torch.Tensor:
        return torch.from_numpy(self.stamps[np.sort(np.asarray(idx))])


def _resume(
    path: Path, config: TrainConfig, model: nn.Module, expander: nn.Module, opt: torch.optim.Optimizer
) -> tuple[int, int, float]:
    ckpt = torch.load(path, map_location=next(model.parameters()).device, weights_only=True)
    saved = TrainConfig.from_dict(ckpt["config"])
    for name in ARCH_FIELDS:
        if getattr(saved, name) != getattr(config, name):
            raise ValueError(
                f"cannot resume {path}: it was trained with {name}={getattr(saved, name)!r} "
                f"but the config asks for {getattr(config, name)!r}; use a new run directory"
            )
    model.load_state_dict(ckpt["model"])
    expander.load_state_dict(ckpt["expander"])
    opt.load_state_dict(ckpt["optimizer"])
    return int(ckpt["epoch"]), int(ckpt["step"]), float(ckpt.get("seconds", 0.0))


def train(stamps: np.ndarray, run_dir: str | Path, config: TrainConfig | None = None, progress: bool = True) -> Path:
    """Train a ResNet encoder with VICReg on normalised stamps.

    Parameters
    ----------
    stamps : numpy.ndarray
        float32 ``(N, n_bands, stamp_size, stamp_size)`` stamps already normalised
        with ``config.lupton`` (see :func:`load_stamps`).
    run_dir : str or Path
        Run directory (created if needed). If it holds ``checkpoint.pt`` training
        resumes from it and continues to ``config.epochs``.
    config : TrainConfig, optional
        The run's configuration (default ``TrainConfig()``).
    progress : bool
        Show a tqdm progress bar with the loss.

    Returns
    -------
    Path
        ``run_dir``.

    Raises
    ------
    ValueError
        If ``stamps`` disagree with ``config`` or the checkpoint's architecture
        differs from ``config``.
    FloatingPointError
        If the loss becomes non-finite.

    Notes
    -----
    Each step draws two augmented views (:class:`~encoders.augment.GalaxyAugment`)
    of a batch, embeds each with backbone + expander and minimises
    :func:`~encoders.vicreg.vicreg_loss` with AdamW, linear warm-up, cosine decay and
    gradient-norm clipping. Shuffling and augmentation of epoch ``e`` are seeded by
    ``(seed, e)``, so a resumed run sees the same data order as an uninterrupted one.
    A run stopped mid-epoch by ``max_steps`` saves the step count but replays that
    epoch from its start when resumed.
    """
    config = TrainConfig() if config is None else config
    _check_stamps(stamps, config)
    config = _resolve_runtime(config)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads or len(os.sched_getaffinity(0)))
    try:
        _train(np.ascontiguousarray(stamps, dtype=np.float32), run_dir, config, progress)
    finally:
        torch.set_num_threads(previous_threads)
    return run_dir


def _train(stamps: np.ndarray, run_dir: Path, config: TrainConfig, progress: bool) -> None:
    """The training loop of :func:`train` (arguments already validated)."""
    from tqdm.auto import tqdm

    device = torch.device(config.device)
    # channels-last lets oneDNN (CPU) and cuDNN pick their fastest convolution kernels.
    memory_format = torch.channels_last

    torch.manual_seed(config.seed)
    model, expander = _build(config)
    model.to(device, memory_format=memory_format)
    expander.to(device)
    # fused=True: one kernel for all parameters instead of a Python loop over them.
    opt = torch.optim.AdamW(_param_groups((model, expander), config.weight_decay), lr=config.lr, fused=True)
    ckpt_path = run_dir / CHECKPOINT_FILE
    epoch, step, seconds = 0, 0, 0.0
    if ckpt_path.exists():
        epoch, step, seconds = _resume(ckpt_path, config, model, expander, opt)
    _write_config(run_dir, config)

    n = len(stamps)
    batch = min(config.batch_size, n)
    steps_per_epoch = n // batch
    total = config.epochs * steps_per_epoch
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    warmup = max(1, round(config.warmup_epochs * steps_per_epoch))
    augment = GalaxyAugment(max_shift=config.max_shift, noise_sigma=config.noise_sigma)
    dataset = _BatchDataset(stamps)
    params = [p for m in (model, expander) for p in m.parameters()]
    model.train()
    expander.train()

    bar = tqdm(total=total, initial=min(step, total), desc="train", unit="step", disable=not progress)
    with open(run_dir / METRICS_FILE, "a") as metrics:

        def log(scope: str, sums: np.ndarray, count: int, t_start: float, lr: float) -> None:
            mean = sums / max(count, 1)
            elapsed = time.perf_counter() - t_start
            record = {
                "scope": scope, "epoch": epoch, "step": step, "loss": float(mean[0]),
                "inv": float(mean[1]), "var": float(mean[2]), "cov": float(mean[3]), "lr": lr,
                "seconds": round(seconds, 3), "stamps_per_s": round(count * batch / max(elapsed, 1e-9), 2),
            }  # fmt: skip
            metrics.write(json.dumps(record) + "\n")
            metrics.flush()

        while epoch < config.epochs and step < total:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed * 100_003 + epoch))
            sampler = torch.utils.data.BatchSampler(order.tolist(), batch, drop_last=True)
            loader = torch.utils.data.DataLoader(
                dataset, sampler=sampler, batch_size=None, num_workers=config.num_workers
            )
            gen = torch.Generator().manual_seed(config.seed * 100_003 + epoch + 1)
            epoch_sums, window_sums = np.zeros(4), np.zeros(4)
            epoch_count = window_count = 0
            epoch_t0 = window_t0 = time.perf_counter()
            lr = config.lr
            for x in loader:
                if step >= total:
                    break
                t0 = time.perf_counter()
                lr = _lr_at(step, total, warmup, config)
                for group in opt.param_groups:
                    group["lr"] = lr
                view_a = augment(x, gen).to(device, memory_format=memory_format)
                view_b = augment(x, gen).to(device, memory_format=memory_format)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16"):
                    z_a, z_b = expander(model(view_a)), expander(model(view_b))
                loss, inv, var, cov = vicreg_loss(
                    z_a.float(), z_b.float(), config.sim_coeff, config.std_coeff, config.cov_coeff
                )
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"VICReg loss is {loss.item()} at step {step} of run {run_dir}")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip > 0:
                    nn.utils.clip_grad_norm_(params, config.grad_clip)
                opt.step()
                step += 1
                seconds += time.perf_counter() - t0
                values = np.array([loss.item(), inv.item(), var.item(), cov.item()])
                epoch_sums += values
                window_sums += values
                epoch_count += 1
                window_count += 1
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{values[0]:.3f}", lr=f"{lr:.2e}")
                if window_count == config.log_every:
                    log("window", window_sums, window_count, window_t0, lr)
                    window_sums[:] = 0
                    window_count = 0
                    window_t0 = time.perf_counter()
            log("epoch", epoch_sums, epoch_count, epoch_t0, lr)
            if epoch_count == steps_per_epoch:
                epoch += 1
            _save_checkpoint(ckpt_path, model, expander, opt, epoch, step, seconds, config)
    bar.close()


def _save_checkpoint(
    path: Path,
    model: nn.Module,
    expander: nn.Module,
    opt: torch.optim.Optimizer,
    epoch: int,
    step: int,
    seconds: float,
    config: TrainConfig,
) -> None:
    state = {
        "model": model.state_dict(),
        "expander": expander.state_dict(),
        "optimizer": opt.state_dict(),
        "epoch": epoch,
        "step": step,
        "seconds": seconds,
        "config": config.to_dict(),
    }
    _atomic_write(path, lambda p: torch.save(state, p))


def load_backbone(run_dir: str | Path) -> tuple[ResNetEncoder, TrainConfig]:
    """Load the trained backbone of a run, in eval mode, with its config.

    Parameters
    ----------
    run_dir : str or Path
        A run directory written by :func:`train`.

    Returns
    -------
    (ResNetEncoder, TrainConfig)

    Raises
    ------
    FileNotFoundError
        If ``run_dir`` holds no ``checkpoint.pt``.
    """
    path = Path(run_dir) / CHECKPOINT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {CHECKPOINT_FILE} in run directory {run_dir}: train it first")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    config = TrainConfig.from_dict(ckpt["config"])
    model, _ = _build(config)
    model.load_state_dict(ckpt["model"])
    return model.eval(), config
