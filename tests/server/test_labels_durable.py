"""Labels acknowledged by SubmitLabels survive a SIGKILL of the server: `ssald serve` as a real process."""

from __future__ import annotations

import os
import signal

from clients import SsaldClient
from ssald_index.active import scores
from ssald_index.active.labels import read_labels
from tests.server.helpers import serve_process, write_db

LABEL = "dual_nucleus"


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
