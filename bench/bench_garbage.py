"""Soak of undecodable requests against ``ssald serve``: answers, status codes, memory and log growth.

Usage (figures in docs/BENCHMARKS.md, "Service hardening (issue 15)")::

    python bench/bench_garbage.py --workdir /tmp/ssald_load --seconds 60
    # the same against an older checkout (e.g. before server/wire.py), for comparison:
    git archive 34b5534 | tar -x -C /tmp/ssald_old
    python bench/bench_garbage.py --workdir /tmp/ssald_load --seconds 60 --server-root /tmp/ssald_old

Serves the ``bench/bench_load.py`` table (built once in ``--workdir``) with ``ssald serve`` run from
``--server-root`` (default: this checkout), its log (stderr) written to a file. ``--clients`` threads
over ``--procs`` processes send random bodies that do not parse as the request message (checked with
protobuf before sending) to every RPC in turn, for ``--seconds``. Reports the requests answered per
second, the status codes, the server's RSS before and after (MB, and KB per request) and the bytes of
log written, then checks that the server still answers a Stats call. Writes ``WORKDIR/garbage*.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_load import REPO_ROOT, ensure_table, rss_kb, start_server, stop_server  # noqa: E402

TIMEOUT = 30.0


def garbage_bodies(n: int, seed: int = 0) -> list[bytes]:
    """``n`` random bodies of 1..512 bytes that no request message of ``ssald.v1.Ssald`` parses."""
    from google.protobuf import message_factory
    from google.protobuf.message import DecodeError

    from server.wire import SSALD_SERVICE

    classes = [message_factory.GetMessageClass(m.input_type) for m in SSALD_SERVICE.methods]
    rng = random.Random(seed)
    bodies: list[bytes] = []
    while len(bodies) < n:
        body = rng.randbytes(rng.randint(1, 512))
        failures = 0
        for cls in classes:
            try:
                cls.FromString(body)
            except DecodeError:
                failures += 1
        if failures == len(classes):
            bodies.append(body)
    return bodies


def _sender(address: str, bodies: list[bytes], methods: list[str], end: float, codes: Counter) -> None:
    import grpc

    with grpc.insecure_channel(address) as channel:
        calls = [channel.unary_unary(m, request_serializer=None, response_deserializer=None) for m in methods]
        i = 0
        while time.perf_counter() < end:
            try:
                calls[i % len(calls)](bodies[i % len(bodies)], timeout=TIMEOUT)
                codes["OK"] += 1
            except grpc.RpcError as error:
                codes[error.code().name] += 1
            i += 1


def _sender_process(address: str, threads: int, seed: int, start: float, seconds: float, box) -> None:
    from server.wire import SSALD_SERVICE

    methods = [f"/{SSALD_SERVICE.full_name}/{m.name}" for m in SSALD_SERVICE.methods]
    bodies = garbage_bodies(500, seed)
    time.sleep(max(0.0, start - time.time()))
    end = time.perf_counter() + seconds
    counters = [Counter() for _ in range(threads)]
    workers = [
        threading.Thread(target=_sender, args=(address, bodies, methods, end, counters[t])) for t in range(threads)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    box.put(sum(counters, Counter()))


def _stats_answer(address: str) -> int:
    import grpc

    from proto import ssald_pb2, ssald_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        return ssald_pb2_grpc.SsaldStub(channel).Stats(ssald_pb2.StatsRequest(), timeout=TIMEOUT).n_objects


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", type=Path, default=Path("/tmp/ssald_load"), help="table cache and results")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--clients", type=int, default=16, help="sender threads in all")
    p.add_argument("--procs", type=int, default=2, help="sender processes the threads are spread over")
    p.add_argument("--server-root", type=Path, default=REPO_ROOT, help="checkout whose `ssald serve` runs")
    p.add_argument("--label", default=None, help="name of this run in the output (default: the server root)")
    args = p.parse_args(argv)

    db = ensure_table(args.workdir)
    label = args.label or ("this checkout" if args.server_root == REPO_ROOT else str(args.server_root))
    log_path = args.workdir / f"garbage_server_{os.getpid()}.log"
    proc, address = start_server(db, args.server_root, log_path, workers=8)
    try:
        _stats_answer(address)  # table open before the baseline
        log_before, rss_before = log_path.stat().st_size, rss_kb(proc.pid)
        ctx = mp.get_context("spawn")
        box = ctx.Queue()
        procs = min(args.procs, args.clients)
        shares = [args.clients // procs + (1 if i < args.clients % procs else 0) for i in range(procs)]
        start = time.time() + 3.0
        workers = [
            ctx.Process(target=_sender_process, args=(address, n, i, start, args.seconds, box))
            for i, n in enumerate(shares)
        ]
        for w in workers:
            w.start()
        codes = sum((box.get() for _ in workers), Counter())
        for w in workers:
            w.join()
        time.sleep(1.0)  # the log handler flushes the last records
        rss_after, log_after = rss_kb(proc.pid), log_path.stat().st_size
        alive = _stats_answer(address)
    finally:
        stop_server(proc)
    total = sum(codes.values())
    grown_kb = rss_after["VmRSS"] - rss_before["VmRSS"]
    result = {
        "server": label,
        "seconds": args.seconds,
        "clients": args.clients,
        "requests": total,
        "requests_per_s": round(total / args.seconds, 1),
        "codes": dict(codes),
        "server_rss_mb": {"start": round(rss_before["VmRSS"] / 1024, 1), "end": round(rss_after["VmRSS"] / 1024, 1)},
        "rss_growth_mb": round(grown_kb / 1024, 1),
        "rss_growth_kb_per_request": round(grown_kb / max(total, 1), 3),
        "log_bytes_written": log_after - log_before,
        "stats_after": alive,
    }
    out = args.workdir / f"garbage_{'this' if args.server_root == REPO_ROOT else 'other'}.json"
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
