"""VICReg training of the stamp encoder: one readable loop, one run directory.

A run directory holds everything about a run (after facebookresearch/vicreg):

* ``config.json``   the resolved :class:`TrainConfig`;
* ``metrics.jsonl`` one JSON object per logging window (``"scope": "window"``) and
  per epoch (``"scope": "epoch"``) with ``epoch`` (0-based index of the epoch being
  trained), ``step`` (optimiser steps so far), the mean ``loss, inv, var, cov`` over
  the window, ``lr``, ``seconds`` (cumulative compute time of the run) and ``stamps_per_s``;
  epoch lines (and one ``"scope": "init"`` line before the first step) add the
  diagnostics of :func:`encoders.training.diagnostics.quality_report` of the backbone's
  L2-normalised output on a fixed subset of the stamps (``std_mean``, ``rankme``,
  ``tpcf`` ... and, when labels are given, ``knn_acc`` and ``davies_bouldin``);
* ``checkpoint.pt`` model, expander and optimizer state, ``epoch`` (completed
  epochs), ``step`` and the config as plain values, written atomically after every
  epoch (and ``checkpoints/epoch_XXX.pt`` copies with ``keep_checkpoints``).
  :func:`train` resumes from it automatically; everything loads with ``weights_only=True``.

Under ``torchrun --nproc_per_node N`` (``WORLD_SIZE`` > 1) :func:`train` runs data-parallel
(DDP; NCCL on GPUs, gloo on CPU): each process takes ``batch_size / N`` stamps of every
global batch, and the variance and covariance terms see the embeddings of all processes,
gathered with gradients as in VICReg's reference code. Rank 0 writes the run directory.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from encoders.stamps import load_stamps
from encoders.training.augment import GalaxyAugment
from encoders.training.checkpoint import CHECKPOINT_FILE, atomic_write, build, load_backbone, resume, save_checkpoint
from encoders.training.config import TrainConfig
from encoders.training.data import ArraySource, StampSource, TwoViewBatches, epoch_keys
from encoders.training.distributed import init_distributed, vicreg_terms
from encoders.training.distributed import world as world_info
from encoders.training.optim import lr_at, make_optimizer

__all__ = ["CHECKPOINT_FILE", "TrainConfig", "embed_backbone", "load_backbone", "load_stamps", "train"]

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"


def _check_source(source: StampSource, config: TrainConfig) -> None:
    b, h, w = source.shape
    if b != len(config.bands):
        raise ValueError(f"stamps have {b} bands but config.bands is {config.bands} ({len(config.bands)})")
    if (h, w) != (config.stamp_size, config.stamp_size):
        raise ValueError(f"stamps are {h}x{w} pixels but config.stamp_size is {config.stamp_size}")
    if len(source) < 2:
        raise ValueError(f"train needs at least 2 stamps (VICReg uses batch statistics), got {len(source)}")


def _as_source(stamps: np.ndarray | StampSource) -> StampSource:
    if isinstance(stamps, np.ndarray):
        if stamps.ndim != 4:
            raise ValueError(
                f"train expects normalised stamps as a numpy array (N, B, H, W) or a stamp source, "
                f"got an array of shape {stamps.shape}"
            )
        return ArraySource(np.ascontiguousarray(stamps, dtype=np.float32))
    if not all(hasattr(stamps, a) for a in ("get", "shape", "__len__")):
        raise ValueError(
            f"train expects normalised stamps as a numpy array (N, B, H, W) or a stamp source, "
            f"got {type(stamps).__name__} of shape {getattr(stamps, 'shape', None)}"
        )
    return stamps


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
    if device == "cuda" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    precision = config.precision
    if precision == "auto":
        precision = "bf16" if device.startswith("cuda") or _cpu_has_bf16() else "fp32"
    if precision == "fp16" and not device.startswith("cuda"):
        raise ValueError(f"TrainConfig.precision='fp16' needs a CUDA device, got device {device!r}")
    return replace(config, device=device, precision=precision)


def _write_config(run_dir: Path, config: TrainConfig) -> None:
    text = json.dumps(config.to_dict(), indent=2) + "\n"
    atomic_write(run_dir / CONFIG_FILE, lambda p: p.write_text(text))


@torch.no_grad()
def embed_backbone(
    model: nn.Module, stamps: np.ndarray | StampSource, batch_size: int = 256, device: str | torch.device = "cpu"
) -> np.ndarray:
    """L2-normalised backbone features of normalised stamps (the served representation), eval mode.

    Parameters
    ----------
    model : torch.nn.Module
        A backbone (e.g. from :func:`load_backbone`); its train/eval mode is restored afterwards.
    stamps : numpy.ndarray or StampSource
        ``(N, B, H, W)`` normalised stamps, or a source of them.
    batch_size : int
        Stamps per forward pass.
    device : str or torch.device
        Where to run.

    Returns
    -------
    numpy.ndarray
        float32 ``(N, D)`` with rows of unit norm.
    """
    source = _as_source(stamps)
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(source), batch_size):
        x = torch.from_numpy(source.get(list(range(start, min(start + batch_size, len(source))))))
        out.append(nn.functional.normalize(model(x.to(device)).float(), dim=1).cpu().numpy())
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, getattr(model, "out_dim", 0)), np.float32)


def train(
    stamps: np.ndarray | StampSource,
    run_dir: str | Path,
    config: TrainConfig | None = None,
    progress: bool = True,
    labels: Sequence[Any] | None = None,
) -> Path:
    """Train a ResNet encoder with VICReg on normalised stamps.

    Parameters
    ----------
    stamps : numpy.ndarray or StampSource
        float32 ``(N, n_bands, stamp_size, stamp_size)`` stamps already normalised
        with ``config.lupton`` (see :func:`load_stamps`), or a
        :class:`~encoders.training.data.StampSource` that reads them on demand (e.g.
        :class:`~encoders.training.data.FileSource`, for data larger than RAM).
    run_dir : str or Path
        Run directory (created if needed). If it holds ``checkpoint.pt`` training
        resumes from it and continues to ``config.epochs``.
    config : TrainConfig, optional
        The run's configuration (default ``TrainConfig()``).
    progress : bool
        Show a tqdm progress bar with the loss.
    labels : sequence, optional
        One class label per stamp (never used for training): adds kNN accuracy and the
        Davies-Bouldin index to the per-epoch diagnostics.

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
    Each step draws two augmented views (:class:`~encoders.training.augment.GalaxyAugment`, in the
    DataLoader's ``num_workers`` processes) of a batch, embeds each with backbone + expander
    and minimises the VICReg loss (:mod:`encoders.training.vicreg`) with AdamW or LARS, linear
    warm-up, cosine decay and gradient-norm clipping. Shuffling and augmentation of batch
    ``b`` of epoch ``e`` are seeded by ``(seed, e, b)``, so a resumed run sees the same data
    as an uninterrupted one. A run stopped mid-epoch by ``max_steps`` saves the step count
    but replays that epoch from its start when resumed.
    """
    config = TrainConfig() if config is None else config
    source = _as_source(stamps)
    _check_source(source, config)
    if labels is not None and len(labels) != len(source):
        raise ValueError(f"train got {len(labels)} labels for {len(source)} stamps")
    config = _resolve_runtime(config)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads or len(os.sched_getaffinity(0)))
    started = init_distributed(config)
    try:
        _train(source, run_dir, config, progress, None if labels is None else np.asarray(labels))
    finally:
        torch.set_num_threads(previous_threads)
        if started:
            torch.distributed.destroy_process_group()
    return run_dir


class _TwoViews(nn.Module):
    """Backbone + expander applied to each view separately (batch-norm statistics per view, as in the paper)."""

    def __init__(self, backbone: nn.Module, expander: nn.Module) -> None:
        super().__init__()
        self.backbone, self.expander = backbone, expander

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.expander(self.backbone(a)), self.expander(self.backbone(b))


def _diagnostics(model: nn.Module, source: StampSource, labels: np.ndarray | None, config: TrainConfig) -> dict:
    from encoders.training.diagnostics import quality_report

    if config.diag_samples <= 0 or len(source) < 3:
        return {}
    idx = np.unique(np.linspace(0, len(source) - 1, min(config.diag_samples, len(source))).astype(int))
    z = embed_backbone(model, ArraySource(source.get(idx.tolist())), device=config.device)
    report = quality_report(z, None if labels is None else labels[idx], seed=config.seed)
    return {k: v for k, v in report.items() if k not in ("n", "dim")}


def _train(source: StampSource, run_dir: Path, config: TrainConfig, progress: bool, labels: np.ndarray | None) -> None:
    """The training loop of :func:`train` (arguments already validated)."""
    from tqdm.auto import tqdm

    rank, world = world_info()
    main = rank == 0
    device = torch.device(config.device)
    # channels-last lets oneDNN (CPU) and cuDNN pick their fastest convolution kernels.
    memory_format = torch.channels_last

    torch.manual_seed(config.seed)
    model, expander = build(config)
    model.to(device, memory_format=memory_format)
    expander.to(device)
    fused = device.type == "cuda" or world == 1
    opt = make_optimizer(config.optimizer, (model, expander), config.lr, config.weight_decay, fused=fused)
    ckpt_path = run_dir / CHECKPOINT_FILE
    epoch, step, seconds = 0, 0, 0.0
    if ckpt_path.exists():
        epoch, step, seconds = resume(ckpt_path, config, model, expander, opt)
    net: nn.Module = _TwoViews(model, expander)
    if world > 1:
        if device.type == "cuda":
            net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
        net = nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    if main:
        _write_config(run_dir, config)
        if config.keep_checkpoints and step == 0:
            save_checkpoint(run_dir / "checkpoints" / "epoch_000.pt", model, expander, opt, 0, 0, 0.0, config)

    n = len(source)
    batch = min(config.batch_size, n)
    if batch % world:
        raise ValueError(f"TrainConfig.batch_size={batch} must be divisible by the {world} processes")
    steps_per_epoch = n // batch
    total = config.epochs * steps_per_epoch
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    warmup = max(1, round(config.warmup_epochs * steps_per_epoch))
    dataset = TwoViewBatches(source, GalaxyAugment.from_config(config), config.seed, config.centre_prob)
    params = [p for m in (model, expander) for p in m.parameters()]
    scaler = torch.amp.GradScaler("cuda", enabled=config.precision == "fp16")
    amp_dtype = torch.float16 if config.precision == "fp16" else torch.bfloat16
    net.train()

    bar = tqdm(total=total, initial=min(step, total), desc="train", unit="step", disable=not (progress and main))
    metrics = open(run_dir / METRICS_FILE, "a") if main else None  # noqa: SIM115 - closed below

    def log(scope: str, sums: np.ndarray, count: int, t_start: float, lr: float, extra: dict | None = None) -> None:
        if metrics is None:
            return
        mean = sums / max(count, 1)
        elapsed = time.perf_counter() - t_start
        record = {
            "scope": scope, "epoch": epoch, "step": step, "loss": float(mean[0]),
            "inv": float(mean[1]), "var": float(mean[2]), "cov": float(mean[3]), "lr": lr,
            "seconds": round(seconds, 3), "stamps_per_s": round(count * batch / max(elapsed, 1e-9), 2),
            "world": world, **(extra or {}),
        }  # fmt: skip
        metrics.write(json.dumps(record) + "\n")
        metrics.flush()

    try:
        if main and step == 0 and total > 0:
            diag = _diagnostics(model, source, labels, config)
            if diag:
                metrics.write(json.dumps({"scope": "init", "epoch": -1, "step": 0, **diag}) + "\n")
        while epoch < config.epochs and step < total:
            keys = epoch_keys(n, batch, epoch, config.seed, rank, world)
            loader = torch.utils.data.DataLoader(
                dataset, sampler=keys, batch_size=None, num_workers=config.num_workers,
                worker_init_fn=_worker_init if config.num_workers else None,
            )  # fmt: skip
            epoch_sums, window_sums = np.zeros(4), np.zeros(4)
            epoch_count = window_count = 0
            epoch_t0 = window_t0 = time.perf_counter()
            lr = config.lr
            for view_a, view_b in loader:
                if step >= total:
                    break
                t0 = time.perf_counter()
                lr = lr_at(step, total, warmup, config.lr, config.min_lr_ratio)
                for group in opt.param_groups:
                    group["lr"] = lr
                view_a = view_a.to(device, memory_format=memory_format)
                view_b = view_b.to(device, memory_format=memory_format)
                enabled = config.precision in ("bf16", "fp16")
                with torch.autocast(device.type, dtype=amp_dtype, enabled=enabled):
                    z_a, z_b = net(view_a, view_b)
                loss, inv, var, cov = vicreg_terms(z_a.float(), z_b.float(), config)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"VICReg loss is {loss.item()} at step {step} of run {run_dir}")
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if config.grad_clip > 0:
                    scaler.unscale_(opt)
                    nn.utils.clip_grad_norm_(params, config.grad_clip)
                scaler.step(opt)
                scaler.update()
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
            complete = epoch_count == steps_per_epoch
            diag = _diagnostics(model, source, labels, config) if main and complete else {}
            log("epoch", epoch_sums, epoch_count, epoch_t0, lr, diag)
            if complete:
                epoch += 1
            if main:
                save_checkpoint(ckpt_path, model, expander, opt, epoch, step, seconds, config)
                if config.keep_checkpoints and complete:
                    kept = run_dir / "checkpoints" / f"epoch_{epoch:03d}.pt"
                    save_checkpoint(kept, model, expander, opt, epoch, step, seconds, config)
    finally:
        bar.close()
        if metrics is not None:
            metrics.close()


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # workers augment; the main process keeps the cores for the network
