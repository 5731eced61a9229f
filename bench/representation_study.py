"""Why the encoder loses to pixel PCA on real colour composites: one training recipe, scored in-process.

The experiment driver behind the "Why the encoder lost to pixel PCA" table of docs/BENCHMARKS.md. Three steps:

``stamps``
    Read every image named in a labels CSV, keep the central ``--fraction`` of the side, resample it to
    ``--size`` px with Pillow's BOX filter, and save the cube (float32 ``(N, 3, S, S)`` in [0, 1], planes
    bluest first), the classes and the 10 morphology statistics of :func:`encoders.morphology.measure_batch`.
``train``
    Train VICReg on the saved cube with a JSON of :class:`~encoders.training.config.TrainConfig` overrides (identity
    normalisation), embed every stamp with the backbone and print precision@10 of ``--rare`` and
    ``--control`` (cosine; also standardised-Euclidean and PCA-whitened), and of the embedding beside the
    morphology columns at ``--weights`` (each part scaled to mean squared norm 1).
``explain``
    What an embedding encodes: the cross-validated R² of a ridge regression from it to each morphology
    statistic, flux, colour and size, and which of them its first principal components follow.

Usage (the runs of the table)::

    python bench/representation_study.py stamps --images ../shared/data/real/gz1_sdss \\
        --labels ../shared/data/real/gz1_sdss/labels.csv --out /tmp/rs
    python bench/representation_study.py train --out /tmp/rs --run /tmp/rs/C --config \\
        '{"epochs": 10, "max_angle": 180, "scale_range": [0.75, 1.33], "crop_jitter": 3, "blur_sigma": [0, 1.0],
          "noise_sigma": [0, 0.01], "max_shift": 0, "brightness": 0.5, "colour": 0.3, "grey_prob": 0.2}'
    python bench/representation_study.py explain --out /tmp/rs --embedding /tmp/rs/C/Z.npy
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def precision_at_10(features: np.ndarray, classes: np.ndarray, target: str, metric: str = "euclidean") -> float:
    """Mean fraction of ``target`` among the 10 nearest neighbours (self excluded) of each ``target`` object."""
    from sklearn.neighbors import NearestNeighbors

    y = classes == target
    idx = NearestNeighbors(n_neighbors=11, metric=metric).fit(features).kneighbors(features[y], return_distance=False)
    return float(y[idx[:, 1:]].mean())


def standardise(x: np.ndarray) -> np.ndarray:
    """Columns to mean 0, std 1; NaN first replaced by the column median."""
    x = np.where(np.isnan(x), np.nanmedian(x, axis=0), x.astype(float))
    return (x - x.mean(0)) / (x.std(0) + 1e-8)


def _load(job: tuple[str, float, int]) -> np.ndarray:
    from PIL import Image

    path, fraction, size = job
    with Image.open(path) as image:
        image = image.convert("RGB")
        w, h = image.size
        side = fraction * min(w, h)
        left, top = (w - side) / 2, (h - side) / 2
        image = image.resize((size, size), Image.Resampling.BOX, box=(left, top, left + side, top + side))
    return np.moveaxis(np.asarray(image, dtype=np.float32)[..., ::-1] / 255.0, -1, 0)


def stamps(args: argparse.Namespace) -> None:
    from concurrent.futures import ProcessPoolExecutor

    from encoders.morphology import measure_batch

    with open(args.labels, newline="") as fh:
        rows = list(csv.DictReader(fh))
    jobs = [(str(args.images / r[args.file_column]), args.fraction, args.size) for r in rows]
    with ProcessPoolExecutor(2) as pool:
        cube = np.stack(list(pool.map(_load, jobs, chunksize=64)))
    args.out.mkdir(parents=True, exist_ok=True)
    np.save(args.out / "stamps.npy", cube)
    np.save(args.out / "classes.npy", np.array([r[args.label_column] for r in rows]))
    np.save(args.out / "morphology.npy", measure_batch(cube)[0])
    print(f"{len(cube)} stamps {cube.shape[1:]} -> {args.out}")


def _embed(model, cube: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        parts = [
            torch.nn.functional.normalize(model(torch.from_numpy(cube[i : i + 512])), dim=1).numpy()
            for i in range(0, len(cube), 512)
        ]
    return np.concatenate(parts)


def train(args: argparse.Namespace) -> None:
    import torch
    from sklearn.decomposition import PCA

    from encoders.training.checkpoint import load_backbone
    from encoders.training.config import TrainConfig
    from encoders.training.train import train as vicreg

    cube, classes = np.load(args.out / "stamps.npy"), np.load(args.out / "classes.npy")
    morph = standardise(np.load(args.out / "morphology.npy")) / np.sqrt(10)
    torch.set_num_threads(2)
    config = TrainConfig(
        bands=("g", "r", "z"), stamp_size=cube.shape[-1], normalisation="identity", diag_samples=0,
        **json.loads(args.config),
    )  # fmt: skip
    start = time.time()
    vicreg(cube, args.run, config, progress=False)
    model, _ = load_backbone(args.run)
    z = _embed(model, cube)
    np.save(Path(args.run) / "Z.npy", z)
    white = PCA(64, whiten=True, random_state=0).fit_transform(z)
    centred = z - z.mean(0)
    centred /= np.sqrt((centred**2).sum(1).mean())
    print(f"{args.run}: trained in {time.time() - start:.0f} s")
    for target in (args.rare, *args.control):
        print(
            f"  {target}: cosine {precision_at_10(z, classes, target, 'cosine'):.3f}  "
            f"standardised {precision_at_10(standardise(z), classes, target):.3f}  "
            f"whitened {precision_at_10(white, classes, target, 'cosine'):.3f}  "
            + "  ".join(
                f"+morphology x{w}: {precision_at_10(np.concatenate([centred, w * morph], 1), classes, target):.3f}"
                for w in args.weights
            )
        )


def explain(args: argparse.Namespace) -> None:
    from sklearn.decomposition import PCA
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import cross_val_score

    from ssald_index.schema import MORPHOLOGY_FEATURES

    cube = np.load(args.out / "stamps.npy")
    morph = np.load(args.out / "morphology.npy").astype(float)
    morph = np.where(np.isnan(morph), np.nanmedian(morph, 0), morph)
    grey = cube.mean(1)
    n = len(cube)
    sky = np.median(np.concatenate([grey[:, :4].reshape(n, -1), grey[:, -4:].reshape(n, -1)], 1), 1)
    light = np.clip(grey - sky[:, None, None], 0, None)
    total = light.sum((1, 2)) + 1e-6
    yy, xx = np.mgrid[: cube.shape[-2], : cube.shape[-1]]
    r = np.hypot(yy - (cube.shape[-2] - 1) / 2, xx - (cube.shape[-1] - 1) / 2)
    blue_red = cube[:, 0] - cube[:, 2]
    inner, outer = r < 8, (r > 8) & (r < 20)
    size = (light * r**2).sum((1, 2)) / total
    targets = {
        **{name.removeprefix("morph_"): morph[:, j] for j, name in enumerate(MORPHOLOGY_FEATURES)},
        "log_flux": np.log(total),
        "colour_in": (blue_red * inner).sum((1, 2)) / inner.sum(),
        "colour_out": (blue_red * outer).sum((1, 2)) / outer.sum(),
        "log_size": np.log(size + 1e-6),
    }
    for name, z in (("embedding", np.load(args.embedding)), ("pixel PCA", PCA(64, random_state=0).fit_transform(
        cube.reshape(n, -1)))):  # fmt: skip
        r2 = {
            k: cross_val_score(RidgeCV(alphas=[0.1, 1, 10, 100]), z, v, cv=3, scoring="r2").mean()
            for k, v in targets.items()
        }
        print(name, "R2:", " ".join(f"{k} {v:.2f}" for k, v in r2.items()))
        for i, pc in enumerate(PCA(3).fit_transform(z).T):
            corr = {k: abs(np.corrcoef(pc, v)[0, 1]) for k, v in targets.items()}
            best = max(corr, key=corr.get)
            print(f"  PC{i} follows {best} (|r| = {corr[best]:.2f})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="step", required=True)
    s = sub.add_parser("stamps", help="read, fit and measure the stamps once")
    s.add_argument("--images", type=Path, required=True, help="folder the CSV's file names are relative to")
    s.add_argument("--labels", type=Path, required=True)
    s.add_argument("--file-column", default="file")
    s.add_argument("--label-column", default="class_name")
    s.add_argument("--fraction", type=float, default=0.5)
    s.add_argument("--size", type=int, default=64)
    s.add_argument("--out", type=Path, required=True)
    s.set_defaults(func=stamps)
    t = sub.add_parser("train", help="train one recipe and score it")
    t.add_argument("--out", type=Path, required=True, help="folder written by 'stamps'")
    t.add_argument("--run", required=True)
    t.add_argument("--config", default="{}", help="TrainConfig overrides as JSON")
    t.add_argument("--rare", default="merger")
    t.add_argument("--control", nargs="*", default=["edge_on"])
    t.add_argument("--weights", type=float, nargs="*", default=[1.0, 2.0])
    t.set_defaults(func=train)
    e = sub.add_parser("explain", help="what an embedding encodes")
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--embedding", type=Path, required=True, help="Z.npy written by 'train'")
    e.set_defaults(func=explain)
    args = p.parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
