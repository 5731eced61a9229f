"""Ingest throughput: end-to-end ``ssald ingest`` against the inference-only ceiling of the same model and batch.

Usage::

    python bench/bench_ingest.py --model model.onnx --survey survey --n 100000 --workdir /tmp/ingest_bench

``--survey`` is a folder from ``ssald simulate`` (stamps/*.fits + catalogue.fits). Its stamps are
repeated under distinct objids until there are ``--n`` of them, so the job reads, validates,
normalises, embeds and writes ``n`` distinct objects. ``--format fits`` (default) writes one FITS
file per object (the OBJID card rewritten); ``--format npy`` writes one ``(n, B, H, W)`` float32
array with its objid array beside it (``stamps.npy`` + ``stamps_objid.npy``), the bulk layout of
HDF5/NPY survey dumps, where reading a stamp is a memory copy instead of a FITS parse. The ceiling is
ONNX Runtime alone on already-normalised stamps in memory, with the same session options and
batch size, measured before and after the end-to-end run (the machine is shared: their mean is
used). Because other users' load moves wall-clock rates by 2-3x here, the ratio is also given in
CPU time: inference-only CPU ms per stamp over the job's CPU ms per stamp (process and workers). The
job's final step, building the new table's indexes (IVF centroids, IVF_RQ, compaction), is a one-off per
table rather than per stamp: the table also gives the rate from process start to the last commit.
CPU and memory are sampled from /proc for the job's whole process tree (forkserver workers are not
its children, so getrusage would miss them): peak RSS of the largest process and of all together.
The job ends with every object scored (``density_score``), so "whole job" includes the scores; the
script checks that no row was left unscored. ``--compare-scorers`` then times, on the table the job
wrote, the scorer the job ran (partition scan, every row) against the one it ran before (Lance ANN
search, a sample) and checks both against the exact scan (``bench/bench_density.py``).
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_density import compare_scorers, print_table, report  # noqa: E402
from encoders.embedder import OnnxEmbedder  # noqa: E402
from encoders.stamps import load_stamps, read_stamp  # noqa: E402

__all__ = ["ceiling", "main", "make_array_input", "make_input", "run_sampled"]


def make_array_input(survey: Path, n: int, out: Path, dtype: str = "float32") -> Path:
    """Write ``n`` stamps with distinct objids as ``out/stamps.npy`` + ``out/stamps_objid.npy``; returns the array.

    ``dtype`` ``float16`` halves the input (1M stamps of 5 x 64 x 64: 41 GB instead of 82 GB); ingest reads any
    dtype as float32.
    """
    array, objids = out / "stamps.npy", out / "stamps_objid.npy"
    if objids.exists() and len(np.load(objids)) == n and np.load(array, mmap_mode="r").dtype == dtype:
        return array
    out.mkdir(parents=True, exist_ok=True)
    sources = sorted((survey / "stamps").glob("*.fits"))
    raw = np.stack([read_stamp(p).data for p in sources]).astype(np.float32)
    images = np.lib.format.open_memmap(array, mode="w+", dtype=dtype, shape=(n, *raw.shape[1:]))
    for lo in range(0, n, len(raw)):
        hi = min(n, lo + len(raw))
        images[lo:hi] = raw[: hi - lo]
    images.flush()
    del images
    np.save(objids, 9_000_000_000_000 + np.arange(n, dtype=np.int64))
    return array


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


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, ppid in parents.items() if ppid in frontier]
        found += frontier
    return found


def _proc(pid: int) -> tuple[float, int, int] | None:
    """CPU seconds, resident and peak-resident KiB of one live process (``None`` once it has gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    kib = {line.split(":")[0]: int(line.split()[1]) for line in status.splitlines() if line.startswith("Vm")}
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return cpu, kib.get("VmRSS", 0), kib.get("VmHWM", 0)


def run_sampled(cmd: list[str], every: float = 0.5) -> tuple[subprocess.CompletedProcess, float, float, float]:
    """Run ``cmd``, sampling its process tree from /proc: (result, CPU seconds, peak RSS MiB of the largest
    process, peak summed RSS MiB). Workers of a forkserver are not children of the job, so getrusage misses them."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cpu: dict[int, float] = {}
    hwm: dict[int, int] = {}
    peak_sum = 0
    while proc.poll() is None:
        total = 0
        for pid in _descendants(proc.pid):
            sample = _proc(pid)
            if sample is not None:
                cpu[pid], hwm[pid] = sample[0], max(hwm.get(pid, 0), sample[2])
                total += sample[1]
        peak_sum = max(peak_sum, total)
        time.sleep(every)
    out, err = proc.communicate()
    result = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    return result, sum(cpu.values()), max(hwm.values(), default=0) / 1024, peak_sum / 1024


def ceiling(model: Path, normalised: np.ndarray, batch_size: int, n: int, threads: int | None) -> tuple[float, float]:
    """ONNX Runtime alone on ``n`` in-memory normalised stamps (cycled), same batch size.

    Returns stamps per wall second and CPU milliseconds per stamp (all threads).
    """
    embedder = OnnxEmbedder(model, intra_op_threads=threads)
    reps = -(-n // len(normalised))
    data = np.concatenate([normalised] * reps)[:n]
    embedder.embed(data[:batch_size], batch_size=batch_size)  # warm-up
    start, cpu = time.perf_counter(), _cpu(resource.RUSAGE_SELF)
    embedder.embed(data, batch_size=batch_size)
    return n / (time.perf_counter() - start), 1000 * (_cpu(resource.RUSAGE_SELF) - cpu) / n


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, required=True, help="ONNX model from `ssald export`")
    p.add_argument("--survey", type=Path, required=True, help="folder from `ssald simulate`")
    p.add_argument("--n", type=int, default=100_000, help="stamps to ingest (default 100000)")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/ingest_bench"), help="input and database folder")
    p.add_argument("--format", choices=["fits", "npy"], default="fits", help="one FITS per object, or one array")
    p.add_argument(
        "--dtype", choices=["float32", "float16"], default="float32", help="pixels of the npy input (default float32)"
    )
    p.add_argument("--batch-size", type=int, default=256, help="ONNX Runtime batch (default 256)")
    p.add_argument("--chunk-size", type=int, default=2048, help="stamps per commit (default 2048)")
    p.add_argument("--workers", type=int, default=None, help="decoding processes (default: the job's)")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default: all cores)")
    p.add_argument("--ceiling-n", type=int, default=10_000, help="stamps per ceiling measurement (default 10000)")
    p.add_argument("--no-morphology", action="store_true", help="leave the morph_* columns empty (ssald ingest's flag)")
    p.add_argument(
        "--compare-scorers",
        action="store_true",
        help="after the job, time the old and new anomaly scorers on its table and check them against exact",
    )
    args = p.parse_args(argv)

    t = time.perf_counter()
    if args.format == "npy":
        data = make_array_input(args.survey, args.n, args.workdir / "input_npy", args.dtype)
    else:
        data = make_input(args.survey, args.n, args.workdir / "input")
    print(f"input: {args.n} {args.format} stamps in {data} ({time.perf_counter() - t:.0f} s to prepare)", flush=True)
    sample = sorted((args.survey / "stamps").glob("*.fits"))[:1000]
    normalised = load_stamps(sample, OnnxEmbedder(args.model).lupton, progress=False)
    before, cpu_before = ceiling(args.model, normalised, args.batch_size, args.ceiling_n, args.threads)
    print(f"ceiling before: {before:.0f} stamps/s, {cpu_before:.2f} CPU ms/stamp", flush=True)

    db = args.workdir / f"db_{args.format}"
    subprocess.run(["rm", "-rf", os.fspath(db)], check=True)
    cmd = [sys.executable, "-m", "clients.cli", "ingest", "--data", os.fspath(data), "--model", os.fspath(args.model)]
    cmd += ["--db", os.fspath(db), "--catalogue", os.fspath(args.survey / "catalogue.fits")]
    cmd += ["--batch-size", str(args.batch_size), "--chunk-size", str(args.chunk_size), "--no-progress"]
    cmd += ["--no-morphology"] if args.no_morphology else []
    cmd += ["--workers", str(args.workers)] if args.workers is not None else []
    cmd += ["--threads", str(args.threads)] if args.threads is not None else []
    load = os.getloadavg()[0]
    start = time.perf_counter()
    run, cpu_e2e, rss_mib, rss_sum_mib = run_sampled(cmd)
    wall = time.perf_counter() - start
    if run.returncode != 0:
        print(run.stdout, run.stderr, file=sys.stderr)
        return run.returncode
    summary = run.stdout.strip().splitlines()[0]
    ingested = int(re.search(r"ingested (\d+)", summary).group(1))
    stages = re.search(r"read-to-commit ([\d.]+) s, indexes and scores ([\d.]+) s", summary)
    pipeline_s, finalize_s = float(stages.group(1)), float(stages.group(2))
    from ssald_index.store import ObjectStore

    unscored = ObjectStore.open(db).table.count_rows("density_score IS NULL")
    after, cpu_after = ceiling(args.model, normalised, args.batch_size, args.ceiling_n, args.threads)
    print(f"ceiling after: {after:.0f} stamps/s, {cpu_after:.2f} CPU ms/stamp", flush=True)
    ceil = (before + after) / 2
    rate = ingested / wall
    cpu_ceil, cpu_job = (cpu_before + cpu_after) / 2, 1000 * cpu_e2e / ingested
    rows = [
        ("input", f"{args.format}: {data}"),
        ("stamps ingested", f"{ingested}"),
        ("end-to-end wall (process start to exit)", f"{wall:.1f} s"),
        ("end-to-end rate", f"{rate:.0f} stamps/s"),
        ("inference-only ceiling (mean of before/after)", f"{ceil:.0f} stamps/s ({before:.0f} / {after:.0f})"),
        ("ratio end-to-end / ceiling (wall), every object scored", f"{rate / ceil:.1%}"),
        ("of which: read-to-commit / final indexes and scores", f"{pipeline_s:.1f} s / {finalize_s:.1f} s"),
        ("objects without a density score at exit", f"{unscored}"),
        (
            "process start to last commit (wall minus the final index build): rate, ratio",
            f"{ingested / (wall - finalize_s):.0f} stamps/s, {ingested / (wall - finalize_s) / ceil:.1%}",
        ),
        (
            "read-to-commit rate and ratio to the ceiling",
            f"{ingested / pipeline_s:.0f} stamps/s, {ingested / pipeline_s / ceil:.1%}",
        ),
        ("CPU per stamp: inference only / end-to-end", f"{cpu_ceil:.2f} ms / {cpu_job:.2f} ms"),
        ("ratio by CPU time (load-independent)", f"{cpu_ceil / cpu_job:.1%}"),
        ("peak RSS: largest process / all processes together", f"{rss_mib:.0f} MiB / {rss_sum_mib:.0f} MiB"),
        ("load average at start (1 min)", f"{load:.2f} on {os.cpu_count()} cores"),
        ("job summary", summary),
    ]
    print_table(rows)
    if args.compare_scorers:
        print_table(report(compare_scorers(db)))
    return 0 if unscored == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
