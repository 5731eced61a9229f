"""Do the label-free quality scores mean something? (issue 3, item 5).

Two studies, each a subcommand:

``synthetic-train`` / ``synthetic-eval``
    Train VICReg on part of a synthetic survey keeping a checkpoint per epoch, then embed
    held-out stamps with every checkpoint (plus the random initialisation) and report the
    Spearman correlation of RankMe and of the 2PCF score with kNN accuracy on the true classes.
``rings``
    On the real DECaLS ring stamps, train on the 170 PNGs (labels unused) and compare the
    ring precision@10 among neighbours of the trained encoder with a random initialisation.

Usage::

    python bench/encoder_quality.py synthetic-train --survey /tmp/eq/survey --run /tmp/eq/run
    python bench/encoder_quality.py synthetic-eval  --survey /tmp/eq/survey --run /tmp/eq/run
    python bench/encoder_quality.py rings --run /tmp/eq/rings
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED_DATA = REPO.parent / "shared" / "data"


def _survey_paths(survey: Path, n: int, seed: int) -> list[Path]:
    if not (survey / "catalogue.fits").exists():
        from ingest.synthetic import simulate

        simulate(survey, n=n, seed=seed)
    return sorted((survey / "stamps").glob("*.fits"), key=lambda p: int(p.stem))


def synthetic_train(args: argparse.Namespace) -> None:
    from encoders.normalise import LuptonParams
    from encoders.stamps import read_stamp
    from encoders.training.train import TrainConfig, load_stamps, train

    paths = _survey_paths(args.survey, args.n, args.seed)[: args.n_train]
    first = read_stamp(paths[0])
    stamps = load_stamps(paths, LuptonParams())
    config = TrainConfig(
        epochs=args.epochs,
        bands=first.bands,
        stamp_size=first.shape[-1],
        keep_checkpoints=True,
        seed=args.seed,
        threads=args.threads,
    )
    t0 = time.perf_counter()
    train(stamps, args.run, config)
    print(f"trained {args.epochs} epochs on {len(stamps)} stamps in {time.perf_counter() - t0:.0f}s -> {args.run}")


def _truth(survey: Path, paths: list[Path]) -> np.ndarray:
    from astropy.table import Table

    cat = Table.read(survey / "catalogue.fits")
    by_objid = dict(zip(np.asarray(cat["objid"]).tolist(), np.asarray(cat["truth_class"]).astype(str)))
    return np.array([by_objid[int(p.stem)] for p in paths])


def synthetic_eval(args: argparse.Namespace) -> None:
    from scipy.stats import spearmanr

    from encoders.normalise import LuptonParams
    from encoders.training.diagnostics import quality_report
    from encoders.training.train import embed_backbone, load_backbone, load_stamps

    paths = _survey_paths(args.survey, args.n, args.seed)[args.eval_from :]
    labels = _truth(args.survey, paths)
    stamps = load_stamps(paths, LuptonParams(), progress=False)
    rows = []
    for ckpt in sorted((args.run / "checkpoints").glob("epoch_*.pt")):
        model, _ = load_backbone(ckpt)
        z = embed_backbone(model, stamps)
        row = {"checkpoint": ckpt.name, **quality_report(z, labels, k=10)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    knn = [r["knn_acc"] for r in rows]
    summary = {"n_checkpoints": len(rows), "n_eval": len(paths)}
    for key in ("rankme", "tpcf", "std_mean", "davies_bouldin"):
        rho, p = spearmanr([r[key] for r in rows], knn)
        summary[f"spearman_{key}_vs_knn"] = {"rho": round(float(rho), 3), "p": float(f"{p:.2g}")}
    print(json.dumps(summary))
    (args.run / "quality_study.json").write_text(json.dumps({"rows": rows, "summary": summary}, indent=1))


def ring_precision(z: np.ndarray, ring: np.ndarray, k: int = 10) -> float:
    """Mean over ring galaxies of the fraction of rings among their ``k`` nearest neighbours (cosine)."""
    unit = z / np.linalg.norm(z, axis=1, keepdims=True)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)
    nearest = np.argsort(-sim, axis=1)[:, :k]
    return float(ring[nearest[ring == 1]].mean())


def rings(args: argparse.Namespace) -> None:
    import csv

    from encoders.stamps import read_stamp
    from encoders.training.train import TrainConfig, embed_backbone, load_backbone, train

    folder = SHARED_DATA / "real" / "decals_rings"
    with open(folder / "labels.csv") as fh:
        rows = list(csv.DictReader(fh))
    cubes = []
    for row in rows:
        cube = read_stamp(folder / row["file"]).data  # (3, 128, 128) g,r,z in [0, 1]
        b, h, w = cube.shape
        f = h // args.size
        cubes.append(cube.reshape(b, args.size, f, args.size, f).mean(axis=(2, 4)))
    stamps = np.stack(cubes).astype(np.float32)
    ring = np.array([int(r["ring"]) for r in rows])
    config = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, bands=("g", "r", "z"), stamp_size=args.size,
        normalisation="identity", max_angle=180.0, scale_range=(0.9, 1.1), max_shift=2, keep_checkpoints=True,
        threads=args.threads, diag_samples=len(stamps), seed=args.seed, warmup_epochs=5,
    )  # fmt: skip
    t0 = time.perf_counter()
    train(stamps, args.run, config, labels=ring)
    print(f"trained {args.epochs} epochs on {len(stamps)} stamps in {time.perf_counter() - t0:.0f}s")
    results = {"n": len(stamps), "rings": int(ring.sum()), "chance": float((ring.sum() - 1) / (len(ring) - 1))}
    for ckpt in sorted((args.run / "checkpoints").glob("epoch_*.pt")):
        model, _ = load_backbone(ckpt)
        results[ckpt.stem] = round(ring_precision(embed_backbone(model, stamps), ring, k=10), 4)
    # Random initialisation: the untrained network of several seeds, to show the spread.
    import torch

    from encoders.training.backbone import ResNetEncoder

    inits = []
    for seed in range(5):
        torch.manual_seed(seed)
        model = ResNetEncoder(3, config.widths, config.blocks, config.stem_stride)
        inits.append(ring_precision(embed_backbone(model, stamps), ring, k=10))
    results["random_init_seeds"] = [round(v, 4) for v in inits]
    print(json.dumps(results))
    (args.run / "ring_precision.json").write_text(json.dumps(results, indent=1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("synthetic-train", help="train with a kept checkpoint per epoch")
    p.add_argument("--survey", type=Path, required=True, help="synthetic survey (simulated here if missing)")
    p.add_argument("--run", type=Path, required=True, help="run directory")
    p.add_argument("--n", type=int, default=5000, help="survey size when simulating")
    p.add_argument("--n-train", type=int, default=2000, help="first N stamps (by objid) train")
    p.add_argument("--epochs", type=int, default=20, help="training epochs (one checkpoint each)")
    p.add_argument("--seed", type=int, default=0, help="survey and training seed")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: the CPU is shared)")
    p.set_defaults(func=synthetic_train)
    p = sub.add_parser("synthetic-eval", help="scores of every kept checkpoint on held-out stamps")
    p.add_argument("--survey", type=Path, required=True, help="synthetic survey")
    p.add_argument("--run", type=Path, required=True, help="run directory of synthetic-train")
    p.add_argument("--n", type=int, default=5000, help="survey size when simulating")
    p.add_argument("--eval-from", type=int, default=3000, help="evaluate on the stamps from this index (by objid)")
    p.add_argument("--seed", type=int, default=0, help="survey seed")
    p.set_defaults(func=synthetic_eval)
    p = sub.add_parser("rings", help="ring precision@10 on the real DECaLS stamps, trained vs random init")
    p.add_argument("--run", type=Path, required=True, help="run directory")
    p.add_argument("--size", type=int, default=64, help="stamp side after 2x2 mean pooling of the 128 px PNGs")
    p.add_argument("--epochs", type=int, default=60, help="training epochs")
    p.add_argument("--batch-size", type=int, default=32, help="stamps per step")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.set_defaults(func=rings)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
