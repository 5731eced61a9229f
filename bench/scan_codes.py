"""The served scan's first pass, int8 copy against float32 rows, side by side on one table.

Usage (figures in docs/BENCHMARKS.md, "Queries at 10^7")::

    python bench/scan_codes.py --workdir /tmp/bench10m --probes 10 16 32

Opens the ``objects`` table that ``bench/bench_knn.py`` built in ``--workdir`` (and its held-out queries and
exact top-10), loads the served cache as ``ssald serve`` does, and for each probe count times, per query:

- the first pass alone over the same partitions: the float32 product (``Partitions.score``) and the int8
  one (``Partitions.score_codes``), with the rows each reads;
- the whole in-memory query (``MetadataCache.scan``, int8 first pass and exact re-rank of ``4 k`` rows),
  and its recall@10; the recall of the float32 first pass with the same re-rank, for comparison.

One thread (the server keeps BLAS to one thread per query). Prints a JSON document.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

K = 10


def _pct(ms: list[float]) -> dict[str, float]:
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", type=Path, required=True, help="a bench_knn.py work folder (db/, queries, truth)")
    p.add_argument("--probes", type=int, nargs="+", default=[10, 16, 32])
    p.add_argument("--queries", type=int, default=1000)
    args = p.parse_args(argv)

    from bench.knn_data import OBJID0
    from ssald_index.store import ObjectStore

    queries = np.load(args.workdir / "queries.npy")[: args.queries]
    truth = np.load(args.workdir / f"truth_k{K}.npy")[: args.queries]
    store = ObjectStore.open(args.workdir / "db")
    t0 = time.perf_counter()
    store.enable_cache(vectors=True)
    cache = store.cache
    parts, codes, vectors = cache._partitions, cache._codes, cache.vectors  # noqa: SLF001 - measuring internals
    out: dict = {"rows": int(len(vectors)), "dim": int(vectors.shape[1]), "cache_load_s": time.perf_counter() - t0}
    out["bytes_float32"], out["bytes_int8"] = int(vectors.nbytes), int(codes.nbytes)
    none = np.zeros(0, np.int64)
    with threadpool_limits(1, user_api="blas"):
        for q in queries[:20]:  # compile and warm
            cache.scan(q, K, args.probes[0], none, 4 * K)
        out["probes"] = []
        for nprobes in args.probes:
            f32_ms, i8_ms, all_ms, scanned, hits, hits_f32 = [], [], [], [], 0, 0
            for q, t in zip(queries, truth):
                u = (q / np.linalg.norm(q)).astype(np.float32)
                probe = parts.nearest(u, nprobes)
                t1 = time.perf_counter()
                exact = parts.score(vectors, u, probe)
                t2 = time.perf_counter()
                parts.score_codes(codes, u, probe)
                t3 = time.perf_counter()
                pos, _ = cache.scan(q, K, nprobes, none, 4 * K)
                t4 = time.perf_counter()
                f32_ms.append((t2 - t1) * 1e3)
                i8_ms.append((t3 - t2) * 1e3)
                all_ms.append((t4 - t3) * 1e3)
                scanned.append(len(exact))
                found = set((cache.objids[pos] - OBJID0).tolist())
                hits += len(found & set(t[:K].tolist()))
                rows = parts.rows(probe)
                best = rows[np.argpartition(-exact, 4 * K)[: 4 * K]]
                exact_top = best[np.argsort(-(vectors[best] @ u.astype(np.float64)))[:K]]
                hits_f32 += len(set((cache.objids[parts.position[exact_top]] - OBJID0).tolist()) & set(t[:K].tolist()))
            entry = {
                "nprobes": nprobes,
                "rows_scanned_mean": float(np.mean(scanned)),
                "first_pass_float32": _pct(f32_ms),
                "first_pass_int8": _pct(i8_ms),
                "query_in_memory_int8": _pct(all_ms),
                "recall@10_int8": hits / (K * len(queries)),
                "recall@10_float32": hits_f32 / (K * len(queries)),
            }
            print(json.dumps(entry), flush=True)
            out["probes"].append(entry)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
