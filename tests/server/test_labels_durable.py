"""Labels acknowledged by SubmitLabels survive a SIGKILL of the server: `ssald serve` as a real process."""

from __future__ import annotations

import os
import signal
import threading
import time

from clients import SsaldClient
from clients.errors import Unavailable
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


# In the child server: every retrain first sleeps, so the test can kill it mid-retrain, labels committed.
SLOW_RETRAIN = """
import time
from ssald_index.active import scores
_retrain = scores.retrain
def _slow(*args, **kwargs):
    time.sleep(120)
    return _retrain(*args, **kwargs)
scores.retrain = _slow
"""


def test_retry_after_sigkill_during_retrain_stores_labels_once(tmp_path):
    """Fault 9: killed while retraining, the server had committed labels its client saw fail; a retry stored
    them twice. Now the retry with the same request_id is a replay: the labels are on disk exactly once."""
    db_path = tmp_path / "ssald.lance"
    ids = [r["objid"] for r in write_db(db_path)]
    batch = [(ids[i], LABEL if i % 4 == 0 else f"not_{LABEL}") for i in range(8)]
    failures = []
    with serve_process(db_path, prelude=SLOW_RETRAIN) as (proc, address):
        with SsaldClient(address, timeout=150) as client:

            def submit() -> None:
                try:
                    client.submit_labels(batch, retrain=True, request_id="kill-0001", retries=1)
                except Unavailable as exc:
                    failures.append(exc)

            worker = threading.Thread(target=submit)
            worker.start()
            deadline = time.monotonic() + 60
            while read_labels(db_path).num_rows < len(batch) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert read_labels(db_path).num_rows == len(batch), "the labels were never committed"
            os.kill(proc.pid, signal.SIGKILL)  # mid-retrain: the retrain sleeps for two minutes
            assert proc.wait(10) == -signal.SIGKILL
            worker.join(30)
    assert len(failures) == 1 and failures[0].code == "UNAVAILABLE"  # the client saw its call fail
    committed = scores.label_version(db_path)

    with serve_process(db_path) as (_, address), SsaldClient(address, timeout=60) as client:
        reply = client.submit_labels(batch, retrain=True, request_id="kill-0001")
        stats = client.stats()
    assert reply.replayed and (reply.n_written, reply.labels_version) == (len(batch), committed)
    assert reply.retrained[0].run is not None and (
        reply.retrained[0].run.n_positive,
        reply.retrained[0].run.n_negative,
    ) == (2, 6)
    on_disk = read_labels(db_path).to_pylist()
    assert [(r["objid"], r["label"], r["request_id"]) for r in on_disk] == [(o, lab, "kill-0001") for o, lab in batch]
    assert (stats["n_labels"], stats["label_counts"]) == (8, {LABEL: 2, f"not_{LABEL}": 6})
