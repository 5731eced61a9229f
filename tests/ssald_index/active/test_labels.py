"""ssald_index.active.labels: the append-only labels table on disk."""

from __future__ import annotations

import numpy as np
import pytest

from ssald_index.active.labels import Label, add_labels, latest_labels, negative_of, read_labels, training_set


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
