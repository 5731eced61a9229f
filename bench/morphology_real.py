"""Morphology of real stamps: cost per stamp and how well each statistic singles out one class.

Reads each image named in a labels CSV (paths relative to the folder), keeps its central ``--fraction``,
resamples it to ``--size`` pixels with Pillow's BOX filter, scales RGB to [0, 1] and measures it with
:func:`encoders.morphology.measure` (bands summed, as ingest does). Reports seconds per stamp, the ROC AUC of
each statistic for the class, and precision@k: the fraction of the class among the k nearest neighbours
(Euclidean on standardised features, NaN imputed with column medians) of each member of the class, for the
whole vector and for (asymmetry, Gini, M20).

Example::

    python bench/morphology_real.py ../shared/data/real/gz1_sdss ../shared/data/real/gz1_sdss/labels.csv \\
        --label-column is_merger --positive 1
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from encoders.morphology import measure
from ssald_index.schema import MORPHOLOGY_FEATURES

CLASSICAL = ("morph_asymmetry", "morph_gini", "morph_m20")


def load(path: Path, fraction: float, size: int) -> np.ndarray:
    """The central ``fraction`` of an image, BOX-resampled to ``size`` x ``size``, as float ``(3, size, size)``."""
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert("RGB")
        w, h = img.size
        side = fraction * min(w, h)
        box = ((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2)
        img = img.resize((size, size), Image.BOX, box=box)
        return np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0


def standardised(x: np.ndarray) -> np.ndarray:
    """Columns imputed with their medians (NaN) and scaled to zero mean, unit variance."""
    x = np.where(np.isnan(x), np.nanmedian(x, axis=0), x)
    std = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)


def precision_at_k(x: np.ndarray, positive: np.ndarray, k: int = 10) -> float:
    """Mean fraction of positives among the ``k`` nearest neighbours (self excluded) of each positive."""
    queries = x[positive]
    d = ((queries[:, None, :] - x[None, :, :]) ** 2).sum(axis=2)
    d[np.arange(len(queries)), np.flatnonzero(positive)] = np.inf
    nearest = np.argpartition(d, k, axis=1)[:, :k]
    return float(positive[nearest].mean())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path, help="folder the CSV's file paths are relative to")
    p.add_argument("labels", type=Path, help="CSV with a file column and a label column")
    p.add_argument("--file-column", default="file")
    p.add_argument("--label-column", default="is_merger")
    p.add_argument("--positive", default="1", help="label value of the class (default 1)")
    p.add_argument("--fraction", type=float, default=0.5, help="central fraction of each side kept (default 0.5)")
    p.add_argument("--size", type=int, default=64, help="stamp side after resampling (default 64)")
    p.add_argument("--limit", type=int, default=None, help="first N rows only")
    p.add_argument("--k", type=int, default=10, help="neighbours for precision@k (default 10)")
    p.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    args = p.parse_args(argv)

    with open(args.labels, newline="") as fh:
        rows = list(csv.DictReader(fh))[: args.limit]
    positive = np.array([r[args.label_column] == args.positive for r in rows])
    stamps = [load(args.folder / r[args.file_column], args.fraction, args.size) for r in rows]
    measure(stamps[0])  # imports and caches outside the timing
    values = np.empty((len(stamps), len(MORPHOLOGY_FEATURES)), np.float32)
    flags = np.empty(len(stamps), np.int32)
    start = time.process_time()
    wall = time.perf_counter()
    for i, stamp in enumerate(stamps):
        values[i], flags[i] = measure(stamp)
    cpu, wall = time.process_time() - start, time.perf_counter() - wall

    from sklearn.metrics import roc_auc_score

    auc = {}
    for j, name in enumerate(MORPHOLOGY_FEATURES):
        ok = np.isfinite(values[:, j])
        auc[name] = float(roc_auc_score(positive[ok], values[ok, j]))
    classical = [MORPHOLOGY_FEATURES.index(c) for c in CLASSICAL]
    report = {
        "n": len(rows),
        "n_positive": int(positive.sum()),
        "cpu_s_per_stamp": cpu / len(rows),
        "wall_s_per_stamp": wall / len(rows),
        "flagged": {str(f): int((flags == f).sum()) for f in np.unique(flags)},
        "roc_auc": auc,
        f"precision_at_{args.k}_all": precision_at_k(standardised(values), positive, args.k),
        f"precision_at_{args.k}_asym_gini_m20": precision_at_k(standardised(values[:, classical]), positive, args.k),
        "prevalence": float(positive.mean()),
    }
    n, n_pos = report["n"], report["n_positive"]
    print(f"{n} stamps, {n_pos} {args.label_column}={args.positive}; flags {report['flagged']}")
    print(f"{report['cpu_s_per_stamp'] * 1e3:.1f} ms CPU per stamp ({report['wall_s_per_stamp'] * 1e3:.1f} ms wall)")
    print("| statistic | ROC AUC |\n|---|---|")
    for name, value in auc.items():
        print(f"| {name.removeprefix('morph_')} | {value:.3f} |")
    print(
        f"precision@{args.k}: whole vector {report[f'precision_at_{args.k}_all']:.3f}, "
        f"(asymmetry, gini, m20) {report[f'precision_at_{args.k}_asym_gini_m20']:.3f}, "
        f"prevalence {report['prevalence']:.3f}"
    )
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
