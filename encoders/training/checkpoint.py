"""Checkpoints of a training run: build, save (atomically), resume and load, all ``weights_only``-safe.

A checkpoint holds plain tensors and values only (``model``, ``expander``, ``optimizer``
state dicts, ``epoch``, ``step``, ``seconds`` and the config as a dict), so
``torch.load(path, weights_only=True)`` reads it without executing code.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from encoders.training.backbone import ResNetEncoder
from encoders.training.config import ARCH_FIELDS, TrainConfig
from encoders.training.vicreg import Expander

__all__ = ["CHECKPOINT_FILE", "atomic_write", "build", "load_backbone", "resume", "save_checkpoint"]

#: The latest checkpoint's file name in a run directory.
CHECKPOINT_FILE = "checkpoint.pt"


def build(config: TrainConfig) -> tuple[ResNetEncoder, Expander]:
    """A fresh backbone and expander of the architecture ``config`` describes."""
    model = ResNetEncoder(len(config.bands), config.widths, config.blocks, config.stem_stride)
    return model, Expander(model.out_dim, config.expander_dims)


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write`` on a temporary file beside ``path``, then rename it into place.

    A run killed mid-write leaves the previous file whole, so a resume never reads half a checkpoint.
    """
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def resume(
    path: Path, config: TrainConfig, model: nn.Module, expander: nn.Module, opt: torch.optim.Optimizer
) -> tuple[int, int, float]:
    """Load the checkpoint at ``path`` into ``model``, ``expander`` and ``opt``.

    Returns
    -------
    (int, int, float)
        The epoch, step and training seconds the checkpoint was saved at.

    Raises
    ------
    ValueError
        If the checkpoint's architecture fields (:data:`~encoders.training.config.ARCH_FIELDS`) differ
        from ``config``'s: its weights would not fit.
    """
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


def save_checkpoint(
    path: Path,
    model: nn.Module,
    expander: nn.Module,
    opt: torch.optim.Optimizer,
    epoch: int,
    step: int,
    seconds: float,
    config: TrainConfig,
) -> None:
    """Write the training state to ``path`` atomically (see :func:`atomic_write`), as plain tensors and values."""
    state = {
        "model": model.state_dict(),
        "expander": expander.state_dict(),
        "optimizer": opt.state_dict(),
        "epoch": epoch,
        "step": step,
        "seconds": seconds,
        "config": config.to_dict(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda p: torch.save(state, p))


def load_backbone(run_dir: str | Path) -> tuple[ResNetEncoder, TrainConfig]:
    """Load the trained backbone of a run, in eval mode, with its config.

    Parameters
    ----------
    run_dir : str or Path
        A run directory written by :func:`encoders.training.train.train`, or one checkpoint file (e.g. a kept
        ``checkpoints/epoch_XXX.pt``).

    Returns
    -------
    (ResNetEncoder, TrainConfig)

    Raises
    ------
    FileNotFoundError
        If ``run_dir`` holds no ``checkpoint.pt``.
    """
    path = Path(run_dir)
    path = path if path.is_file() else path / CHECKPOINT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {CHECKPOINT_FILE} in run directory {run_dir}: train it first")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    config = TrainConfig.from_dict(ckpt["config"])
    model, _ = build(config)
    model.load_state_dict(ckpt["model"])
    return model.eval(), config
