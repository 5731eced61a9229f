"""Load benchmark of ``ssald serve``: concurrent clients with a realistic mix of RPCs, for a fixed time.

Usage (figures in docs/BENCHMARKS.md, "Service hardening (issue 15)")::

    python bench/bench_load.py --workdir /tmp/ssald_load --clients 8 32 64 --seconds 60

Builds (once, cached in ``--workdir``) a 5,000-object table of clustered 128-d unit vectors with the
``bench/knn_data.py`` catalogue columns, anomaly scores and every index of ``ssald index``, or serves
``--db`` (e.g. the ``db`` of a ``ssald demo`` work directory). Starts ``ssald serve`` as a subprocess and,
for each ``--clients`` value, runs that many client threads spread over ``--procs`` processes for
``--seconds``, each thread on its own channel, calling in a loop (weights in :data:`MIX`): FindSimilar,
FindSimilar with a metadata filter, ConeSearch on a catalogued position, GetObject, SearchVector, Stats
and Anomalies. Reports throughput, p50/p99 per RPC, errors by status code, and the server's RSS before
and after each run (``/proc/PID/status``). Prints a JSON document and writes ``WORKDIR/load.json``.

Clients and server share the machine: on a small one the clients' CPU is taken from the server.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

#: Relative weights of the RPC mix (a person browsing neighbours, with some catalogue look-ups).
MIX = {
    "FindSimilar": 30,
    "FindSimilarFiltered": 10,
    "ConeSearch": 15,
    "GetObject": 20,
    "SearchVector": 15,
    "Stats": 5,
    "Anomalies": 5,
}
TIMEOUT = 30.0


def ensure_table(work: Path, n: int = 5000, dim: int = 128) -> Path:
    """The database of an ``n``-object table in ``work``, built on the first call (``bench_knn.build_table``)."""
    from bench.bench_knn import build_table
    from bench.knn_data import clustered_vectors

    work.mkdir(parents=True, exist_ok=True)
    vectors, _ = clustered_vectors(work, n, dim, clusters=50, n_queries=10)
    build_table(work, vectors, {})
    return work / "db"


def catalogue(db: Path) -> dict[str, list]:
    """objid, ra and dec of every object of the table (the clients' query pool) and its dimension."""
    from ssald_index.store import ObjectStore

    store = ObjectStore.open(db)
    rows = store.table.to_lance().to_table(columns=["objid", "ra", "dec"]).to_pydict()
    return {**rows, "dim": [store.dim]}


def rss_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process in KiB, from ``/proc/PID/status``."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS", "VmHWM")):
            out[line.split(":")[0]] = int(line.split()[1])
    return out


def start_server(db: Path, root: Path, log_path: Path, workers: int, extra: list[str] | None = None):
    """``ssald serve --db DB --port 0`` run from the checkout ``root``; (process, address), stderr to ``log_path``."""
    command = [sys.executable, "-u", "-m", "clients.cli", "serve", "--db", str(db), "--port", "0", "--refresh", "0"]
    command += ["--workers", str(workers), *(extra or [])]
    env = {**os.environ, "PYTHONPATH": str(root)}
    log = open(log_path, "wb")  # noqa: SIM115 - the server writes to it until stop_server
    proc = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    log.close()
    line = proc.stdout.readline()
    match = re.fullmatch(r"listening on (\S+)\n", line)
    if not match:
        proc.kill()
        raise RuntimeError(f"server did not start: {line!r}; see {log_path}")
    return proc, match.group(1)


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
    proc.stdout.close()


def _requests(pool: dict[str, list], rng: random.Random):
    """(rpc name, stub method name, request) drawn from :data:`MIX`."""
    from proto import ssald_pb2

    names, weights = list(MIX), list(MIX.values())
    dim = pool["dim"][0]
    while True:
        name = rng.choices(names, weights)[0]
        i = rng.randrange(len(pool["objid"]))
        objid = pool["objid"][i]
        if name == "FindSimilar":
            yield name, "FindSimilar", ssald_pb2.FindSimilarRequest(objid=objid, k=10)
        elif name == "FindSimilarFiltered":
            where = ssald_pb2.Filter(z_max=0.2, spec_class=["GALAXY"])
            yield name, "FindSimilar", ssald_pb2.FindSimilarRequest(objid=objid, k=10, filter=where)
        elif name == "ConeSearch":
            request = ssald_pb2.ConeSearchRequest(ra=pool["ra"][i], dec=pool["dec"][i], radius_arcsec=2, k=10)
            yield name, "ConeSearch", request
        elif name == "GetObject":
            yield name, "GetObject", ssald_pb2.GetObjectRequest(objid=objid)
        elif name == "SearchVector":
            vector = [rng.gauss(0, 1) for _ in range(dim)]
            yield name, "SearchVector", ssald_pb2.SearchVectorRequest(vector=vector, k=10)
        elif name == "Stats":
            yield name, "Stats", ssald_pb2.StatsRequest()
        else:
            yield name, "Anomalies", ssald_pb2.AnomaliesRequest(n=20)


def _client_thread(address: str, pool: dict, seed: int, end: float, out: dict) -> None:
    import grpc

    from proto import ssald_pb2_grpc

    rng = random.Random(seed)
    with grpc.insecure_channel(address) as channel:
        stub = ssald_pb2_grpc.SsaldStub(channel)
        for name, method, request in _requests(pool, rng):
            if time.perf_counter() >= end:
                break
            begin = time.perf_counter()
            try:
                getattr(stub, method)(request, timeout=TIMEOUT)
                code = "OK"
            except grpc.RpcError as error:
                code = error.code().name
            out.setdefault(name, []).append(time.perf_counter() - begin)
            out.setdefault("codes", Counter())[f"{name}:{code}"] += 1


def _client_process(address: str, pool: dict, threads: int, seed: int, start: float, seconds: float, box) -> None:
    time.sleep(max(0.0, start - time.time()))
    end = time.perf_counter() + seconds
    results = [{} for _ in range(threads)]
    workers = [
        threading.Thread(target=_client_thread, args=(address, pool, seed * 1000 + t, end, results[t]))
        for t in range(threads)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    merged: dict = {"codes": Counter()}
    for r in results:
        merged["codes"].update(r.pop("codes", Counter()))
        for name, times in r.items():
            merged.setdefault(name, []).extend(times)
    box.put(merged)


def run_load(address: str, pool: dict, clients: int, procs: int, seconds: float) -> dict:
    """``clients`` threads over ``procs`` processes for ``seconds``: throughput, latencies, codes."""
    ctx = mp.get_context("spawn")
    box = ctx.Queue()
    procs = min(procs, clients)
    shares = [clients // procs + (1 if p < clients % procs else 0) for p in range(procs)]
    start = time.time() + 3.0  # every process imported and connected before the clock starts
    workers = [
        ctx.Process(target=_client_process, args=(address, pool, n, p, start, seconds, box))
        for p, n in enumerate(shares)
    ]
    for w in workers:
        w.start()
    parts = [box.get() for _ in workers]
    for w in workers:
        w.join()
    codes: Counter = Counter()
    times: dict[str, list[float]] = {}
    for part in parts:
        codes.update(part.pop("codes"))
        for name, values in part.items():
            times.setdefault(name, []).extend(values)
    total = sum(len(v) for v in times.values())
    per_rpc = {
        name: {
            "n": len(v),
            "p50_ms": round(float(np.percentile(v, 50)) * 1e3, 2),
            "p99_ms": round(float(np.percentile(v, 99)) * 1e3, 2),
        }
        for name, v in sorted(times.items())
    }
    errors = {k: n for k, n in sorted(codes.items()) if not k.endswith(":OK")}
    return {
        "clients": clients,
        "processes": procs,
        "seconds": seconds,
        "requests": total,
        "requests_per_s": round(total / seconds, 1),
        "errors": errors,
        "per_rpc": per_rpc,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", type=Path, default=Path("/tmp/ssald_load"), help="table cache and results")
    p.add_argument("--db", type=Path, default=None, help="serve this database instead of building one")
    p.add_argument("--n", type=int, default=5000, help="objects of the built table")
    p.add_argument("--clients", type=int, nargs="+", default=[8, 32, 64])
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--procs", type=int, default=2, help="client processes the threads are spread over")
    p.add_argument("--workers", type=int, default=8, help="the server's --workers")
    args = p.parse_args(argv)

    db = args.db or ensure_table(args.workdir, args.n)
    pool = catalogue(db)
    proc, address = start_server(db, REPO_ROOT, args.workdir / "load_server.log", args.workers)
    results = {"db": str(db), "objects": len(pool["objid"]), "cpus": os.cpu_count(), "runs": []}
    try:
        run_load(address, pool, 2, 1, 3.0)  # warm-up: table open, caches filled
        for clients in args.clients:
            before = rss_kb(proc.pid)
            run = run_load(address, pool, clients, args.procs, args.seconds)
            after = rss_kb(proc.pid)
            run["server_rss_mb"] = {"start": before["VmRSS"] / 1024, "end": after["VmRSS"] / 1024}
            run["server_peak_rss_mb"] = after["VmHWM"] / 1024
            results["runs"].append(run)
            print(json.dumps(run), flush=True)
    finally:
        stop_server(proc)
    (args.workdir / "load.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
