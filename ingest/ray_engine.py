"""``ssald ingest --engine ray``: the same stages as the local engine, as a Ray Data pipeline.

Per wave of items: ``prepare`` (:func:`ingest.pipeline.prepare`: read, validate, normalise) runs as
Ray tasks; ``embed`` runs in actors that each hold one ONNX Runtime session (one GPU each when
the cluster has GPUs); the embeddings are written in parallel as Lance fragments of a staging
dataset by ``lance_ray.write_lance`` (Ray's own ``Dataset.write_lance`` fails with pylance 14,
ray issue 65129). The driver then applies the local engine's rules in input order through the
same :class:`ingest.bookkeeping.Ledger` (skip objids already embedded, quarantine duplicates),
joins the catalogue with :func:`ingest.pipeline.rows_table` and writes the wave into the
``objects`` table in one commit (appended when its objids are new, merge-inserted otherwise), so
the final table equals the local engine's and a crash loses at most one wave.
"""

from __future__ import annotations

import os
import pickle
import shutil
from typing import Any

import numpy as np
import pyarrow as pa

from encoders.providers import DEFAULT_BATCH_SIZE
from ingest.bookkeeping import IngestRun
from ingest.options import IngestOptions
from ingest.pipeline import Spec, prepare, rows_table
from ingest.sources import Item
from ssald_index.store import ObjectStore, append_quarantine

__all__ = ["RAY_WAVE", "run_ray"]

#: Items per wave (one staging dataset and one commit to the objects table).
RAY_WAVE = 20_000
_META = ("objid", "source", "ra", "dec", "survey", "reason")


class _Prepare:
    """Ray task body: pickled items -> metadata columns + normalised cubes (zeros for quarantined items)."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        items: list[Item] = [pickle.loads(b) for b in batch["item"]]
        prepared = prepare(items, self.spec)
        shape = (len(self.spec.bands), self.spec.stamp_size, self.spec.stamp_size)
        cubes = np.zeros((len(items), *shape), np.float32)
        out: dict[str, list[Any]] = {k: [] for k in _META}
        good = dict(zip(prepared.positions, range(len(prepared.positions))))
        bad = iter(prepared.bad)
        for j in range(len(items)):
            k = good.get(j)
            if k is None:
                row = next(bad)
                objid = row["objid"] if row["objid"] is not None else -1
                values = (objid, row["source"], None, None, None, row["reason"])
            else:
                meta = prepared.meta[k]
                cubes[j] = prepared.cubes[k]
                values = (prepared.objids[k], meta["source"], meta["ra"], meta["dec"], meta["survey"], None)
            for key, value in zip(_META, values):
                out[key].append(value)
        columns = {key: np.asarray(values, dtype=object) for key, values in out.items()}
        columns["objid"] = np.asarray(out["objid"], dtype=np.int64)
        return {"idx": batch["idx"], **columns, "cube": cubes}


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and np.isnan(value))


class _Embed:
    """Ray actor: one ONNX Runtime session; normalised cubes -> fixed-size-list embeddings."""

    def __init__(self, model: str, batch_size: int) -> None:
        from encoders.embedder import OnnxEmbedder

        self.embedder = OnnxEmbedder(model)
        self.batch_size = batch_size

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        ok = np.array([_missing(r) for r in batch["reason"]], bool)
        dim = self.embedder.embedding_dim
        embeddings = np.zeros((len(ok), dim), np.float32)
        if ok.any():
            embeddings[ok] = self.embedder.embed(batch["cube"][ok], batch_size=self.batch_size)
        columns = {"idx": pa.array(batch["idx"], pa.int64())}
        columns["objid"] = pa.array(batch["objid"], pa.int64())
        # Ray turns an all-None object column into NaN floats: map both back to nulls.
        for key in ("source", "survey", "reason"):
            columns[key] = pa.array([None if _missing(v) else str(v) for v in batch[key]], pa.string())
        for key in ("ra", "dec"):
            columns[key] = pa.array([None if _missing(v) else float(v) for v in batch[key]], pa.float64())
        flat = pa.array(embeddings.ravel())
        columns["embedding"] = pa.FixedSizeListArray.from_arrays(flat, dim)
        return pa.table(columns)


def _init_ray(num_cpus: int | None) -> Any:
    import ray

    if not ray.is_initialized():
        # RAY_ADDRESS in the environment joins an existing cluster; otherwise a local instance starts.
        kwargs = {} if os.environ.get("RAY_ADDRESS") else {"num_cpus": num_cpus, "include_dashboard": False}
        ray.init(ignore_reinit_error=True, log_to_driver=False, **kwargs)
    return ray


def run_ray(
    run: IngestRun,
    options: IngestOptions,
    *,
    wave: int = RAY_WAVE,
    num_cpus: int | None = None,
    actors: int | None = None,
) -> None:
    """Run ingestion as Ray Data, with the local engine's effects (see :func:`ingest.job.ingest`).

    Parameters
    ----------
    run : IngestRun
        As prepared by :func:`ingest.job.ingest`; ``run.ledger`` collects every objid met in the input and
        ``run.summary`` the counts.
    options : IngestOptions
        ``batch_size`` (stamps per ONNX Runtime call in each actor; default the CPU's
        :data:`~encoders.providers.DEFAULT_BATCH_SIZE`) and ``progress`` (Ray Data's progress bars) apply;
        the local engine's process and thread settings do not.
    wave : int
        Items per staging dataset and commit.
    num_cpus : int, optional
        CPUs of a local Ray instance (ignored when joining a cluster through ``RAY_ADDRESS``).
    actors : int, optional
        Embedding actors (default: one per GPU, else one per 4 CPUs, at least 1).
    """
    import lance
    from lance_ray import write_lance

    items, spec, ledger = run.items, run.spec, run.ledger
    batch_size = options.batch_size if options.batch_size is not None else DEFAULT_BATCH_SIZE["cpu"]
    ray = _init_ray(num_cpus)
    ray.data.DataContext.get_current().enable_progress_bars = options.progress
    gpus = int(ray.cluster_resources().get("GPU", 0))
    actors = actors or (gpus or max(1, int(ray.cluster_resources().get("CPU", 1)) // 4))
    todo = [(i, items[i]) for i in ledger.todo(items)]
    run.summary.skipped = ledger.skipped
    staging_root = run.db / "_staging"
    for lo in range(0, len(todo), wave):
        part = todo[lo : lo + wave]
        staging = staging_root / f"wave-{lo // wave:06d}.lance"
        shutil.rmtree(staging, ignore_errors=True)
        ds = ray.data.from_items([{"idx": i, "item": pickle.dumps(item)} for i, item in part])
        ds = ds.map_batches(_Prepare, fn_constructor_args=(spec,), batch_size=64, concurrency=(1, max(1, actors * 4)))
        ds = ds.map_batches(
            _Embed,
            fn_constructor_args=(os.fspath(run.model), batch_size),
            batch_size=batch_size,
            concurrency=actors,
            num_gpus=1 if gpus else 0,
        )
        write_lance(ds, os.fspath(staging), mode="create")
        table = lance.dataset(os.fspath(staging)).to_table().sort_by("idx")
        _commit(table, run)
        shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(staging_root, ignore_errors=True)


def _commit(table: pa.Table, run: IngestRun) -> None:
    """Apply the ledger's rules in input order and write one wave (appended when all its objids are new)."""
    spec, db, cat, ledger, summary = run.spec, run.db, run.catalogue, run.ledger, run.summary
    keep, bad = [], []
    columns = {k: table.column(k).to_pylist() for k in _META}
    for i in range(table.num_rows):
        objid, source, reason = columns["objid"][i], columns["source"][i], columns["reason"][i]
        if reason is not None:
            bad.append({"source": source, "objid": None if objid == -1 else objid, "reason": reason})
            ledger.quarantined(None if objid == -1 else objid)
            continue
        embed, duplicate = ledger.take(objid, source)
        if duplicate is not None:
            bad.append(duplicate)
        elif embed:
            keep.append(i)
    summary.skipped = ledger.skipped
    if keep:
        names = ",".join(spec.bands)
        meta = [{**{k: columns[k][i] for k in ("source", "ra", "dec", "survey")}, "bands": names} for i in keep]
        embeddings = np.stack(table.column("embedding").take(keep).to_numpy(zero_copy_only=False))
        objids = [columns["objid"][i] for i in keep]
        rows = rows_table(objids, meta, embeddings, cat, summary.model_id)
        ObjectStore.write(db, rows, new=ledger.all_new(objids))
        summary.ingested += len(keep)
        summary.without_catalogue_row += sum(cat is None or cat.row(o) is None for o in objids)
    append_quarantine(db, bad)
    summary.count(bad)
