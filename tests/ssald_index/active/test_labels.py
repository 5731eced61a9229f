"""ssald_index.active.labels: the append-only labels table on disk."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest

from ssald_index.active.labels import (
    MAX_LABEL_LENGTH,
    MAX_LABELS_PER_CALL,
    MAX_NOTE_LENGTH,
    MAX_USER_LENGTH,
    Label,
    add_labels,
    find_request,
    latest_labels,
    negative_of,
    read_labels,
    training_set,
)
from ssald_index.registry import connect
from ssald_index.schema import LABELS, LABELS_SCHEMA


def test_labels_are_append_only_and_latest_wins(tmp_path):
    db = tmp_path / "db"
    assert read_labels(db).num_rows == 0
    add_labels(db, [Label(1, "dual_nucleus", "ann"), Label(2, negative_of("dual_nucleus"), "ann")])
    add_labels(db, [Label(1, "merger", "bob", "looks tidal")])
    assert read_labels(db).num_rows == 3  # nothing overwritten
    latest = latest_labels(db)
    assert latest == {1: "merger", 2: "not_dual_nucleus"}
    rows, y = training_set({**latest, 3: "dual_nucleus"}, "dual_nucleus", np.array([3, 9, 2, 1]))
    assert rows.tolist() == [0, 2, 3] and y.tolist() == [1, 0, 0]
    with pytest.raises(ValueError, match="non-empty string"):
        add_labels(db, [Label(5, "  ")])


def test_limits_are_checked_before_anything_is_written(tmp_path):
    """Fault 5: every limit is an error naming the entry and the limit, and nothing is written."""
    db = tmp_path / "db"
    good = [Label(i, "ring") for i in range(1, MAX_LABELS_PER_CALL + 1)]
    with pytest.raises(
        ValueError, match=f"{MAX_LABELS_PER_CALL + 1} labels in one call; at most {MAX_LABELS_PER_CALL}"
    ):
        add_labels(db, [*good, Label(0, "ring")])
    too_long = "x" * (MAX_LABEL_LENGTH + 1)
    bad = [
        (too_long, r"label entry 1: label of objid 2 'x{40}'\.\.\. \(65 characters\) is longer than 64 characters"),
        ("dual nucleus", "label entry 1: label of objid 2 'dual nucleus' must be letters, digits and underscores"),
    ]
    for label, message in bad:
        with pytest.raises(ValueError, match=message):
            add_labels(db, [Label(1, "ring"), Label(2, label)])
    with pytest.raises(ValueError, match=f"label entry 0: user of objid 1 .* is longer than {MAX_USER_LENGTH}"):
        add_labels(db, [Label(1, "ring", user="u" * (MAX_USER_LENGTH + 1))])
    with pytest.raises(ValueError, match="label entry 0: user of objid 1 'a\\\\x1b\\[2Jb' holds control characters"):
        add_labels(db, [Label(1, "ring", user="a\x1b[2Jb")])
    with pytest.raises(ValueError, match=f"label entry 0: note of objid 1 .* is longer than {MAX_NOTE_LENGTH}"):
        add_labels(db, [Label(1, "ring", note="n" * (MAX_NOTE_LENGTH + 1))])
    with pytest.raises(ValueError, match="request_id 'a b' must be 1..128 letters"):
        add_labels(db, [Label(1, "ring")], request_id="a b")
    assert read_labels(db).num_rows == 0
    # At the limits everything is accepted; a note may hold newlines and tabs, names lose surrounding blanks.
    edge = Label(
        1, " " + "y" * MAX_LABEL_LENGTH + " ", "u" * MAX_USER_LENGTH, "line 1\n\tline 2".ljust(MAX_NOTE_LENGTH)
    )
    assert add_labels(db, [edge]) == 1
    assert read_labels(db).column("label").to_pylist() == ["y" * MAX_LABEL_LENGTH]


def _old_labels_table(db, rows):
    """A labels table as the server before the limits wrote it: no request_id column, any label."""
    old_schema = pa.schema([f for f in LABELS_SCHEMA if f.name != "request_id"])
    now = datetime.now(UTC)
    data = pa.Table.from_pylist(
        [{"objid": o, "label": lab, "user": "", "created_at": now, "note": ""} for o, lab in rows], schema=old_schema
    )
    connect(db).create_table(LABELS, data, schema=old_schema)


def test_old_table_is_read_without_oversized_labels_and_migrated_on_write(tmp_path, caplog):
    db = tmp_path / "db"
    _old_labels_table(db, [(1, "x" * 3_000_000), (2, "merger"), (3, "edge-on")])
    with caplog.at_level(logging.WARNING, logger="ssald_index.active.labels"):
        table = read_labels(db)
    assert "1 row(s) with a label longer than 64 characters" in caplog.text
    assert table.schema.names == LABELS_SCHEMA.names and table.column("request_id").null_count == 2
    assert latest_labels(db) == {2: "merger", 3: "edge-on"}  # short old labels stay, whatever their characters
    assert find_request(db, "r1") is None
    add_labels(db, [Label(4, "ring")], request_id="r1")
    found = find_request(db, "r1")
    opened = connect(db).open_table(LABELS)
    assert "request_id" in opened.schema.names
    assert found.entries == [(4, "ring")] and found.labels_version == opened.version
    add_labels(db, [Label(5, "ring")], request_id="r2")
    assert find_request(db, "r1").labels_version == found.labels_version  # the first version holding it
    assert read_labels(db).column("request_id").to_pylist() == [None, None, "r1", "r2"]
