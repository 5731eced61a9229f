"""The append-only ``labels`` table: every label ever given is kept.

A label is a class name given to an objid by a user (``dual_nucleus``, ``merger``, ``ring``,
``artefact``, ``normal``…). A "no" answer to "is this a dual_nucleus?" is stored as
``not_dual_nucleus``. For a target label L, an object counts as positive when its latest label is L
and as negative when its latest label is anything else; objects never labelled are unlabelled.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from ssald_index.registry import connect, create_table, has_table
from ssald_index.schema import LABELS, LABELS_SCHEMA

__all__ = ["Label", "negative_of", "add_labels", "read_labels", "latest_labels", "training_set", "as_labels"]

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Label:
    """One label given by a user."""

    objid: int
    label: str
    user: str = ""
    note: str = ""


def negative_of(label: str) -> str:
    """The label stored for a "no" answer about ``label``."""
    return f"not_{label}"


def _check(label: Label) -> None:
    if not isinstance(label.label, str) or not label.label.strip():
        raise ValueError(f"label of objid {label.objid} must be a non-empty string, got {label.label!r}")
    if isinstance(label.objid, bool) or not isinstance(label.objid, (int, np.integer)):
        raise ValueError(f"objid must be an integer, got {label.objid!r}")


def add_labels(db_path: PathLike, labels: Iterable[Label]) -> int:
    """Append labels; when this returns, they are committed to disk as one new table version.

    Returns
    -------
    int
        Number of labels written.
    """
    labels = list(labels)
    for label in labels:
        _check(label)
    if not labels:
        return 0
    now = datetime.now(UTC)
    rows = [
        {"objid": int(x.objid), "label": x.label.strip(), "user": x.user, "created_at": now, "note": x.note}
        for x in labels
    ]
    data = pa.Table.from_pylist(rows, schema=LABELS_SCHEMA)
    db = connect(db_path)
    if has_table(db, LABELS):
        db.open_table(LABELS).add(data)
    else:
        create_table(db, LABELS, data, schema=LABELS_SCHEMA)
    return len(rows)


def read_labels(db_path: PathLike) -> pa.Table:
    """Every label ever given, in the order given (empty table when none)."""
    db = connect(db_path)
    if not has_table(db, LABELS):
        return LABELS_SCHEMA.empty_table()
    table = db.open_table(LABELS).to_arrow()
    return table.sort_by([("created_at", "ascending")])


def latest_labels(db_path: PathLike) -> dict[int, str]:
    """objid -> its most recent label."""
    table = read_labels(db_path)
    return dict(zip(table.column("objid").to_pylist(), table.column("label").to_pylist()))


def training_set(latest: dict[int, str], target: str, objids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of labelled objects in ``objids`` and their 0/1 targets for label ``target``.

    Parameters
    ----------
    latest : dict
        :func:`latest_labels` output.
    target : str
        The label to learn.
    objids : ndarray of int
        Objids in row order of the embedding matrix.

    Returns
    -------
    (rows, y) : tuple of int and int ndarrays
    """
    rows = [i for i, o in enumerate(objids.tolist()) if o in latest]
    y = np.array([latest[int(objids[i])] == target for i in rows], dtype=np.int8)
    return np.asarray(rows, dtype=np.int64), y


def as_labels(rows: list[dict[str, Any]]) -> list[Label]:
    """Labels from plain dicts with keys objid, label and optionally user, note."""
    return [Label(int(r["objid"]), str(r["label"]), str(r.get("user", "")), str(r.get("note", ""))) for r in rows]
