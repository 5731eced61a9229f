"""Synthetic clustered embeddings and exact neighbours for ``bench/bench_knn.py`` (cached as .npy)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

__all__ = ["clustered_vectors", "exact_topk", "objects_batches", "OBJID0"]

OBJID0 = 1237640000000000000
_CHUNK = 100_000


def _sample(rng: np.random.Generator, centres: np.ndarray, n: int) -> np.ndarray:
    # Cluster sizes follow a power law (a few big populations, many small ones), spread ~0.35 rad.
    weights = 1.0 / np.arange(1, len(centres) + 1) ** 0.8
    label = rng.choice(len(centres), size=n, p=weights / weights.sum())
    spread = rng.uniform(0.2, 0.5, size=len(centres)).astype(np.float32)
    x = centres[label] + rng.standard_normal((n, centres.shape[1]), dtype=np.float32) * (
        spread[label, None] / np.sqrt(centres.shape[1])
    )
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def clustered_vectors(work: Path, n: int, dim: int, clusters: int, n_queries: int, seed: int = 0):
    """``(vectors [n, dim], queries [n_queries, dim])`` float32 unit vectors, cached in ``work``."""
    vpath, qpath = work / "vectors.npy", work / "queries.npy"
    if vpath.exists() and qpath.exists():
        return np.load(vpath, mmap_mode="r"), np.load(qpath)
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.lib.format.open_memmap(vpath, mode="w+", dtype=np.float32, shape=(n, dim))
    for lo in range(0, n, _CHUNK):
        out[lo : lo + _CHUNK] = _sample(rng, centres, min(_CHUNK, n - lo))
    out.flush()
    np.save(qpath, _sample(rng, centres, n_queries))
    return np.load(vpath, mmap_mode="r"), np.load(qpath)


def exact_topk(work: Path, vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Row indices of the exact top-``k`` by cosine similarity, ``[n_queries, k]``, cached."""
    path = work / f"truth_k{k}.npy"
    if path.exists():
        return np.load(path)
    best_s = np.full((len(queries), k), -np.inf, np.float32)
    best_i = np.zeros((len(queries), k), np.int64)
    for lo in range(0, len(vectors), _CHUNK):
        s = np.asarray(queries @ np.asarray(vectors[lo : lo + _CHUNK]).T)
        top = np.argpartition(-s, k, axis=1)[:, :k]
        cand_s = np.concatenate([best_s, np.take_along_axis(s, top, 1)], axis=1)
        cand_i = np.concatenate([best_i, top + lo], axis=1)
        order = np.argsort(-cand_s, axis=1, kind="stable")[:, :k]
        best_s, best_i = np.take_along_axis(cand_s, order, 1), np.take_along_axis(cand_i, order, 1)
    np.save(path, best_i)
    return best_i


def objects_batches(vectors: np.ndarray, seed: int = 1) -> Iterator[pa.RecordBatch]:
    """``objects`` rows for ``vectors``: objid ``OBJID0 + i``, random sky position, z, classes, mag_r."""
    from ssald_index.schema import objects_schema

    schema = objects_schema(vectors.shape[1])
    rng = np.random.default_rng(seed)
    now = datetime.now(UTC)
    for lo in range(0, len(vectors), _CHUNK):
        vec = np.ascontiguousarray(vectors[lo : lo + _CHUNK], dtype=np.float32)
        m = len(vec)
        cols = {f.name: pa.nulls(m, f.type) for f in schema}
        cols["objid"] = pa.array(OBJID0 + np.arange(lo, lo + m), pa.int64())
        cols["ra"] = pa.array(rng.uniform(0, 360, m))
        cols["dec"] = pa.array(np.degrees(np.arcsin(rng.uniform(-1, 1, m))))
        cols["z"] = pa.array(rng.uniform(0.01, 0.4, m).astype(np.float32))
        cols["mag_r"] = pa.array(rng.uniform(14.5, 17.7, m).astype(np.float32))
        cols["spec_class"] = pa.array(rng.choice(["GALAXY", "QSO", "STAR"], m, p=[0.85, 0.1, 0.05]))
        cols["survey"] = pa.array(["BENCH"] * m)
        cols["model_id"] = pa.array(["bench"] * m)
        cols["ingested_at"] = pa.array([now] * m, pa.timestamp("us", tz="UTC"))
        cols["embedding"] = pa.FixedSizeListArray.from_arrays(pa.array(vec.ravel()), vec.shape[1])
        yield pa.RecordBatch.from_pydict(cols, schema=schema)
