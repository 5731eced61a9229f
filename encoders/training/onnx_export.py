"""Export a trained backbone to ONNX with its preprocessing contract in the metadata.

The exported graph is ``stamps [N, n_bands, H, W] -> embedding [N, D]``: the backbone
followed by L2 normalisation, dynamic in ``N``. ``metadata_props`` carry what a
consumer needs to feed it (``docs/CONTRACTS.md``): ``bands``, ``stamp_size``,
``lupton_q``, ``lupton_stretch``, ``lupton_minimum``, ``embedding_dim``, ``model_id``,
plus ``normalisation``, ``fit`` and ``fit_fraction`` (how images are brought to ``stamp_size``:
:class:`encoders.fit.Fit`), ``precision``, ``training_run`` and ``training_config``.
Exports are fp32 or fp16; an fp16 model keeps float32 input and output (casts inside the
graph), so consumers feed both the same way.

Views: the embedding can concatenate the backbone's features of several views of each stamp
(metadata ``views``). ``full`` is the stamp; ``centre`` is its central half enlarged 2x
(bilinear), so the network sees the nuclear region at twice the resolution its stride-2 stem
leaves: two nuclei 0.5"-3" apart (1-8 SDSS pixels) become 3-15 pixels, which helps close pairs
(docs/BENCHMARKS.md has the comparison). Each view's features are
L2-normalised, concatenated and divided by sqrt(number of views), so the result has unit norm
and its cosine similarity is the mean of the views' similarities. Every view costs one forward
pass.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import onnx
import torch
import torch.nn.functional as F
from torch import nn

from encoders.training.augment import centre_view
from encoders.training.train import load_backbone

__all__ = ["INPUT_NAME", "OUTPUT_NAME", "PRECISIONS", "VIEWS", "EmbeddingModel", "export_onnx", "parse_views"]

PRECISIONS = ("fp32", "fp16")
VIEWS = ("full", "centre")

INPUT_NAME = "stamps"
OUTPUT_NAME = "embedding"


def parse_views(text: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Validate a view list (``"full,centre"`` or a sequence): known names, no repeats, at least one."""
    views = tuple(v.strip() for v in text.split(",")) if isinstance(text, str) else tuple(text)
    unknown = [v for v in views if v not in VIEWS]
    if not views or unknown or len(set(views)) != len(views):
        raise ValueError(f"views must be distinct names from {', '.join(VIEWS)}, got {','.join(views) or 'none'}")
    return views


class EmbeddingModel(nn.Module):
    """Backbone over one or more views, followed by L2 normalisation: the graph that is exported.

    Parameters
    ----------
    backbone : torch.nn.Module
        Maps ``(N, B, H, W)`` to ``(N, D)`` features.
    dtype : torch.dtype
        Weights and arithmetic of the backbone.
    views : tuple of str
        Names from :data:`VIEWS`; the output has ``D * len(views)`` columns (see the module docstring).
    """

    def __init__(
        self, backbone: nn.Module, dtype: torch.dtype = torch.float32, views: tuple[str, ...] = ("full",)
    ) -> None:
        super().__init__()
        self.backbone = backbone.to(dtype)
        self.dtype = dtype
        self.views = parse_views(views)

    def forward(self, stamps: torch.Tensor) -> torch.Tensor:
        """Return unit-norm float32 ``(N, D * len(views))`` embeddings of float32 stamps."""
        parts = []
        for view in self.views:
            x = stamps if view == "full" else centre_view(stamps)
            # the norm in fp32: no fp16 overflow
            parts.append(F.normalize(self.backbone(x.to(self.dtype)).float(), dim=1))
        if len(parts) == 1:
            return parts[0]
        return torch.cat(parts, dim=1) / float(len(parts)) ** 0.5


def export_onnx(
    run_dir: str | Path,
    out_path: str | Path,
    opset: int = 17,
    precision: str = "fp32",
    views: str | tuple[str, ...] = ("full",),
) -> Path:
    """Export the backbone of a training run to an ONNX file.

    Parameters
    ----------
    run_dir : str or Path
        Run directory written by :func:`encoders.training.train.train`.
    out_path : str or Path
        Destination ``.onnx`` file (parent directories are created; written atomically).
    opset : int
        ONNX opset version.
    precision : str
        ``"fp32"`` or ``"fp16"`` weights and arithmetic (fp16: half the size, faster on GPUs
        with tensor cores; input and output stay float32).
    views : str or tuple of str
        Views whose features are concatenated (``"full"``, or ``"full,centre"``; see the module docstring).

    Returns
    -------
    Path
        ``out_path``.

    Notes
    -----
    ``model_id`` is the first 16 hex digits of the SHA-256 of the serialised graph
    and weights (before the metadata is attached), so the same weights always get
    the same id and any change of weights gets a new one. Uses the TorchScript
    exporter (``dynamo=False``), which needs no ``onnxscript``.
    """
    run_dir, out_path = Path(run_dir), Path(out_path)
    if precision not in PRECISIONS:
        raise ValueError(f"export_onnx precision must be one of {PRECISIONS}, got {precision!r}")
    views = parse_views(views)
    backbone, config = load_backbone(run_dir)
    model = EmbeddingModel(backbone, torch.float16 if precision == "fp16" else torch.float32, views).eval()
    size = config.stamp_size
    example = torch.zeros(2, len(config.bands), size, size)

    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp-{os.getpid()}")
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter is deprecated upstream; it is the one that works offline.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
            torch.onnx.export(
                model,
                (example,),
                str(tmp),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "N"}, OUTPUT_NAME: {0: "N"}},
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
        proto = onnx.load(str(tmp))
        del proto.metadata_props[:]
        model_id = hashlib.sha256(proto.SerializeToString(deterministic=True)).hexdigest()[:16]
        metadata = {
            "bands": ",".join(config.bands),
            "stamp_size": str(size),
            **config.lupton.to_metadata(),
            "embedding_dim": str(backbone.out_dim * len(views)),
            "views": ",".join(views),
            "normalisation": config.normalisation,
            **config.fitting.to_metadata(),
            "precision": precision,
            "model_id": model_id,
            "training_run": str(run_dir.resolve()),
            "training_config": json.dumps(config.to_dict(), sort_keys=True),
        }
        onnx.helper.set_model_props(proto, metadata)
        proto.doc_string = (
            f"SSALD stamp encoder {model_id}: {INPUT_NAME} [N,B,H,W] -> {OUTPUT_NAME} [N,D], L2-normalised"
        )
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return out_path
