"""``ssald export``: a trained encoder to ONNX with its preprocessing contract; the work is in
:mod:`encoders.training.onnx_export`."""

from __future__ import annotations

import argparse
from pathlib import Path

from clients.cli.args import add_out

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "run_export"]

HELP = "export a trained encoder to ONNX"
DESCRIPTION = "Export RUN's backbone (+ L2 normalisation) to ONNX with its preprocessing metadata."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``ssald export``; it runs :func:`run_export`."""
    parser.add_argument("--run", type=Path, required=True, help="run directory written by 'train'")
    add_out(parser, "output .onnx file", required=True)
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset version (default 17)")
    parser.add_argument("--precision", choices=["fp32", "fp16"], default="fp32", help="weights and arithmetic (fp32)")
    parser.add_argument(
        "--views",
        default="full",
        help="views embedded and concatenated: 'full' or 'full,centre' (centre: central half enlarged 2x, "
        "for close pairs of nuclei; one more forward pass) (default full)",
    )
    parser.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    """Handle ``export``: write the ONNX model and print its id and contract."""
    from encoders.embedder import OnnxEmbedder
    from encoders.training.onnx_export import export_onnx

    try:
        out = export_onnx(args.run, args.out, opset=args.opset, precision=args.precision, views=args.views)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}")
        return 2
    emb = OnnxEmbedder(out, providers=["CPUExecutionProvider"])
    print(
        f"exported {args.run} -> {out}: model_id {emb.model_id}, bands {','.join(emb.bands)}, "
        f"stamp {emb.stamp_size}px, embedding_dim {emb.embedding_dim}, {args.precision}, views {args.views}"
    )
    return 0
