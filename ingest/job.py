"""The bulk embed job: stamps + catalogue -> ONNX embeddings -> LanceDB ``objects`` table.

Stamps are discovered (:mod:`ingest.sources`), then loaded, validated and normalised in
worker processes (:mod:`ingest.pipeline`), embedded in batches by one ONNX Runtime
session (the CUDA provider when there is a GPU), and committed one chunk at a time by a writer
thread that also builds the chunk's Arrow rows, so decoding, inference and writing overlap while memory
stays bounded (worker processes hand stamps over in shared memory: :class:`ingest.pipeline.Prefetcher`).
A chunk of objids absent from the table is appended; one that may replace rows (``refresh``, ``reembed``)
is merge-inserted by objid (:mod:`ingest.bookkeeping` decides, under a lock that serialises ingest runs
on one database).
A crash loses at most the chunks being committed (two at most) and the one being embedded; a re-run skips
objids already embedded by the same model, so it neither duplicates nor loses rows. Bad stamps
go to the ``quarantine`` table with a reason and the job carries on. A table never mixes two
models' embeddings.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
import warnings
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from encoders.embedder import OnnxEmbedder
from encoders.fit import DEFAULT_FIT_FRACTION, Fit
from encoders.stamps import Stamp
from ingest.bookkeeping import IngestRun, IngestSummary, Ledger, ingest_lock, table_objids
from ingest.catalogue import Catalogue, read_catalogue
from ingest.options import MAX_NAN_FRACTION, IngestInput, IngestOptions
from ingest.pipeline import Prefetcher, Prepared, Spec, rows_table, validate
from ingest.sources import STAMP_SUFFIXES, discover, find_stamps
from ssald_index.store import ObjectStore, TableNotReady, append_quarantine, register_model

__all__ = [
    "MAX_NAN_FRACTION",
    "STAMP_SUFFIXES",
    "IngestSummary",
    "IngestInput",
    "IngestOptions",
    "ModelMismatch",
    "check_stamp",
    "existing_objids",
    "find_stamps",
    "ingest",
    "resolve_fit",
]


class ModelMismatch(RuntimeError):
    """The table already holds embeddings from another model."""


def check_stamp(stamp: Stamp, embedder: OnnxEmbedder, max_nan_fraction: float = MAX_NAN_FRACTION) -> str | None:
    """Why ``stamp`` cannot be embedded by ``embedder``'s model, or ``None`` if it can."""
    spec = Spec(tuple(embedder.bands), embedder.stamp_size, embedder.lupton, max_nan_fraction=max_nan_fraction)
    return validate(stamp, spec)


def resolve_fit(embedder: OnnxEmbedder, fit: str | Fit | None = None, fraction: float | None = None) -> Fit:
    """The fit an ingest uses: the model's contract, unless ``fit``/``fraction`` override it (with a warning).

    Parameters
    ----------
    embedder : OnnxEmbedder
        The model; :attr:`~encoders.embedder.OnnxEmbedder.fit` is its contract.
    fit : str or Fit, optional
        A mode name or a :class:`~encoders.fit.Fit`; ``None`` keeps the model's.
    fraction : float, optional
        ``resample``'s fraction; ``None`` keeps the model's when the mode is the model's.

    Returns
    -------
    Fit
    """
    model = embedder.fit
    if isinstance(fit, Fit):
        chosen = fit
    else:
        mode = model.mode if fit is None else fit
        if fraction is None:
            fraction = model.fraction if mode == model.mode else DEFAULT_FIT_FRACTION
        chosen = Fit(mode, fraction)
    if chosen.mode != model.mode or (chosen.mode == "resample" and chosen.fraction != model.fraction):
        warnings.warn(
            f"fit {chosen} differs from model {embedder.model_id}'s contract (fit {model}, as its training stamps "
            "were fitted): the embeddings may not be comparable with the training stamps",
            UserWarning,
            stacklevel=3,
        )
    return chosen


def existing_objids(db: str | os.PathLike[str], model_id: str) -> np.ndarray:
    """Sorted int64 objids already embedded by ``model_id`` in ``db`` (empty when there is no table)."""
    return table_objids(db, model_id)[0]


def _existing_models(db: Path) -> list[str]:
    try:
        return ObjectStore.open(db).model_ids()
    except TableNotReady:
        return []


def _register(db: Path, model: Path, embedder: OnnxEmbedder) -> None:
    meta = embedder.metadata
    register_model(
        db,
        {
            "model_id": embedder.model_id,
            "onnx_sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
            "bands": ",".join(embedder.bands),
            "stamp_size": embedder.stamp_size,
            "embedding_dim": embedder.embedding_dim,
            "normalisation": json.dumps({"kind": embedder.normalisation, **embedder.lupton.to_dict()}),
            "training": meta.get("training_run", ""),
            "diagnostics": json.dumps({}),
        },
    )


def _check_models(db: Path, embedder: OnnxEmbedder, reembed: bool) -> list[str]:
    other = [m for m in _existing_models(db) if m != embedder.model_id]
    if other and not reembed:
        raise ModelMismatch(
            f"table {os.fspath(db)!r} holds embeddings of model(s) {', '.join(other)}; refusing to add model "
            f"{embedder.model_id} to it (use a new --db, or --reembed to replace every embedding with this model)"
        )
    return other


class _Chunk:
    """Good stamps and quarantine rows gathered for one commit.

    Cubes are embedded a batch at a time as they arrive, not when the chunk is full: inference then
    alternates with short waits for the decoding workers instead of a long one per chunk (during
    which the workers, with few tasks in flight, would sit idle), and the chunk holds embeddings
    rather than stamps.
    """

    def __init__(self) -> None:
        self.objids: list[int] = []
        self.meta: list[dict[str, Any]] = []
        self.cubes: list[np.ndarray] = []
        self.embeddings: list[np.ndarray] = []
        self.bad: list[dict[str, Any]] = []
        self.items = 0

    def embed(self, embedder: OnnxEmbedder, batch_size: int, rest: bool = False) -> None:
        """Embed the whole batches of waiting cubes (all of them with ``rest``)."""
        waiting = sum(len(c) for c in self.cubes)
        n = waiting if rest else waiting - waiting % batch_size
        if n == 0:
            return
        cubes = np.concatenate(self.cubes) if len(self.cubes) > 1 else self.cubes[0]
        # prepare() made these with the model's normaliser: skip embed's range check.
        self.embeddings.append(embedder.embed(cubes[:n], batch_size=batch_size, check_range=False))
        self.cubes = [cubes[n:]] if n < waiting else []


#: Commits queued for the writer thread before the embedding thread waits for one: deep enough to absorb
#: a slow commit (Lance manifest writes vary), shallow enough to bound memory and what a crash loses.
MAX_PENDING_COMMITS = 2


def _write(
    db: Path,
    objids: list[int],
    meta: list[dict[str, Any]],
    embeddings: np.ndarray | None,
    cat: Catalogue | None,
    model_id: str,
    new: bool,
    bad: list[dict[str, Any]],
) -> int:
    """The writer thread's work for one chunk: its Arrow rows (catalogue join included), the table commit and
    the quarantine rows. Returns how many of its objids have no catalogue row."""
    missing = 0
    if objids:
        rows = rows_table(objids, meta, embeddings, cat, model_id)
        missing = sum(cat is None or cat.row(o) is None for o in objids)
        ObjectStore.write(db, rows, new=new)
    append_quarantine(db, bad)
    return missing


def ingest(
    source: IngestInput | str | os.PathLike[str],
    model: str | os.PathLike[str],
    db: str | os.PathLike[str],
    options: IngestOptions | None = None,
) -> IngestSummary:
    """Embed every stamp of an input and merge them into the ``objects`` table of ``db``.

    Parameters
    ----------
    source : IngestInput or path
        What to read (a bare path is ``IngestInput(path)``: a stamp folder or array file, no catalogue).
    model : path
        ONNX model exported by ``ssald export``; its metadata fixes bands, size and normalisation.
    db : path
        LanceDB database directory (created if missing).
    options : IngestOptions, optional
        How to run (default ``IngestOptions()``).

    Returns
    -------
    IngestSummary

    Raises
    ------
    ModelMismatch
        If the table already holds embeddings of another model and ``options.reembed`` is false.
    """
    source = source if isinstance(source, IngestInput) else IngestInput(source)
    options = options or IngestOptions()
    start = time.perf_counter()
    model, db = Path(model), Path(db)
    embedder = OnnxEmbedder(model, providers=options.providers, intra_op_threads=options.intra_op_threads)
    if options.batch_size is None:
        options = dataclasses.replace(options, batch_size=embedder.default_batch_size)
    cat: Catalogue | None = None
    if source.catalogue is not None:
        cat = read_catalogue(source.catalogue, source.column_map)
    items = discover(
        source.data if source.data is not None else ".",
        bands=embedder.bands,
        band_pattern=source.band_pattern,
        frames=source.frames,
        catalogue=cat,
        cutout_size=source.cutout_size or embedder.stamp_size,
        images_key=source.images_key,
        objid_key=source.objid_key,
    )
    engine = options.engine
    spec = Spec(
        tuple(embedder.bands),
        embedder.stamp_size,
        embedder.lupton,
        source.bands or None,
        source.images_key,
        options.max_nan_fraction,
        resolve_fit(embedder, options.fit, options.fit_fraction),
        embedder.normalisation,
        options.morphology and engine == "local",
    )
    summary = IngestSummary(model_id=embedder.model_id, engine=engine)
    # The table is read once, under the lock: no other ingest can insert an objid this run appends.
    with ingest_lock(db):
        other = _check_models(db, embedder, options.reembed)
        _register(db, model, embedder)
        done, present = table_objids(db, embedder.model_id)
        ledger = Ledger(np.empty(0, np.int64) if options.refresh else done, present)
        run = IngestRun(items, spec, model, db, cat, ledger, summary)
        pipeline_start = time.perf_counter()
        if engine == "ray":
            from ingest.ray_engine import run_ray

            run_ray(run, options)
        else:
            _run_local(run, embedder, options)
        summary.pipeline_seconds = time.perf_counter() - pipeline_start
        finalize_start = time.perf_counter()
        if other and summary.ingested + summary.skipped:
            table = ObjectStore.open(db).table
            before = table.count_rows()
            table.delete(f"model_id != '{embedder.model_id}' OR model_id IS NULL")
            summary.removed_other_model = before - table.count_rows()
        if summary.ingested or summary.removed_other_model:
            ObjectStore.open(db).finalize(progress=options.progress)
        summary.finalize_seconds = time.perf_counter() - finalize_start
    if cat is not None:
        summary.catalogue_rows_without_stamp = sum(o not in ledger.seen for o in cat.index)
    summary.seconds = time.perf_counter() - start
    return summary


def default_workers(n_items: int, batch_size: int, providers: Sequence[str], cores: int | None = None) -> int:
    """Decoding processes for the local engine when the user gives none.

    None (``0``: a thread of this process prepares stamps while the caller embeds) for small inputs, where
    process start-up costs more than it saves, and with ONNX Runtime on the CPU of a machine with at most
    2 cores, where inference already keeps every core busy and a worker process only adds the cost of
    pickling each stamp across (slower there for FITS and arrays alike: docs/BENCHMARKS.md). Otherwise (a
    GPU, or cores to spare) ``cores - 1`` workers.
    """
    cores = cores or os.cpu_count() or 1
    if n_items <= 4 * batch_size:
        return 0
    on_cpu = all(p == "CPUExecutionProvider" for p in providers)
    if on_cpu and cores <= 2:
        return 0
    return max(1, cores - 1)


def _run_local(run: IngestRun, embedder: OnnxEmbedder, options: IngestOptions) -> None:
    """The local engine: worker processes prepare, this thread embeds, a writer thread commits."""
    items, db, cat, ledger, summary = run.items, run.db, run.catalogue, run.ledger, run.summary
    batch_size, chunk_size, progress, workers = (
        options.batch_size,
        options.chunk_size,
        options.progress,
        options.workers,
    )
    todo = [items[i] for i in ledger.todo(items)]
    summary.skipped = ledger.skipped
    if workers is None:
        workers = default_workers(len(todo), batch_size, embedder.providers)
    bar = tqdm(total=len(items), unit="stamp", desc="ingest", disable=not progress, smoothing=0.05)
    bar.update(summary.skipped)
    # Enough tasks in flight to keep the workers busy while this thread embeds two batches.
    task_size = min(batch_size, 64)
    window = max(2 * workers + 1, 2 * -(-batch_size // task_size) + 1)
    writer = ThreadPoolExecutor(1, thread_name_prefix="ingest-writer")
    pending: deque[Future] = deque()
    chunk = _Chunk()

    def flush() -> None:
        nonlocal chunk
        embeddings = None
        if chunk.objids:
            chunk.embed(embedder, batch_size, rest=True)
            embeddings = np.concatenate(chunk.embeddings)
            summary.ingested += len(chunk.objids)
        while len(pending) >= MAX_PENDING_COMMITS:
            summary.without_catalogue_row += pending.popleft().result()  # re-raises a failed write
        new = ledger.all_new(chunk.objids)
        args = (db, chunk.objids, chunk.meta, embeddings, cat, embedder.model_id, new, chunk.bad)
        pending.append(writer.submit(_write, *args))
        summary.count(chunk.bad)
        summary.skipped = ledger.skipped
        chunk = _Chunk()
        bar.set_postfix(quarantined=summary.quarantined, skipped=summary.skipped, refresh=False)

    try:
        with Prefetcher(run.spec, workers, task_size=task_size, window=window) as prefetcher:
            for n, prepared in prefetcher.map(todo):
                _take(prepared, chunk, ledger)
                chunk.items += n
                bar.update(n)
                chunk.embed(embedder, batch_size)
                if chunk.items >= chunk_size:
                    flush()
        flush()
        while pending:
            summary.without_catalogue_row += pending.popleft().result()
    finally:
        writer.shutdown(wait=True)
        bar.close()


def _take(prepared: Prepared, chunk: _Chunk, ledger: Ledger) -> None:
    """Move one prepared task into the chunk by the ledger's rules, in input order (as the Ray engine does)."""
    keep = []
    bad = iter(prepared.bad)
    good = dict(zip(prepared.positions, range(len(prepared.objids))))
    for position in range(len(prepared.objids) + len(prepared.bad)):
        i = good.get(position)
        if i is None:
            row = next(bad)
            ledger.quarantined(row["objid"])
            chunk.bad.append(row)
            continue
        embed, duplicate = ledger.take(prepared.objids[i], prepared.meta[i]["source"])
        if duplicate is not None:
            chunk.bad.append(duplicate)
        elif embed:
            keep.append(i)
    if keep:
        chunk.objids.extend(prepared.objids[i] for i in keep)
        chunk.meta.extend(prepared.meta[i] for i in keep)
        assert prepared.cubes is not None
        chunk.cubes.append(prepared.cubes[keep] if len(keep) < len(prepared.objids) else prepared.cubes)
