"""Ingest throughput: end-to-end ``ssald ingest`` against the inference-only ceiling of the same model and batch.

Usage::

    python bench/bench_ingest.py --model model.onnx --survey survey --n 100000 --workdir /tmp/ingest_bench

``--survey`` is a folder from ``ssald simulate`` (stamps/*.fits + catalogue.fits). Its stamps are
repeated under distinct objids (the OBJID card is rewritten) until there are ``--n`` FITS files, so
the job reads, validates, normalises, embeds and writes ``n`` distinct objects. The ceiling is
ONNX Runtime alone on already-normalised stamps in memory, with the same session options and
batch size, measured before and after the end-to-end run (the machine is shared: their mean is
used). Peak RSS is the largest resident set of the ingest process and of any of its workers.
Prints a table.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from encoders.embedder import OnnxEmbedder
from encoders.stamps import load_stamps

__all__ = ["ceiling", "make_input", "main"]


def make_input(survey: Path, n: int, out: Path) -> Path:
    """Write ``n`` FITS stamps with distinct objids into ``out/stamps`` by repeating the survey's stamps."""
    stamps = out / "stamps"
    stamps.mkdir(parents=True, exist_ok=True)
    have = len(list(stamps.glob("*.fits")))
    if have >= n:
        return out
    sources = sorted((survey / "stamps").glob("*.fits"))
    raws = [p.read_bytes() for p in sources]
    card = re.compile(rb"OBJID   = +(\d+)")
    for i in range(have, n):
        raw = raws[i % len(raws)]
        objid = 9_000_000_000_000 + i
        # Keep the card 80 characters wide: same header length, same data offset.
        m = card.search(raw)
        new = f"OBJID   = {objid:>20d}".encode()
        raw = raw[: m.start()] + new + raw[m.start() + len(new) :]
        (stamps / f"{objid}.fits").write_bytes(raw)
    return out


def ceiling(model: Path, normalised: np.ndarray, batch_size: int, n: int, threads: int | None) -> float:
    """Stamps/s of ONNX Runtime alone on ``n`` in-memory normalised stamps (cycled), same batch size."""
    embedder = OnnxEmbedder(model, intra_op_threads=threads)
    reps = -(-n // len(normalised))
    data = np.concatenate([normalised] * reps)[:n]
    embedder.embed(data[:batch_size], batch_size=batch_size)  # warm-up
    start = time.perf_counter()
    embedder.embed(data, batch_size=batch_size)
    return n / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, required=True, help="ONNX model from `ssald export`")
    p.add_argument("--survey", type=Path, required=True, help="folder from `ssald simulate`")
    p.add_argument("--n", type=int, default=100_000, help="stamps to ingest (default 100000)")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/ingest_bench"), help="input and database folder")
    p.add_argument("--batch-size", type=int, default=256, help="ONNX Runtime batch (default 256)")
    p.add_argument("--chunk-size", type=int, default=2048, help="stamps per commit (default 2048)")
    p.add_argument("--workers", type=int, default=None, help="decoding processes (default: the job's)")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default: all cores)")
    p.add_argument("--ceiling-n", type=int, default=10_000, help="stamps per ceiling measurement (default 10000)")
    args = p.parse_args(argv)

    t = time.perf_counter()
    data = make_input(args.survey, args.n, args.workdir / "input")
    print(f"input: {args.n} FITS stamps in {data} ({time.perf_counter() - t:.0f} s to prepare)", flush=True)
    sample = sorted((args.survey / "stamps").glob("*.fits"))[:1000]
    normalised = load_stamps(sample, OnnxEmbedder(args.model).lupton, progress=False)
    before = ceiling(args.model, normalised, args.batch_size, args.ceiling_n, args.threads)
    print(f"ceiling before: {before:.0f} stamps/s", flush=True)

    db = args.workdir / "db"
    subprocess.run(["rm", "-rf", os.fspath(db)], check=True)
    cmd = [sys.executable, "-m", "clients.cli", "ingest", "--data", os.fspath(data), "--model", os.fspath(args.model)]
    cmd += ["--db", os.fspath(db), "--catalogue", os.fspath(args.survey / "catalogue.fits")]
    cmd += ["--batch-size", str(args.batch_size), "--chunk-size", str(args.chunk_size), "--no-progress"]
    cmd += ["--workers", str(args.workers)] if args.workers is not None else []
    cmd += ["--threads", str(args.threads)] if args.threads is not None else []
    load = os.getloadavg()[0]
    start = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if run.returncode != 0:
        print(run.stdout, run.stderr, file=sys.stderr)
        return run.returncode
    rss_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    summary = run.stdout.strip().splitlines()[0]
    ingested = int(re.search(r"ingested (\d+)", summary).group(1))
    after = ceiling(args.model, normalised, args.batch_size, args.ceiling_n, args.threads)
    print(f"ceiling after: {after:.0f} stamps/s", flush=True)
    ceil = (before + after) / 2
    rate = ingested / wall
    rows = [
        ("stamps ingested", f"{ingested}"),
        ("end-to-end wall (process start to exit)", f"{wall:.1f} s"),
        ("end-to-end rate", f"{rate:.0f} stamps/s"),
        ("inference-only ceiling (mean of before/after)", f"{ceil:.0f} stamps/s ({before:.0f} / {after:.0f})"),
        ("ratio end-to-end / ceiling", f"{rate / ceil:.1%}"),
        ("peak RSS (largest process)", f"{rss_mib:.0f} MiB"),
        ("load average at start (1 min)", f"{load:.2f} on {os.cpu_count()} cores"),
        ("job summary", summary),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"\n{'measure':<{width}} | value\n{'-' * width}-|------")
    for key, value in rows:
        print(f"{key:<{width}} | {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
