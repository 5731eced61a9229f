"""``ssald demo``: the whole product on the embedded synthetic survey, end to end.

Runs the real jobs one after another as ``ssald`` subprocesses, exactly as a user
would type them (simulate -> train -> export -> ingest -> serve), then asks the
server, through the Python client, for the neighbours of a double-nucleus galaxy.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from clients.cli.args import add_seed

__all__ = ["HELP", "add_arguments", "run_demo", "start_server", "stop_server"]

HELP = "simulate, train, export, ingest, serve and query, end to end"

TARGET = "dual_nucleus"


def _step(title: str, argv: Sequence[str]) -> float:
    """Run ``ssald ARGV`` with its output shown; returns its wall time."""
    print(f"\n== {title}: ssald {' '.join(argv)}", flush=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "clients.cli", *argv], check=True)
    return time.perf_counter() - start


def start_server(db: Path, model: Path) -> tuple[subprocess.Popen[str], str]:
    """Start ``ssald serve`` on a free loopback port; the process and its ``HOST:PORT``."""
    print(f"\n== serve: ssald serve --db {db} --model {model} --port 0", flush=True)
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "clients.cli", "serve", "--db", str(db), "--model", str(model), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        print(line, end="", flush=True)
        if line.startswith("listening on "):
            return proc, line.split()[-1]
    proc.kill()
    raise RuntimeError("the server did not print its 'listening on HOST:PORT' line within 120 s")


def stop_server(proc: subprocess.Popen[str]) -> None:
    """Stop a server from :func:`start_server` (SIGTERM, then SIGKILL after 30 s)."""
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=30)
        print(out, end="")
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


def run_demo(workdir: Path, n: int = 5000, seed: int = 0, epochs: int = 4, k: int = 10) -> int:
    """Run the demo in ``workdir``; returns the number of double-nucleus objects among the ``k`` neighbours."""
    from astropy.table import Table

    from clients import SsaldClient
    from clients.cli.similar import format_neighbours

    workdir.mkdir(parents=True, exist_ok=True)
    survey, run, model, db = workdir / "survey", workdir / "run", workdir / "model.onnx", workdir / "db"
    times: dict[str, float] = {}
    if (survey / "catalogue.fits").exists() and len(Table.read(survey / "catalogue.fits")) == n:
        print(f"== simulate: reusing the {n}-object survey in {survey}")
    else:
        times["simulate"] = _step(
            "simulate", ["simulate", "--out", str(survey), "--n", str(n), "--seed", str(seed), "--overwrite"]
        )
    times["train"] = _step(
        "train", ["train", "--data", str(survey), "--run", str(run), "--epochs", str(epochs), "--seed", str(seed)]
    )
    times["export"] = _step("export", ["export", "--run", str(run), "--out", str(model)])
    # The demo's table belongs to the demo: a fresh one per run, so a retrained model never mixes in.
    shutil.rmtree(db, ignore_errors=True)
    times["ingest"] = _step(
        "ingest",
        [
            "ingest",
            "--data",
            str(survey),
            "--catalogue",
            str(survey / "catalogue.fits"),
            "--model",
            str(model),
            "--db",
            str(db),
        ],
    )

    catalogue = Table.read(survey / "catalogue.fits")
    truth = [str(t) for t in catalogue["truth_class"]]
    targets = [int(o) for o, t in zip(catalogue["objid"], truth) if t == TARGET]
    if not targets:
        raise RuntimeError(f"the simulated survey holds no {TARGET} object; use a larger --n")
    prevalence = len(targets) / len(truth)

    start = time.perf_counter()
    server, address = start_server(db, model)
    try:
        with SsaldClient(address, timeout=30.0) as client:
            query = client.get_object(targets[0])
            neighbours = client.find_similar(targets[0], k=k)
            print(f"\n== neighbours of {TARGET} objid {targets[0]} (through gRPC at {address})")
            print(format_neighbours(query, neighbours))
            hits = sum(nb.truth_class == TARGET for nb in neighbours)
            per_query = [sum(nb.truth_class == TARGET for nb in client.find_similar(o, k=k)) for o in targets]
    finally:
        stop_server(server)
    times["serve+query"] = time.perf_counter() - start

    print("\n== timings: " + ", ".join(f"{name} {sec:.0f} s" for name, sec in times.items()))
    print(
        f"over all {len(targets)} {TARGET} queries: mean {sum(per_query) / len(per_query):.1f}/{k} "
        f"{TARGET} neighbours (random would give {prevalence * k:.2f})"
    )
    print(f"dual-nucleus among {k} neighbours: {hits}/{k} (prevalence {prevalence:.1%})")
    return hits


def _demo(args: argparse.Namespace) -> int:
    """Handler of ``ssald demo``."""
    run_demo(args.workdir, n=args.n, seed=args.seed, epochs=args.epochs)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``ssald demo``; it runs :func:`run_demo` in ``--workdir``."""
    parser.add_argument(
        "--workdir", type=Path, default=Path(os.environ.get("SSALD_DEMO_DIR", "ssald_demo")),
        help="folder for the demo's survey, run, model and table (default ./ssald_demo)",
    )  # fmt: skip
    parser.add_argument("--n", type=int, default=5000, help="objects in the synthetic survey (default 5000)")
    add_seed(parser, help="random seed (default 0)")
    parser.add_argument("--epochs", type=int, default=4, help="training epochs (default 4)")
    parser.set_defaults(func=_demo)
