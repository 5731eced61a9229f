"""``ssald train`` and ``ssald export`` subcommands.

:func:`add_parsers` adds them to the top-level dispatcher's subparsers. Only argparse
and pathlib are imported here; torch and the rest load inside the handlers, so
``ssald --help`` and the serving commands stay light.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parsers", "run_export", "run_train"]


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` and ``export`` subcommands.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The object returned by ``ArgumentParser.add_subparsers()``. Each subcommand
        sets ``func`` (``handler(args) -> int``) with ``set_defaults``.
    """
    p = subparsers.add_parser(
        "train",
        help="train the stamp encoder with VICReg",
        description="Train a ResNet stamp encoder with VICReg on DIR/stamps/*.fits. "
        "Resumes automatically from RUN/checkpoint.pt.",
    )
    data = p.add_argument_group("data")
    data.add_argument("--data", type=Path, required=True, help="survey directory holding stamps/*.fits")
    data.add_argument("--run", type=Path, required=True, help="run directory (config, metrics, checkpoint)")
    data.add_argument("--max-stamps", type=int, default=None, help="use only the first M stamps (sorted)")
    opt = p.add_argument_group("optimisation (defaults: encoders.train.TrainConfig)")
    opt.add_argument("--epochs", type=int, default=None, help="total epochs (a resumed run continues to it)")
    opt.add_argument("--batch-size", type=int, default=None, help="stamps per step")
    opt.add_argument("--lr", type=float, default=None, help="peak AdamW learning rate")
    opt.add_argument("--weight-decay", type=float, default=None, help="AdamW weight decay")
    opt.add_argument("--max-steps", type=int, default=None, help="stop after this many steps in total")
    opt.add_argument("--seed", type=int, default=None, help="seed of weights, shuffling and augmentation")
    run = p.add_argument_group("runtime")
    run.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    run.add_argument("--device", default=None, help="auto, cpu or cuda (default auto)")
    run.add_argument("--precision", choices=["auto", "bf16", "fp32"], default=None, help="autocast precision")
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run_train)

    p = subparsers.add_parser(
        "export",
        help="export a trained encoder to ONNX",
        description="Export RUN's backbone (+ L2 normalisation) to ONNX with its preprocessing metadata.",
    )
    p.add_argument("--run", type=Path, required=True, help="run directory written by 'train'")
    p.add_argument("--out", type=Path, required=True, help="output .onnx file")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset version (default 17)")
    p.set_defaults(func=run_export)


def run_train(args: argparse.Namespace) -> int:
    """Handle ``train``: read and normalise stamps, train, print a one-line summary."""
    import json
    import time

    from encoders.normalise import LuptonParams
    from encoders.stamps import StampError, read_stamp
    from encoders.train import METRICS_FILE, TrainConfig, load_stamps, train

    paths = sorted((args.data / "stamps").glob("*.fits"))
    if args.max_stamps is not None:
        paths = paths[: args.max_stamps]
    if len(paths) < 2:
        print(f"error: need at least 2 stamps in {args.data / 'stamps'}/*.fits, found {len(paths)}")
        return 2
    overrides = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "weight_decay": args.weight_decay,
        "max_steps": args.max_steps,
        "seed": args.seed,
        "threads": args.threads,
        "device": args.device,
        "precision": args.precision,
    }
    t0 = time.perf_counter()
    try:
        first = read_stamp(paths[0])
        params = LuptonParams()
        stamps = load_stamps(paths, params, progress=not args.no_progress)
    except StampError as exc:
        print(f"error: {exc}")
        return 2
    t_read = time.perf_counter() - t0
    config = TrainConfig(
        bands=first.bands,
        stamp_size=first.shape[-1],
        lupton=params,
        **{k: v for k, v in overrides.items() if v is not None},
    )
    t0 = time.perf_counter()
    run_dir = train(stamps, args.run, config, progress=not args.no_progress)
    t_train = time.perf_counter() - t0
    lines = (run_dir / METRICS_FILE).read_text().splitlines()
    last = json.loads(lines[-1]) if lines else {}
    print(
        f"trained on {len(stamps)} stamps {'x'.join(map(str, stamps.shape[1:]))} "
        f"(read {t_read:.1f}s, train {t_train:.1f}s): step {last.get('step', 0)}, "
        f"epoch {last.get('epoch', 0) + 1}/{config.epochs}, loss {last.get('loss', float('nan')):.3f}, "
        f"{last.get('stamps_per_s', 0):.0f} stamps/s -> {run_dir}"
    )
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Handle ``export``: write the ONNX model and print its id and contract."""
    from encoders.embedder import OnnxEmbedder
    from encoders.export import export_onnx

    try:
        out = export_onnx(args.run, args.out, opset=args.opset)
    except FileNotFoundError as exc:
        print(f"error: {exc}")
        return 2
    emb = OnnxEmbedder(out, providers=["CPUExecutionProvider"])
    print(
        f"exported {args.run} -> {out}: model_id {emb.model_id}, bands {','.join(emb.bands)}, "
        f"stamp {emb.stamp_size}px, embedding_dim {emb.embedding_dim}"
    )
    return 0
