"""The bulk embed job: stamps + catalogue -> ONNX embeddings -> LanceDB ``objects`` table.

Stamps are read, checked against the model's preprocessing contract, normalised
with the model's Lupton parameters, embedded in batches and merge-inserted by
objid one chunk at a time, so a re-run never duplicates rows and a crash loses at
most the chunk in flight. Bad stamps go to the ``quarantine`` table with a reason;
the job carries on.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from encoders.embedder import OnnxEmbedder
from encoders.stamps import Stamp, StampError, read_stamp
from ingest.catalogue import Catalogue, read_catalogue
from ssald_index.schema import OBJECT_METADATA_COLUMNS, objects_schema
from ssald_index.store import ObjectStore, TableNotReady, append_quarantine, register_model

__all__ = ["IngestSummary", "ModelMismatch", "find_stamps", "ingest", "check_stamp"]

STAMP_SUFFIXES = (".fits", ".fit", ".fits.gz", ".npy")
MAX_NAN_FRACTION = 0.2


class ModelMismatch(RuntimeError):
    """The table already holds embeddings from another model."""


@dataclass
class IngestSummary:
    """What one ingest run did."""

    ingested: int = 0
    quarantined: int = 0
    without_catalogue_row: int = 0
    catalogue_rows_without_stamp: int = 0
    seconds: float = 0.0
    model_id: str = ""
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Ingested stamps per second."""
        return self.ingested / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        """One-line summary for the terminal."""
        return (
            f"ingested {self.ingested} stamps, quarantined {self.quarantined}, "
            f"{self.without_catalogue_row} without catalogue row, "
            f"{self.catalogue_rows_without_stamp} catalogue rows without stamp, "
            f"in {self.seconds:.1f} s ({self.rate:.0f} stamps/s), model {self.model_id}"
        )


def find_stamps(data_dir: str | os.PathLike[str]) -> list[Path]:
    """Stamp files under ``data_dir/stamps`` (or ``data_dir`` itself), sorted by name."""
    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"stamp directory {os.fspath(root)!r} does not exist")
    base = root / "stamps" if (root / "stamps").is_dir() else root
    return sorted(p for p in base.iterdir() if p.is_file() and p.name.lower().endswith(STAMP_SUFFIXES))


def _objid_of(stamp: Stamp, path: Path) -> int:
    value = stamp.header.get("OBJID")
    if value is not None:
        return int(value)
    stem = path.name.split(".")[0]
    try:
        return int(stem)
    except ValueError:
        raise StampError(f"{path.name}: no OBJID header key and the file name is not an objid") from None


def check_stamp(stamp: Stamp, embedder: OnnxEmbedder) -> str | None:
    """Why ``stamp`` cannot be embedded by ``embedder``'s model, or ``None`` if it can."""
    data = stamp.data
    want = (len(embedder.bands), embedder.stamp_size, embedder.stamp_size)
    if data.shape != want:
        return f"shape {data.shape} does not match the model's {want} ({','.join(embedder.bands)})"
    if tuple(stamp.bands) != tuple(embedder.bands):
        return f"bands {','.join(stamp.bands)} do not match the model's {','.join(embedder.bands)}"
    finite = np.isfinite(data)
    if not finite.any():
        return "all pixels are NaN or infinite"
    nan_fraction = 1.0 - finite.mean()
    if nan_fraction > MAX_NAN_FRACTION:
        return f"{nan_fraction:.0%} of pixels are NaN (limit {MAX_NAN_FRACTION:.0%})"
    if np.ptp(data[finite]) == 0:
        return "stamp is constant"
    return None


def _rows(objids, stamps, paths, embeddings, catalogue, model_id, dim) -> pa.Table:
    schema = objects_schema(dim)
    now = datetime.now(UTC)
    records: list[dict[str, Any]] = []
    for objid, stamp, path in zip(objids, stamps, paths):
        row: dict[str, Any] = {name: None for name in OBJECT_METADATA_COLUMNS}
        row.update((catalogue.row(objid) if catalogue is not None else None) or {})
        header = stamp.header
        row.update(
            objid=objid,
            ra=row["ra"] if row.get("ra") is not None else header.get("RA"),
            dec=row["dec"] if row.get("dec") is not None else header.get("DEC"),
            survey=header.get("SURVEY"),
            bands=",".join(stamp.bands),
            source=os.fspath(path),
            model_id=model_id,
            ingested_at=now,
        )
        records.append(row)
    table = pa.Table.from_pylist(records, schema=pa.schema([schema.field(c) for c in OBJECT_METADATA_COLUMNS]))
    flat = pa.array(np.ascontiguousarray(embeddings, dtype=np.float32).ravel())
    return table.append_column(schema.field("embedding"), pa.FixedSizeListArray.from_arrays(flat, dim))


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
            "normalisation": json.dumps(embedder.lupton.to_dict()),
            "training": meta.get("training_run", ""),
            "diagnostics": json.dumps({}),
        },
    )


def ingest(
    data_dir: str | os.PathLike[str],
    model: str | os.PathLike[str],
    db: str | os.PathLike[str],
    catalogue: str | os.PathLike[str] | None = None,
    batch_size: int = 256,
    chunk_size: int = 2048,
    progress: bool = True,
) -> IngestSummary:
    """Embed every stamp under ``data_dir`` and merge them into the ``objects`` table of ``db``.

    Parameters
    ----------
    data_dir : path
        Folder of stamp files (``data_dir/stamps/*.fits`` or ``data_dir/*.fits``).
    model : path
        ONNX model exported by ``ssald export``; its metadata fixes bands, size and normalisation.
    db : path
        LanceDB database directory (created if missing).
    catalogue : path, optional
        Catalogue joined on objid (see :func:`ingest.catalogue.read_catalogue`).
    batch_size : int
        Stamps per ONNX Runtime call.
    chunk_size : int
        Stamps per table commit: a crash loses at most one chunk.
    progress : bool
        Show a progress bar.

    Returns
    -------
    IngestSummary

    Raises
    ------
    ModelMismatch
        If the table already holds embeddings of another model.
    """
    if batch_size < 1 or chunk_size < 1:
        raise ValueError(f"batch_size and chunk_size must be >= 1, got {batch_size} and {chunk_size}")
    start = time.perf_counter()
    model, db = Path(model), Path(db)
    embedder = OnnxEmbedder(model)
    other = [m for m in _existing_models(db) if m != embedder.model_id]
    if other:
        raise ModelMismatch(
            f"table {os.fspath(db)!r} holds embeddings of model(s) {', '.join(other)}; "
            f"refusing to add model {embedder.model_id} to it (use a new --db)"
        )
    cat: Catalogue | None = read_catalogue(catalogue) if catalogue is not None else None
    paths = find_stamps(data_dir)
    summary = IngestSummary(model_id=embedder.model_id)
    seen: set[int] = set()
    bar = tqdm(total=len(paths), unit="stamp", desc="ingest", disable=not progress)
    for lo in range(0, len(paths), chunk_size):
        good: list[tuple[int, Stamp, Path]] = []
        bad: list[dict[str, Any]] = []
        for path in paths[lo : lo + chunk_size]:
            objid = None
            try:
                stamp = read_stamp(path)
                objid = _objid_of(stamp, path)
                reason = check_stamp(stamp, embedder)
                if reason is None and objid in seen:
                    reason = f"duplicate objid {objid} in the input"
            except (StampError, OSError) as err:
                reason = str(err)
            if reason is None:
                seen.add(objid)
                good.append((objid, stamp, path))
            else:
                bad.append({"source": os.fspath(path), "objid": objid, "reason": reason})
                summary.reasons[reason] = summary.reasons.get(reason, 0) + 1
        if good:
            objids, stamps, spaths = zip(*good)
            cubes = np.stack([np.nan_to_num(s.data, nan=0.0, posinf=0.0, neginf=0.0) for s in stamps])
            embeddings = embedder.embed_raw(cubes, batch_size=batch_size)
            rows = _rows(objids, stamps, spaths, embeddings, cat, embedder.model_id, embedder.embedding_dim)
            ObjectStore.write(db, rows)
            summary.ingested += len(good)
            summary.without_catalogue_row += sum(cat is None or cat.row(o) is None for o in objids)
        append_quarantine(db, bad)
        summary.quarantined += len(bad)
        bar.update(len(good) + len(bad))
        bar.set_postfix(quarantined=summary.quarantined)
    bar.close()
    if summary.ingested:
        ObjectStore.open(db).finalize()
        _register(db, model, embedder)
    if cat is not None:
        summary.catalogue_rows_without_stamp = sum(o not in seen for o in cat.index)
    summary.seconds = time.perf_counter() - start
    return summary
