"""The stages of ingestion, shared by the local and Ray engines.

``load -> validate -> normalise`` is :func:`prepare`, a pure function of a list of
:class:`~ingest.sources.Item` that runs in worker processes (local engine) or Ray tasks;
``embed`` is an ONNX Runtime session; ``rows`` turns embeddings plus catalogue values into
an Arrow table of the ``objects`` schema. :class:`Prefetcher` keeps a bounded number of
``prepare`` tasks in flight so memory stays flat however large the input.

With worker processes, each task in flight owns one slot of a shared-memory ring (a file in ``/dev/shm``):
the worker writes its normalised stamps there and sends back only objids, metadata and quarantine rows,
instead of pickling every stamp through a pipe (three copies and a pipe write per stamp, on the main
process's critical path, which a GPU embedder cannot afford).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from encoders.fit import Fit
from encoders.morphology import measure_batch
from encoders.normalise import LuptonParams, PixelStats, normaliser_stats
from encoders.stamps import Stamp, StampError
from ingest.options import MAX_NAN_FRACTION
from ingest.sources import Item, array_run, load_item, load_rows
from ssald_index.schema import MORPHOLOGY_COLUMNS, OBJECT_METADATA_COLUMNS, objects_schema

__all__ = [
    "MAX_NAN_FRACTION",
    "Prefetcher",
    "Prepared",
    "Spec",
    "prepare",
    "prepare_into_slot",
    "quality_problem",
    "rows_table",
    "shape_problem",
    "validate",
]


@dataclass(frozen=True)
class Spec:
    """What :func:`prepare` needs to know: the model's contract and the reader options (picklable).

    Attributes
    ----------
    bands : tuple of str
        The model's bands, in input-plane order.
    stamp_size : int
        The model's stamp side in pixels.
    lupton : LuptonParams
        The model's normalisation.
    user_bands : tuple of str or None
        Band names for formats that carry none (``--bands``).
    images_key : str
        Image dataset of HDF5/NPZ inputs.
    max_nan_fraction : float
        Stamps with more non-finite pixels than this are quarantined.
    fit : Fit or str
        How stamps are brought to the model's size before the shape check (:class:`encoders.fit.Fit`;
        a mode name means that mode with the default fraction); the model's own fit unless overridden.
    normalisation : {"lupton", "identity"}
        The model's normalisation kind (its ``normalisation`` metadata): Lupton-stretched fluxes, or images
        already in [0, 1] such as PNG composites.
    morphology : bool
        Measure the non-parametric morphology (:mod:`encoders.morphology`) of each good stamp, on its fitted
        pixels before normalisation; off, the ``morph_*`` columns stay null.
    """

    bands: tuple[str, ...]
    stamp_size: int
    lupton: LuptonParams
    user_bands: tuple[str, ...] | None = None
    images_key: str = "images"
    max_nan_fraction: float = MAX_NAN_FRACTION
    fit: Fit = Fit()
    normalisation: str = "lupton"
    morphology: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.fit, str):
            object.__setattr__(self, "fit", Fit(self.fit))
        if not isinstance(self.fit, Fit):
            raise ValueError(f"Spec.fit must be an encoders.fit.Fit or a mode name, got {self.fit!r}")


@dataclass
class Prepared:
    """The output of :func:`prepare` for one list of items.

    Attributes
    ----------
    objids : list of int
        Objids of the good stamps, in input order.
    cubes : numpy.ndarray
        float32 ``(n_good, B, H, W)``, Lupton-normalised (non-finite pixels count as 0).
    meta : list of dict
        Per good stamp: ``source, ra, dec, survey, bands``.
    bad : list of dict
        Quarantine rows ``{source, objid, reason}``, in input order.
    positions : list of int
        Index in ``items`` of each good stamp.
    """

    objids: list[int] = field(default_factory=list)
    cubes: np.ndarray | None = None
    meta: list[dict[str, Any]] = field(default_factory=list)
    bad: list[dict[str, Any]] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)


def _placeholder(bands: Sequence[str]) -> bool:
    return tuple(bands) == tuple(f"b{i}" for i in range(len(bands)))


def shape_problem(stamp: Stamp, spec: Spec) -> str | None:
    """Why ``stamp``'s shape or band names do not fit the model, or ``None``.

    Unnamed planes ``b0, b1 …`` take the model's names when their number matches.
    """
    want = (len(spec.bands), spec.stamp_size, spec.stamp_size)
    if stamp.data.shape != want:
        return f"shape {stamp.data.shape} does not match the model's {want} ({','.join(spec.bands)})"
    if tuple(stamp.bands) != spec.bands and not _placeholder(stamp.bands):
        return f"bands {','.join(stamp.bands)} do not match the model's {','.join(spec.bands)}"
    return None


def quality_problem(stats: PixelStats, i: int, max_nan_fraction: float) -> str | None:
    """Why stamp ``i`` of a normalised batch is not worth embedding (all NaN, too many NaN, constant), or ``None``."""
    finite = int(stats.finite[i])
    if finite == 0:
        return "all pixels are NaN or infinite"
    nan_fraction = 1.0 - finite / stats.size
    if nan_fraction > max_nan_fraction:
        return f"{nan_fraction:.0%} of pixels are NaN (limit {max_nan_fraction:.0%})"
    if stats.low[i] == stats.high[i]:
        return "stamp is constant"
    return None


def validate(stamp: Stamp, spec: Spec) -> str | None:
    """Why ``stamp`` cannot be embedded under ``spec``, or ``None`` if it can.

    The checks of :func:`prepare`: shape and band names (:func:`shape_problem`), then all-NaN,
    NaN fraction and constant stamps (:func:`quality_problem`) on what the model's normaliser sees.
    """
    problem = shape_problem(stamp, spec)
    if problem is not None:
        return problem
    _, stats = normaliser_stats(spec.normalisation, spec.lupton)(stamp.data[np.newaxis])
    return quality_problem(stats, 0, spec.max_nan_fraction)


def prepare(items: Sequence[Item], spec: Spec) -> Prepared:
    """Load, validate and normalise ``items``; failures become quarantine rows, never exceptions.

    Stamps are read (consecutive rows of an array input in one read) and checked for shape, then
    normalised together in one call that also counts their finite pixels and their range, on which the
    quality checks run (:func:`validate`'s rules).

    Parameters
    ----------
    items : sequence of Item
        From :func:`ingest.sources.discover`.
    spec : Spec
        The model's contract and reader options.

    Returns
    -------
    Prepared
    """
    out = Prepared()
    bad: list[tuple[int, dict[str, Any]]] = []
    loaded: list[tuple[int, Item, int, dict[str, Any]]] = []
    blocks: list[np.ndarray] = []
    start = 0
    while start < len(items):
        end = array_run(items, start)
        block = _load_run(items[start:end], spec) if end - start > 1 else None
        if block is not None:  # one read for consecutive rows of an array input
            loaded += [(p, items[p], int(items[p].objid), {}) for p in range(start, end)]
            blocks.append(block)
            start = end
            continue
        for position in range(start, end):
            item = items[position]
            objid = item.objid
            try:
                objid, stamp = load_item(item, spec.user_bands, spec.images_key)
                stamp.data = spec.fit.apply(stamp.data, spec.stamp_size)
                reason = shape_problem(stamp, spec)
            except (StampError, OSError, ValueError) as err:
                reason = str(err)
            if reason is not None:
                bad.append((position, {"source": item.source, "objid": objid, "reason": reason}))
            else:
                loaded.append((position, item, objid, stamp.header))
                blocks.append(stamp.data[np.newaxis])
        start = end
    if loaded:
        raw = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
        cubes, stats = normaliser_stats(spec.normalisation, spec.lupton)(raw)
        keep = []
        for i, (position, item, objid, header) in enumerate(loaded):
            reason = quality_problem(stats, i, spec.max_nan_fraction)
            if reason is not None:
                bad.append((position, {"source": item.source, "objid": objid, "reason": reason}))
                continue
            keep.append(i)
            out.objids.append(objid)
            out.positions.append(position)
            out.meta.append(
                {
                    "source": item.source,
                    "ra": header.get("RA", item.ra),
                    "dec": header.get("DEC", item.dec),
                    "survey": header.get("SURVEY"),
                    "bands": ",".join(spec.bands),
                }
            )
        if keep:
            out.cubes = cubes if len(keep) == len(loaded) else cubes[keep]
            if spec.morphology:
                values, flags = measure_batch(raw[keep])
                for m, v, f in zip(out.meta, values.tolist(), flags.tolist()):
                    # Not measured (NaN) is stored as null: SQL filters then never match it.
                    m["morphology"] = dict(zip(MORPHOLOGY_COLUMNS, [None if np.isnan(x) else x for x in v] + [f]))
    out.bad = [row for _, row in sorted(bad, key=lambda b: b[0])]
    return out


def _load_run(items: Sequence[Item], spec: Spec) -> np.ndarray | None:
    """The ``(n, B, H, W)`` pixels of consecutive array rows read at once, or ``None`` when they cannot all be
    taken as they are once fitted (a damaged file, wrong shape or bands): :func:`prepare` then loads them one by
    one and quarantines each bad row with its own reason."""
    try:
        cube, bands = load_rows(items, spec.user_bands, spec.images_key)
    except StampError:
        return None
    cube = spec.fit.apply(cube, spec.stamp_size)
    return cube if shape_problem(Stamp(cube[0], bands, {}, items[0].source), spec) is None else None


def rows_table(
    objids: Sequence[int],
    meta: Sequence[dict[str, Any]],
    embeddings: np.ndarray,
    catalogue: Any,
    model_id: str,
) -> pa.Table:
    """Arrow rows of the ``objects`` schema: catalogue values first, stamp header values where it has none.

    Parameters
    ----------
    objids : sequence of int
        One per row.
    meta : sequence of dict
        Per row, what the stamp told (:attr:`Prepared.meta`): ``ra``, ``dec``, ``survey``, ``bands``,
        ``source`` and, when measured, ``morphology``.
    embeddings : numpy.ndarray
        ``(len(objids), D)``.
    catalogue : Catalogue or None
        :class:`ingest.catalogue.Catalogue` whose row of each objid fills the catalogue columns.
    model_id : str
        The embedding model of every row.

    Returns
    -------
    pyarrow.Table
        In the column order of :func:`ssald_index.schema.objects_schema`, ``ingested_at`` now.
    """
    dim = int(embeddings.shape[1])
    schema = objects_schema(dim)
    now = datetime.now(UTC)
    records: list[dict[str, Any]] = []
    for objid, m in zip(objids, meta):
        row: dict[str, Any] = dict.fromkeys(OBJECT_METADATA_COLUMNS)
        row.update((catalogue.row(objid) if catalogue is not None else None) or {})
        for key in ("ra", "dec"):
            if row.get(key) is None:
                row[key] = m[key]
        row.update(
            objid=objid, survey=m["survey"], bands=m["bands"], source=m["source"], model_id=model_id, ingested_at=now
        )
        row.update(m.get("morphology") or dict.fromkeys(MORPHOLOGY_COLUMNS))
        records.append(row)
    columns = (*OBJECT_METADATA_COLUMNS, *MORPHOLOGY_COLUMNS)
    table = pa.Table.from_pylist(records, schema=pa.schema([schema.field(c) for c in columns]))
    flat = pa.array(np.ascontiguousarray(embeddings, dtype=np.float32).ravel())
    return table.append_column(schema.field("embedding"), pa.FixedSizeListArray.from_arrays(flat, dim))


_ATTACHED: dict[str, np.ndarray] = {}


def _slots(path: str, shape: tuple[int, ...]) -> np.ndarray:
    """The slot ring at ``path`` in this worker process, mapped once."""
    ring = _ATTACHED.get(path)
    if ring is None:
        _ATTACHED.clear()  # a new job's ring replaces the old one in a reused worker
        ring = _ATTACHED[path] = np.memmap(path, dtype=np.float32, mode="r+", shape=shape)
    return ring


def prepare_into_slot(items: Sequence[Item], spec: Spec, ring: str, shape: tuple[int, ...], slot: int) -> Prepared:
    """:func:`prepare`, with the normalised stamps written into ``slot`` of the shared ring at path ``ring``
    instead of returned: ``cubes`` comes back as ``None`` and the good stamps are the first ``len(objids)`` of
    the slot."""
    out = prepare(items, spec)
    if out.cubes is not None:
        _slots(ring, shape)[slot, : len(out.cubes)] = out.cubes
        out.cubes = None
    return out


class _SlotRing:
    """``slots`` blocks of ``task_size`` stamps shared with the workers, one per task in flight.

    A file mapped by the job and its workers: in /dev/shm (memory) when it has room for the ring twice over,
    else in the temporary folder (containers often give /dev/shm 64 MiB; the pages then stay in the page cache).
    The file is removed when the job closes the ring; a job killed before that leaves it, and the next ring
    created on the machine removes the files of jobs that are no longer running (the name holds the pid).
    """

    PREFIX = "ssald-ingest-ring-"

    def __init__(self, slots: int, task_size: int, stamp_shape: tuple[int, ...]) -> None:
        self.shape = (slots, task_size, *stamp_shape)
        nbytes = int(np.prod(self.shape)) * 4
        shm = os.path.isdir("/dev/shm") and shutil.disk_usage("/dev/shm").free >= 2 * nbytes
        folder = "/dev/shm" if shm else tempfile.gettempdir()
        _remove_stale_rings(folder, self.PREFIX)
        handle, self.path = tempfile.mkstemp(prefix=f"{self.PREFIX}{os.getpid()}-", suffix=".f32", dir=folder)
        os.ftruncate(handle, nbytes)
        os.close(handle)
        self.array: np.ndarray | None = np.memmap(self.path, dtype=np.float32, mode="r+", shape=self.shape)
        self.free = list(range(slots))

    def take(self, slot: int, n: int) -> np.ndarray:
        """A copy of the first ``n`` stamps of ``slot``, which is free again."""
        assert self.array is not None
        out = np.array(self.array[slot, :n])
        self.free.append(slot)
        return out

    def close(self) -> None:
        self.array = None
        os.unlink(self.path)


def _remove_stale_rings(folder: str, prefix: str) -> None:
    """Remove ring files of processes that no longer exist (jobs killed before closing their ring)."""
    for name in os.listdir(folder):
        if not name.startswith(prefix):
            continue
        pid = name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                continue


class Prefetcher:
    """Run :func:`prepare` over tasks of ``task_size`` items with at most ``window`` tasks in flight.

    Parameters
    ----------
    spec : Spec
        Passed to every :func:`prepare` call.
    workers : int
        Worker processes; ``0``: one thread of this process prepares while the caller embeds (no
        process start-up, no pickling of stamps; reading, the normaliser's compiled passes and
        ONNX Runtime all release the GIL, so the stages overlap).
    task_size : int
        Items per task.
    window : int, optional
        Tasks in flight (default ``2 * workers + 1``): bounds memory whatever the input size, and is the
        prefetch depth that keeps stamps ready while the caller embeds.
    shared : bool
        Worker processes hand stamps over in shared memory (:class:`_SlotRing`); ``False``: they are pickled
        back.

    Attributes
    ----------
    transport : str
        ``"thread"``, ``"shared memory"`` or ``"pickle"``.
    """

    def __init__(
        self, spec: Spec, workers: int, task_size: int = 64, window: int | None = None, shared: bool = True
    ) -> None:
        self.spec = spec
        self.task_size = max(1, int(task_size))
        self.window = window or 2 * max(workers, 1) + 1
        self._ring: _SlotRing | None = None
        if workers > 0:
            # forkserver: workers fork from a clean process, not from one holding ORT and writer threads.
            context = multiprocessing.get_context("forkserver" if os.name == "posix" else "spawn")
            self._executor: Executor = ProcessPoolExecutor(workers, mp_context=context)
            if shared:
                stamp = (len(spec.bands), spec.stamp_size, spec.stamp_size)
                self._ring = _SlotRing(self.window, self.task_size, stamp)
            self.transport = "shared memory" if shared else "pickle"
        else:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="ingest-prepare")
            self.transport = "thread"

    def _submit(self, task: Sequence[Item]) -> tuple[int, int | None, Future]:
        if self._ring is None:
            return len(task), None, self._executor.submit(prepare, task, self.spec)
        slot = self._ring.free.pop()
        path, shape = self._ring.path, self._ring.shape
        return len(task), slot, self._executor.submit(prepare_into_slot, task, self.spec, path, shape, slot)

    def _result(self, slot: int | None, future: Future) -> Prepared:
        try:
            prepared = future.result()
        except BaseException:
            if slot is not None and self._ring is not None:
                self._ring.free.append(slot)
            raise
        if slot is not None and self._ring is not None:
            prepared.cubes = self._ring.take(slot, len(prepared.objids)) if prepared.objids else None
            if prepared.cubes is None:
                self._ring.free.append(slot)
        return prepared

    def map(self, items: Sequence[Item]) -> Iterator[tuple[int, Prepared]]:
        """Yield ``(n_items, Prepared)`` per task, in input order."""
        pending: deque[tuple[int, int | None, Future]] = deque()
        for lo in range(0, len(items), self.task_size):
            pending.append(self._submit(items[lo : lo + self.task_size]))
            if len(pending) >= self.window:
                n, slot, fut = pending.popleft()
                yield n, self._result(slot, fut)
        while pending:
            n, slot, fut = pending.popleft()
            yield n, self._result(slot, fut)

    def close(self) -> None:
        """Stop the workers and free the shared memory."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self._ring is not None:
            self._ring.close()
            self._ring = None

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
