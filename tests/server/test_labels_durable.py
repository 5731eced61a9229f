"""Labels acknowledged by SubmitLabels survive a SIGKILL of the server: `ssald serve` as a real process."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from clients import SsaldClient
from ssald_index.active import scores
from ssald_index.active.labels import read_labels
from tests.server.helpers import write_db

LABEL = "dual_nucleus"
REPO = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def serve_process(db_path: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    """Run ``ssald serve --db DB --port 0`` in a child process; yield it and its address once it listens."""
    command = [sys.executable, "-m", "clients.cli", "serve", "--db", str(db_path), "--port", "0", "--refresh", "0"]
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
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


def test_acknowledged_labels_survive_sigkill(tmp_path):
    db_path = tmp_path / "ssald.lance"
    rows = write_db(db_path)
    ids = [r["objid"] for r in rows]
    first = [(ids[i], LABEL if i % 4 == 0 else f"not_{LABEL}") for i in range(8)]
    second = [(ids[i], LABEL if i % 4 == 0 else f"not_{LABEL}") for i in range(8, 12)]
    with serve_process(db_path) as (proc, address):
        with SsaldClient(address, timeout=60) as client:
            assert client.submit_labels(first, user="ann").n_written == 8
            reply = client.submit_labels(second, user="ann", retrain=True)
        assert reply.retrained[0].run is not None
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL

    on_disk = read_labels(db_path).to_pylist()
    assert [(r["objid"], r["label"], r["user"]) for r in on_disk] == [(o, lab, "ann") for o, lab in first + second]
    run = scores.latest_run(db_path, LABEL)
    assert run is not None and (run.n_positive, run.n_negative) == (3, 9)

    with serve_process(db_path) as (_, address), SsaldClient(address, timeout=60) as client:
        stats = client.stats()
        assert (stats["n_labels"], stats["n_labelled_objects"]) == (12, 12)
        assert stats["label_counts"] == {LABEL: 3, f"not_{LABEL}": 9}
        batch = client.next_to_label(LABEL, n=1000, strategy="uncertainty")
        assert (batch.n_positive, batch.n_negative) == (3, 9)
        assert sorted(item.objid for item in batch) == sorted(ids[12:])
        assert client.candidates(LABEL, n=5).run == reply.retrained[0].run
