"""A small real ``objects`` table and an in-process server over it, shared by the server and client tests."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from ssald_index.schema import objects_schema
from ssald_index.store import ObjectStore

N_OBJECTS = 50
DIM = 16
MODEL_ID = "test-vicreg-0001"
FIRST_OBJID = 1237648720693755918  # SDSS-layout objids exercise the full int64 range
REPO_ROOT = Path(__file__).resolve().parents[2]


def make_rows(n: int = N_OBJECTS, dim: int = DIM, seed: int = 0) -> list[dict[str, Any]]:
    """Rows with random unit embeddings; every third row has no spectrum, every fourth no photometry."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    classes = ["elliptical", "spiral", "dual_agn", "merger", None]
    rows = []
    for i in range(n):
        has_spec = i % 3 != 0
        has_phot = i % 4 != 0
        mags = rng.uniform(15, 22, size=5).astype(np.float32)
        rows.append(
            {
                "objid": FIRST_OBJID + 7 * i,
                "ra": float(rng.uniform(0, 360)),
                "dec": float(rng.uniform(-10, 70)),
                "survey": "SYNTH",
                "bands": "u,g,r,i,z",
                "source": f"stamps/{FIRST_OBJID + 7 * i}.fits",
                **{f"mag_{b}": (float(m) if has_phot else None) for b, m in zip("ugriz", mags)},
                "specobjid": (299489677444933632 + i) if has_spec else None,
                "z": float(np.float32(rng.uniform(0.01, 0.3))) if has_spec else None,
                "z_err": float(np.float32(1e-4)) if has_spec else None,
                "spec_class": "GALAXY" if has_spec else None,
                "spec_subclass": "AGN" if has_spec and i % 2 else None,
                "bpt_class": "Seyfert" if has_spec and i % 2 else None,
                "truth_class": classes[i % len(classes)],
                "model_id": MODEL_ID,
                "embedding": vectors[i].tolist(),
            }
        )
    return rows


def write_db(db_path: Path, rows: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Write ``rows`` (default :func:`make_rows`) as the ``objects`` table of a new database; return them."""
    rows = make_rows() if rows is None else rows
    dim = len(rows[0]["embedding"])
    ObjectStore.write(db_path, pa.Table.from_pylist(rows, schema=objects_schema(dim)))
    return rows


def exact_neighbours(rows: list[dict[str, Any]], objid: int, k: int) -> list[tuple[int, float]]:
    """Brute-force cosine neighbours (objid, distance), the query excluded: the reference for kNN results."""
    ids = np.array([r["objid"] for r in rows])
    vectors = np.array([r["embedding"] for r in rows], dtype=np.float64)
    query = vectors[ids == objid][0]
    distance = 1.0 - vectors @ query / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(query))
    order = [j for j in np.argsort(distance, kind="stable") if ids[j] != objid][:k]
    return [(int(ids[j]), float(distance[j])) for j in order]


@contextlib.contextmanager
def running_server(db_path: Path, **kwargs: Any) -> Iterator[str]:
    """Start ``create_server`` on 127.0.0.1:0 in this process; yield its address; stop it on exit."""
    from server.app import create_server

    server, port = create_server(db_path, "127.0.0.1:0", **kwargs)
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None)


def server_environment(**extra: str) -> dict[str, str]:
    """This process's environment without any ``SSALD_*`` variable (a token exported in the shell), plus ``extra``."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("SSALD_")}, **extra}


@contextlib.contextmanager
def serve_process(
    db_path: Path,
    *flags: str,
    prelude: str = "",
    env: dict[str, str] | None = None,
    stderr: Any = subprocess.DEVNULL,
) -> Iterator[tuple[subprocess.Popen, str]]:
    """Run ``ssald serve --db DB --port 0 --refresh 0 [FLAGS]`` in a child process; yield it and its address
    once it listens (a later ``--refresh`` in ``flags`` wins).

    ``prelude`` is Python run in the child before the server starts (e.g. to slow a step down for a kill test);
    ``env`` replaces the child's environment (default :func:`server_environment`: no token from the shell that
    runs the tests); ``stderr`` (the server's log) goes where ``subprocess.Popen`` is told, by default nowhere
    (``subprocess.PIPE`` keeps it for the test to read).
    """
    serve = ["serve", "--db", str(db_path), "--port", "0", "--refresh", "0", *flags]
    command = [sys.executable, "-m", "clients.cli", *serve]
    if prelude:
        main = "import sys\nfrom clients.cli import main\nsys.exit(main(sys.argv[1:]))"
        command = [sys.executable, "-c", f"{prelude}\n{main}", *serve]
    proc = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=server_environment() if env is None else env,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    timer = threading.Timer(60, proc.kill)  # a server that never says where it listens fails the test, not hangs it
    timer.start()
    try:
        line = proc.stdout.readline()
        timer.cancel()
        match = re.fullmatch(r"listening on (\S+)\n", line)
        assert match, f"server did not start: {line!r}"
        yield proc, match.group(1)
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()


@pytest.fixture(scope="package")
def db(tmp_path_factory):
    """(db_path, rows) of a real 50-object LanceDB table."""
    path = tmp_path_factory.mktemp("db") / "ssald.lance"
    return path, write_db(path)


@pytest.fixture(scope="package")
def address(db):
    """Address of a real server on 127.0.0.1 over ``db``."""
    with running_server(db[0]) as addr:
        yield addr
