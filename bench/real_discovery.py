"""The product on real images: train -> export -> ingest -> serve -> query, beside simple baselines.

One run on one folder of images with a labels CSV prints, on the same stamps:

* precision@10 of the rare class (and of control classes) among the neighbours that ``find_similar``
  returns through the gRPC server, for the trained encoder and for a randomly initialised encoder of the
  same architecture, beside pixel PCA and the stored morphology columns (standardised, Euclidean kNN);
* active-learning recall against labels per strategy and feature set, labels to reach 50% and 90% of the
  rare class, and what random inspection needs;
* precision@10 through ``find_similar`` with a metric learned from 0, 50 and 200 labels (the labels the
  active-learning loop asked for, so the figure is what a user labelling with ``ssald label`` would get);
* the label-free scores (RankMe, 2PCF, per-dimension std) of every kept checkpoint beside its precision@10;
* training time.

Usage (the figures in docs/BENCHMARKS.md)::

    python bench/real_discovery.py --images ../shared/data/real/gz1_sdss \\
        --labels ../shared/data/real/gz1_sdss/labels.csv --label-column class_name --rare merger \\
        --control edge_on --workdir /tmp/rd/gz1 --epochs 20
    python bench/real_discovery.py --images ../shared/data/real/decals_rings \\
        --labels ../shared/data/real/decals_rings/labels.csv --label-column ring --rare 1 \\
        --workdir /tmp/rd/rings --fit-fraction 1.0 --epochs 60

Any folder of PNG/JPEG/FITS images with a CSV naming each file (``--file-column``) and its class works.
Stages whose output exists in ``--workdir`` are reused (delete the folder to start again).
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

K = 10
#: find_similar spaces measured for the trained encoder's table (the default first).
SPACES = ("embedding", "embedding+morphology", "morphology")


def _ssald(argv: list[str]) -> float:
    """Run ``ssald ARGV`` (output shown); its wall time in seconds."""
    print(f"\n== ssald {' '.join(shlex.quote(a) for a in argv)}", flush=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "clients.cli", *argv], check=True, cwd=REPO)
    return time.perf_counter() - start


def read_labels(path: Path, file_column: str, label_column: str) -> dict[str, str]:
    """File name -> class, from the labels CSV."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    missing = [c for c in (file_column, label_column) if rows and c not in rows[0]]
    if missing:
        raise SystemExit(f"{path} has no column {', '.join(missing)} (columns: {', '.join(rows[0])})")
    return {Path(r[file_column]).name: str(r[label_column]).strip() for r in rows}


def precision_at_k(features: np.ndarray, classes: np.ndarray, target: str, metric: str = "euclidean") -> float:
    """Mean fraction of ``target`` objects among the ``K`` nearest neighbours of each ``target`` object."""
    from sklearn.neighbors import NearestNeighbors

    rows = np.flatnonzero(classes == target)
    nn = NearestNeighbors(n_neighbors=K + 1, metric=metric).fit(features)
    idx = nn.kneighbors(features[rows], return_distance=False)
    hits = [np.mean(classes[[j for j in row if j != q][:K]] == target) for q, row in zip(rows, idx)]
    return float(np.mean(hits))


class Served:
    """``ssald serve`` over a table, as a context manager yielding a connected client."""

    def __init__(self, db: Path, model: Path) -> None:
        self.db, self.model = db, model

    def __enter__(self):
        from clients import SsaldClient
        from clients.cli.demo import start_server

        self.proc, address = start_server(self.db, self.model)
        self.client = SsaldClient(address, timeout=120.0)
        return self.client

    def __exit__(self, *exc) -> None:
        from clients.cli.demo import stop_server

        self.client.close()
        stop_server(self.proc)


def grpc_precision(client, objids: np.ndarray, classes: np.ndarray, target: str, **kwargs) -> float:
    """precision@K of ``target`` through ``find_similar`` for every ``target`` object."""
    by_objid = dict(zip(objids.tolist(), classes.tolist()))
    hits = []
    for objid in objids[classes == target]:
        neighbours = client.find_similar(int(objid), k=K, **kwargs)
        hits.append(np.mean([by_objid.get(nb.objid) == target for nb in neighbours]))
    return float(np.mean(hits))


def load_table(db: Path, labels: dict[str, str]):
    """objids, classes (by file name), embeddings and morphology columns of the table at ``db``."""
    from ssald_index.schema import MORPHOLOGY_COLUMNS
    from ssald_index.store import ObjectStore, embedding_matrix

    store = ObjectStore.open(db)
    names = store.table.schema.names
    morph = [c for c in MORPHOLOGY_COLUMNS if c in names and c != "morph_flag"]
    table = store.read(["objid", "source", "embedding", *morph])
    classes = np.array([labels.get(Path(s).name, "") for s in table.column("source").to_pylist()])
    if (classes == "").any():
        raise SystemExit(f"{int((classes == '').sum())} ingested files have no row in the labels CSV")
    m = np.stack([table.column(c).to_numpy(zero_copy_only=False).astype(float) for c in morph], 1) if morph else None
    return table.column("objid").to_numpy(), classes, embedding_matrix(table), m, morph


def pixel_pca(sources: list[str], fit_mode: str, fraction: float, size: int, n_components: int = 32) -> np.ndarray:
    """PCA of the raw pixels of the stamps the model sees (same fit and size)."""
    from sklearn.decomposition import PCA

    from encoders.fit import Fit
    from encoders.stamps import read_stamp

    fit = Fit(fit_mode, fraction)
    pixels = np.stack([fit.apply(read_stamp(s).data, size).ravel() for s in sources])
    return PCA(n_components, random_state=0).fit_transform(pixels)


def checkpoint_scores(run: Path, stamps: np.ndarray, classes: np.ndarray, target: str) -> list[dict]:
    """Label-free scores and precision@K of up to 12 kept checkpoints, evenly spaced (embedded with torch)."""
    import torch

    from encoders.training.checkpoint import load_backbone
    from encoders.training.diagnostics import quality_report

    out = []
    kept = sorted((run / "checkpoints").glob("epoch_*.pt"))
    for ckpt in [kept[i] for i in np.unique(np.linspace(0, len(kept) - 1, min(len(kept), 12)).round().astype(int))]:
        model, _ = load_backbone(ckpt)
        with torch.no_grad():
            z = np.concatenate(
                [torch.nn.functional.normalize(model(torch.from_numpy(stamps[i : i + 512])), dim=1).numpy()
                 for i in range(0, len(stamps), 512)]
            )  # fmt: skip
        q = quality_report(z, seed=0)
        out.append(
            {"checkpoint": ckpt.stem, "rankme": q["rankme"], "tpcf": q["tpcf"], "std_mean": q["std_mean"],
             "p_at_10": precision_at_k(z, classes, target, metric="cosine")}
        )  # fmt: skip
    return out


def model_stamps(sources: list[str], model: Path) -> np.ndarray:
    """The stamps exactly as the exported model is fed them (its fit and normalisation)."""
    from encoders.embedder import OnnxEmbedder
    from encoders.normalise import normaliser
    from encoders.stamps import read_stamp

    emb = OnnxEmbedder(model, providers=["CPUExecutionProvider"])
    norm = normaliser(emb.normalisation, emb.lupton)
    cubes = np.stack([emb.fit.apply(read_stamp(s).data, emb.stamp_size) for s in sources]).astype(np.float32)
    return norm(cubes)


def active_learning(x: np.ndarray, features: np.ndarray, truth: np.ndarray, args, classifier: str):
    """Recall curves of each strategy: similarity in the embedding ``x``, the classifier on ``features``."""
    from ssald_index.active.simulate import simulate

    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    return simulate(
        x, truth, strategies, max_labels=args.al_max_labels, batch=10, cold_start="example", seed=args.seed,
        classifier=classifier, features=features, progress=False,
    )  # fmt: skip


def _al_run(job: tuple) -> dict[str, dict]:
    """One (features, classifier) pair's curves as report rows (a process-pool task)."""
    x, feats, truth, args, fname, classifier = job
    out = {}
    for s, c in active_learning(x, feats, truth, args, classifier).items():
        out[f"{s} / {fname} / {classifier}"] = {
            "recall@50": c.recall_at(50), "recall@200": c.recall_at(200), "recall@800": c.recall_at(800),
            "labels_50%": c.labels_for(0.5), "labels_90%": c.labels_for(0.9),
            "labels": c.labels, "recall": c.recall, "rows": c.rows,
        }  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=Path, required=True, help="folder of image files (or with images/ or stamps/)")
    p.add_argument("--labels", type=Path, required=True, help="CSV naming each file and its class")
    p.add_argument("--file-column", default="file", help="CSV column with the file name (default file)")
    p.add_argument("--label-column", required=True, help="CSV column with the class")
    p.add_argument("--rare", required=True, help="the rare class value to find (e.g. merger, 1)")
    p.add_argument("--control", action="append", default=[], help="a common class also scored (repeatable)")
    p.add_argument("--workdir", type=Path, required=True)
    p.add_argument("--fit-fraction", type=float, default=0.5, help="central fraction resampled to the model size")
    p.add_argument("--stamp-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--train-args", default="", help="extra 'ssald train' arguments, quoted")
    p.add_argument("--export-args", default="", help="extra 'ssald export' arguments, quoted")
    p.add_argument("--al-max-labels", type=int, default=800)
    p.add_argument("--strategies", default="random,top,uncertainty,gp_ei")
    p.add_argument(
        "--al-runs",
        default="embedding/logistic,morphology/forest,embedding+morphology/logistic,embedding+morphology/forest",
        help="features/classifier pairs simulated (features: embedding, morphology, embedding+morphology)",
    )
    p.add_argument("--metric-labels", default="0,50,200", help="label counts for the learned-metric figure")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    labels = read_labels(args.labels, args.file_column, args.label_column)
    results: dict = {"args": {k: str(v) for k, v in vars(args).items()}}

    # --- train, export (trained and random initialisation), ingest --------------------------------
    run, model, random_model = work / "run", work / "model.onnx", work / "random.onnx"
    timing = work / "train_seconds.txt"
    if not (run / "checkpoint.pt").exists():
        seconds = _ssald(
            ["train", "--data", str(args.images), "--run", str(run), "--epochs", str(args.epochs),
             "--fit", "resample", "--fit-fraction", str(args.fit_fraction), "--stamp-size", str(args.stamp_size),
             "--normalisation", "identity", "--keep-checkpoints", "--seed", str(args.seed),
             "--catalogue", str(args.labels), "--labels", args.label_column, *shlex.split(args.train_args)]
        )  # fmt: skip
        timing.write_text(f"{seconds:.1f}\n")
    results["train_s"] = float(timing.read_text()) if timing.exists() else None
    extra = shlex.split(args.export_args)
    if not model.exists():
        _ssald(["export", "--run", str(run), "--out", str(model), *extra])
    if not random_model.exists():
        _ssald(["export", "--run", str(run / "checkpoints" / "epoch_000.pt"), "--out", str(random_model), *extra])
    dbs = {"encoder": (work / "db", model), "random encoder": (work / "db_random", random_model)}
    for db, onnx_model in dbs.values():
        if not db.exists():
            _ssald(["ingest", "--data", str(args.images), "--model", str(onnx_model), "--db", str(db)])

    objids, classes, x, morph, morph_names = load_table(work / "db", labels)
    sources = _sources(work / "db", objids)
    targets = [args.rare, *args.control]
    prevalence = {t: float(np.mean(classes == t)) for t in targets}
    print(f"\n{len(objids)} objects; " + ", ".join(f"{t}: {int((classes == t).sum())}" for t in targets))

    from ssald_index.feature_space import standardise_morphology

    # --- precision@10: the product through gRPC, and baselines on the same stamps ------------------
    table: dict[str, dict[str, float]] = {}
    for name, (db, onnx_model) in dbs.items():
        with Served(db, onnx_model) as client:
            for space in SPACES if name == "encoder" and morph is not None else ("embedding",):
                row = {t: grpc_precision(client, objids, classes, t, space=space) for t in targets}
                table[f"{name}: find_similar space={space}"] = row
    pca = pixel_pca(sources, "resample", args.fit_fraction, args.stamp_size)
    table["pixel PCA (32)"] = {t: precision_at_k(pca, classes, t) for t in targets}
    if morph is not None:
        z = standardise_morphology(morph)
        table[f"morphology ({len(morph_names)} columns)"] = {t: precision_at_k(z, classes, t) for t in targets}
    table["chance (prevalence)"] = prevalence
    results["precision_at_10"] = table

    # --- active learning -----------------------------------------------------------------------
    from ssald_index.active.classify import FEATURES, feature_matrix

    truth = classes == args.rare
    # The classifier inputs the server builds (``ssald serve --al-features``): the same function.
    features = {f: feature_matrix(x, morph, f) for f in (FEATURES if morph is not None else ("embedding",))}
    from ssald_index.active.simulate import random_labels_for_recall

    al: dict[str, dict] = {}
    jobs = []
    for pair in args.al_runs.split(","):
        fname, _, classifier = pair.strip().partition("/")
        if fname in features:
            jobs.append((x, features[fname], truth, args, fname, classifier or "logistic"))
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: this process has LanceDB's runtime loaded, which forked children may deadlock on
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        for rows in pool.map(_al_run, jobs):
            al.update(rows)
    n_t = int(truth.sum())
    al["random (expected)"] = {
        "labels_50%": random_labels_for_recall(len(truth), n_t, 0.5),
        "labels_90%": random_labels_for_recall(len(truth), n_t, 0.9),
    }
    results["active_learning"] = al

    # --- labels improve similarity: the learned metric through gRPC -----------------------------
    labelled_by = next(
        (k for k in ("top / embedding+morphology / forest", "top / embedding / logistic") if k in al), next(iter(al))
    )
    results["metric_labels_from"] = labelled_by
    rows = al[labelled_by]["rows"]
    results["metric"] = _metric_figures(work / "db", model, objids, classes, args, rows, morph is not None)

    # --- label-free scores across checkpoints --------------------------------------------------
    stamps = model_stamps(sources, model)
    results["checkpoints"] = checkpoint_scores(run, stamps, classes, args.rare)
    from scipy.stats import spearmanr

    precision = [row["p_at_10"] for row in results["checkpoints"]]
    results["score_vs_precision"] = {
        score: tuple(float(v) for v in spearmanr([row[score] for row in results["checkpoints"]], precision))
        for score in ("rankme", "tpcf", "std_mean")
    }

    (work / "results.json").write_text(json.dumps(results, indent=1, default=float))
    print(report(results, args))
    return 0


def _sources(db: Path, objids: np.ndarray) -> list[str]:
    from ssald_index.store import ObjectStore

    table = ObjectStore.open(db).read(["objid", "source"])
    by_objid = dict(zip(table.column("objid").to_pylist(), table.column("source").to_pylist()))
    return [by_objid[int(o)] for o in objids]


def _metric_figures(db: Path, model: Path, objids, classes, args, rows: list[int], morph: bool) -> dict:
    """precision@K through ``find_similar(metric_label=...)`` after the first N labels the AL loop asked for.

    ``rows`` are the labels an active-learning run asked for, in order (what ``ssald label`` would show a
    person), stored through ``SubmitLabels`` as the rare class or its ``not_`` label.
    """
    truth = classes == args.rare
    counts = sorted(int(c) for c in args.metric_labels.split(",") if int(c) > 0)
    label = f"rare_{args.label_column}"
    spaces = ("embedding", "embedding+morphology") if morph else ("embedding",)
    out: dict = {}
    with Served(db, model) as client:
        for space in spaces:
            out[f"0 none {space}"] = grpc_precision(client, objids, classes, args.rare, space=space)
        given = 0
        for n in counts:
            client.submit_labels([(int(objids[r]), label if truth[r] else f"not_{label}") for r in rows[given:n]])
            given = n
            for space in spaces:
                for kind in ("probe", "nca", "head"):
                    try:
                        value = grpc_precision(
                            client, objids, classes, args.rare, metric_label=label, metric_kind=kind, space=space
                        )
                    except Exception as exc:  # noqa: BLE001 - too few positives for a metric is a result too
                        value = f"{type(exc).__name__}: {exc}"
                    out[f"{n} {kind} {space}"] = value
            out[f"{n} positives"] = int(truth[rows[:n]].sum())
    return out


def report(results: dict, args) -> str:
    """The figures as Markdown tables."""
    targets = [args.rare, *args.control]
    lines = [f"\n## {args.images} ({args.label_column} = {args.rare})", ""]
    lines.append(f"training: {results.get('train_s') or 0:.0f} s ({args.epochs} epochs)")
    lines += ["", "| precision@10 | " + " | ".join(targets) + " |", "|---|" + "---|" * len(targets)]
    for name, row in results["precision_at_10"].items():
        lines.append(f"| {name} | " + " | ".join(f"{row[t]:.3f}" for t in targets) + " |")
    lines += ["", "| active learning | recall@50 | recall@200 | recall@800 | labels to 50% | labels to 90% |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for name, row in results["active_learning"].items():
        cells = [row.get(c) for c in ("recall@50", "recall@200", "recall@800", "labels_50%", "labels_90%")]
        lines.append(f"| {name} | " + " | ".join("-" if c is None else f"{c:.3g}" for c in cells) + " |")
    lines += ["", f"labels from: {results['metric_labels_from']}", ""]
    lines += ["| labels (positives) | learned metric | space | precision@10 |", "|---|---|---|---|"]
    metric = results["metric"]
    for key, value in metric.items():
        n, kind, space = (key.split(" ") + ["", ""])[:3]
        if kind == "positives":
            continue
        shown = f"{n} ({metric.get(f'{n} positives', 0)})"
        lines.append(f"| {shown} | {kind} | {space} | {value if isinstance(value, str) else f'{value:.3f}'} |")
    lines += ["", "| checkpoint | RankMe | 2PCF | std mean | precision@10 |", "|---|---|---|---|---|"]
    for row in results["checkpoints"]:
        lines.append(
            f"| {row['checkpoint']} | {row['rankme']:.1f} | {row['tpcf']:.1f} | {row['std_mean']:.3f} "
            f"| {row['p_at_10']:.3f} |"
        )
    lines.append("")
    for score, (rho, pval) in results.get("score_vs_precision", {}).items():
        lines.append(f"Spearman rho of {score} with precision@10 across checkpoints: {rho:+.2f} (p = {pval:.2g})")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
