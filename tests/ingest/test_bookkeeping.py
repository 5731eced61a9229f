from __future__ import annotations

import numpy as np

from ingest.bookkeeping import Ledger
from ingest.sources import FileItem


def _ledger(done=(), present=()) -> Ledger:
    return Ledger(np.array(sorted(done), np.int64), np.array(sorted(present), np.int64))


def test_rules_in_input_order():
    ledger = _ledger(done=[2, 3], present=[2, 3, 9])
    assert ledger.take(1, "a") == (True, None)
    assert ledger.take(2, "b") == (False, None)  # already embedded by this model: skipped
    embed, bad = ledger.take(1, "c")
    assert not embed and bad == {"source": "c", "objid": 1, "reason": "duplicate objid 1 in the input"}
    assert ledger.take(2, "d")[1]["reason"] == "duplicate objid 2 in the input"
    ledger.quarantined(5)  # a stamp that failed to read: a later copy is a duplicate
    ledger.quarantined(None)
    assert ledger.take(5, "e")[1] is not None
    assert ledger.skipped == 1 and ledger.seen == {1, 2, 5}


def test_todo_skips_known_objids_once():
    items = [FileItem(source=f"{o}.fits", objid=o, path=f"{o}.fits") for o in (1, 2, 2, 3)]
    items.append(FileItem(source="x.fits", objid=None, path="x.fits"))
    ledger = _ledger(done=[2])
    assert ledger.todo(items) == [0, 2, 3, 4]  # the second 2 is left for take(), which quarantines it
    assert ledger.skipped == 1 and ledger.take(2, "2.fits")[1] is not None


def test_all_new_against_the_table_at_start():
    ledger = _ledger(present=[10, 20, 30])
    assert ledger.all_new([1, 11, 31]) and ledger.all_new([])
    assert not ledger.all_new([1, 30]) and not ledger.all_new(np.array([10]))
    assert _ledger().all_new([10])
