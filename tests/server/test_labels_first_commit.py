"""``ssald serve`` killed during the first ``SubmitLabels`` (the one that creates ``labels``), then restarted.

The restarted server must start, answer ``Stats``, ``NextToLabel`` and ``SubmitLabels`` as if the killed
request had never come (its client saw no acknowledgement), and log that it set the half-created table
aside (issue 15, fault 2: before, the folder left by the kill wedged every labels RPC).
"""

from __future__ import annotations

import threading

from clients import SsaldClient
from ssald_index import registry
from ssald_index.active.labels import read_labels
from ssald_index.schema import LABELS
from tests.first_commit import (
    HALF_CREATED,
    age,
    ensure_half_created,
    kill_when_created,
    seeded_delays,
    table_folder,
    table_state,
)
from tests.server.helpers import serve_process, write_db

LABEL = "dual_nucleus"


def _submit_until_killed(db_path, labels, delay: float) -> str:
    """Start a server, send ``labels`` (the first ever), SIGKILL the server ``delay`` s into the commit."""
    with serve_process(db_path) as (proc, address), SsaldClient(address, timeout=60) as client:
        answers: list = []

        def submit() -> None:
            try:
                answers.append(client.submit_labels(labels, user="killed"))
            except Exception as exc:  # noqa: BLE001 - a killed server answers UNAVAILABLE
                answers.append(exc)

        sender = threading.Thread(target=submit)
        sender.start()
        kill_when_created(lambda: proc.poll() is None, proc.kill, table_folder(db_path, LABELS), delay)
        sender.join(60)
        assert answers, "SubmitLabels neither answered nor failed"
    return table_state(db_path, LABELS)


def test_serve_killed_during_first_submit_labels_then_restarted_works(tmp_path):
    db_path = tmp_path / "ssald.lance"
    ids = [r["objid"] for r in write_db(db_path)]
    killed = [(o, LABEL) for o in ids[:4]]
    # One kill (a server start costs seconds; tests/ssald_index/test_first_commit_kill.py kills many writes).
    delay = seeded_delays("labels", LABELS, tmp_path / "timing", "15-serve", 1)[0]
    state = _submit_until_killed(db_path, killed, delay)
    print(f"kill {delay * 1000:.1f} ms into the commit: {state}")
    ensure_half_created([state], "labels", LABELS, db_path)  # a late kill: leave what one inside the commit leaves
    assert table_state(db_path, LABELS) == HALF_CREATED
    age(table_folder(db_path, LABELS), 2 * registry.SETTLE_SECONDS)

    log = tmp_path / "serve.log"
    good = [(ids[i], LABEL if i % 3 == 0 else f"not_{LABEL}") for i in range(10, 19)]
    with log.open("w") as stderr, serve_process(db_path, stderr=stderr) as (_, address):
        with SsaldClient(address, timeout=60) as client:
            before = client.stats()
            assert (before["n_labels"], before["label_counts"]) == (0, {})
            assert len(client.next_to_label(LABEL, n=5)) == 5
            assert client.submit_labels(good, user="ann").n_written == len(good)
            stats = client.stats()
            assert (stats["n_labels"], stats["n_labelled_objects"]) == (9, 9)
            assert stats["label_counts"] == {LABEL: 3, f"not_{LABEL}": 6}
            batch = client.next_to_label(LABEL, n=1000, strategy="uncertainty")
            assert (batch.n_positive, batch.n_negative) == (3, 6)
            assert {item.objid for item in batch}.isdisjoint(o for o, _ in good)
    text = log.read_text()
    assert f"table {LABELS!r} was half-created" in text, text[-2000:]
    assert len(list(db_path.glob(f"{LABELS}.lance.incomplete-*"))) == 1
    assert [(r["objid"], r["user"]) for r in read_labels(db_path).to_pylist()] == [(o, "ann") for o, _ in good]
