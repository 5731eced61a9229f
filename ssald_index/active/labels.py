"""The append-only ``labels`` table: every label ever given is kept.

A label is a class name given to an objid by a user (``dual_nucleus``, ``merger``, ``ring``,
``artefact``, ``normal``…). A "no" answer to "is this a dual_nucleus?" is stored as
``not_dual_nucleus``. For a target label L, an object counts as positive when its latest label is L
and as negative when its latest label is anything else; objects never labelled are unlabelled.

Every write is checked against the limits below before anything is written (:func:`check_labels`), so
that no reply that carries label names (``label_counts`` of Stats and SubmitLabels) can outgrow a gRPC
message. Rows written before the limits existed are read back bounded: a label longer than
:data:`MAX_LABEL_LENGTH` is left out with a logged warning (:func:`read_labels`). A write may carry the id
of the request that made it (:func:`add_labels`); :func:`find_request` finds a committed one again, so
that a retried request writes nothing twice.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ssald_index.registry import connect, create_table, has_table
from ssald_index.schema import LABELS, LABELS_SCHEMA

__all__ = [
    "MAX_LABELS_PER_CALL",
    "MAX_LABEL_LENGTH",
    "MAX_USER_LENGTH",
    "MAX_NOTE_LENGTH",
    "MAX_LABEL_NAMES",
    "MAX_REQUEST_ID_LENGTH",
    "LABEL_PATTERN",
    "REQUEST_ID_PATTERN",
    "Label",
    "CommittedRequest",
    "negative_of",
    "check_labels",
    "check_request_id",
    "add_labels",
    "read_labels",
    "find_request",
    "latest_labels",
    "training_set",
    "as_labels",
]

PathLike = str | os.PathLike[str]

log = logging.getLogger(__name__)

#: Most labels one write (one ``SubmitLabels`` call) may carry. A person labels tens per round; a bulk
#: import of a catalogue's classes splits into calls of this size. At the field limits below one entry is
#: at most ~1.2 kB, so a full call stays a few MB, and its all-or-nothing objid check stays one query.
MAX_LABELS_PER_CALL = 10_000
#: Longest label name, in characters (``not_`` + a 60-character target still fits).
MAX_LABEL_LENGTH = 64
#: What a label name is made of: letters, digits and underscores, the names a classifier can be trained for
#: (its scores live in the table ``scores_<label>``).
LABEL_PATTERN = re.compile(r"[A-Za-z0-9_]+")
#: Longest ``user`` of a label, in characters (printable, no control characters).
MAX_USER_LENGTH = 128
#: Longest ``note`` of a label, in characters (printable; newlines and tabs allowed).
MAX_NOTE_LENGTH = 1_000
#: Most distinct latest label names a database may hold: bounds the ``label_counts`` map of every reply
#: (at most ~80 kB at 64 characters a name).
MAX_LABEL_NAMES = 1_000
#: Longest request id (a uuid4 is 36 characters), made of :data:`REQUEST_ID_PATTERN` characters.
MAX_REQUEST_ID_LENGTH = 128
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]+")


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


def _preview(text: str) -> str:
    """``text`` for an error message: whole when short, else its start and its length."""
    return repr(text) if len(text) <= 40 else f"{text[:40]!r}... ({len(text)} characters)"


def _check_text(what: str, value: Any, limit: int, allowed: str = "") -> None:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, got {type(value).__name__}")
    if len(value) > limit:
        raise ValueError(f"{what} {_preview(value)} is longer than {limit} characters")
    if not value.translate({ord(c): None for c in allowed}).isprintable():
        raise ValueError(f"{what} {_preview(value)} holds control characters (only printable text is stored)")


def check_labels(labels: Iterable[Label]) -> list[Label]:
    """``labels`` with their names stripped of surrounding blanks, after checking every limit.

    Parameters
    ----------
    labels : iterable of Label

    Returns
    -------
    list of Label

    Raises
    ------
    ValueError
        More than :data:`MAX_LABELS_PER_CALL` labels, or an entry with a non-integer objid, an empty label, a
        label longer than :data:`MAX_LABEL_LENGTH` or not made of :data:`LABEL_PATTERN` characters, or a
        ``user`` / ``note`` over :data:`MAX_USER_LENGTH` / :data:`MAX_NOTE_LENGTH` or with control
        characters. The message names the entry (its position and objid) and the limit.
    """
    labels = list(labels)
    if len(labels) > MAX_LABELS_PER_CALL:
        raise ValueError(
            f"{len(labels)} labels in one call; at most {MAX_LABELS_PER_CALL} are accepted per call: "
            "send them in several calls"
        )
    checked = []
    for i, entry in enumerate(labels):
        if isinstance(entry.objid, bool) or not isinstance(entry.objid, (int, np.integer)):
            raise ValueError(f"label entry {i}: objid must be an integer, got {entry.objid!r}")
        if not isinstance(entry.label, str) or not entry.label.strip():
            raise ValueError(
                f"label entry {i}: label of objid {entry.objid} must be a non-empty string, "
                f"got {_preview(str(entry.label))}"
            )
        name = entry.label.strip()
        if len(name) > MAX_LABEL_LENGTH:
            raise ValueError(
                f"label entry {i}: label of objid {entry.objid} {_preview(name)} is longer than "
                f"{MAX_LABEL_LENGTH} characters"
            )
        if not LABEL_PATTERN.fullmatch(name):
            raise ValueError(
                f"label entry {i}: label of objid {entry.objid} {_preview(name)} must be letters, digits and "
                "underscores only ([A-Za-z0-9_]+)"
            )
        _check_text(f"label entry {i}: user of objid {entry.objid}", entry.user, MAX_USER_LENGTH)
        _check_text(f"label entry {i}: note of objid {entry.objid}", entry.note, MAX_NOTE_LENGTH, allowed="\n\t")
        checked.append(Label(int(entry.objid), name, entry.user, entry.note))
    return checked


def check_request_id(request_id: str) -> str:
    """``request_id`` when it is ``""`` (none) or at most :data:`MAX_REQUEST_ID_LENGTH` allowed characters.

    Raises
    ------
    ValueError
        If it is longer, or holds a character outside :data:`REQUEST_ID_PATTERN`.
    """
    if not isinstance(request_id, str):
        raise ValueError(f"request_id must be a string, got {type(request_id).__name__}")
    if request_id and (len(request_id) > MAX_REQUEST_ID_LENGTH or not REQUEST_ID_PATTERN.fullmatch(request_id)):
        raise ValueError(
            f"request_id {_preview(request_id)} must be 1..{MAX_REQUEST_ID_LENGTH} letters, digits or ._:- "
            "(a uuid4 is fine)"
        )
    return request_id


def _writable(table: Any) -> Any:
    """``table``, with the ``request_id`` column added when it was created before the column existed."""
    if "request_id" not in table.schema.names:
        table.add_columns(pa.field("request_id", pa.string()))
        log.info("labels table: added the request_id column (the table predates it)")
    return table


def add_labels(db_path: PathLike, labels: Iterable[Label], request_id: str = "") -> int:
    """Append labels; when this returns, they are committed to disk as one new table version.

    Parameters
    ----------
    db_path : path
    labels : iterable of Label
        Checked by :func:`check_labels` (nothing is written when one fails).
    request_id : str
        Stored with every row (``""``: none), for :func:`find_request`.

    Returns
    -------
    int
        Number of labels written.
    """
    labels = check_labels(labels)
    request_id = check_request_id(request_id)
    if not labels:
        return 0
    now = datetime.now(UTC)
    rows = [
        {
            "objid": x.objid,
            "label": x.label,
            "user": x.user,
            "created_at": now,
            "note": x.note,
            "request_id": request_id or None,
        }
        for x in labels
    ]
    data = pa.Table.from_pylist(rows, schema=LABELS_SCHEMA)
    db = connect(db_path)
    if has_table(db, LABELS):
        _writable(db.open_table(LABELS)).add(data)
    else:
        create_table(db, LABELS, data, schema=LABELS_SCHEMA)
    return len(rows)


def read_labels(db_path: PathLike) -> pa.Table:
    """Every label ever given, in the order given (empty table when none), with the columns of ``LABELS_SCHEMA``.

    Rows whose label is longer than :data:`MAX_LABEL_LENGTH` (written before the limit existed) are left out,
    with a logged warning; ``request_id`` is null throughout in a table that predates that column.
    """
    db = connect(db_path)
    if not has_table(db, LABELS):
        return LABELS_SCHEMA.empty_table()
    table = db.open_table(LABELS).to_arrow()
    if "request_id" not in table.column_names:
        table = table.append_column(LABELS_SCHEMA.field("request_id"), pa.nulls(table.num_rows, pa.string()))
    fits = pc.less_equal(pc.utf8_length(table.column("label")), MAX_LABEL_LENGTH)
    n_long = table.num_rows - pc.sum(fits).as_py() if table.num_rows else 0
    if n_long:
        log.warning(
            "labels table %s: %d row(s) with a label longer than %d characters (written before that limit) "
            "are left out",
            db_path,
            n_long,
            MAX_LABEL_LENGTH,
        )
        table = table.filter(fits)
    return table.select(LABELS_SCHEMA.names).sort_by([("created_at", "ascending")])


@dataclass(frozen=True)
class CommittedRequest:
    """The labels one request wrote, found again by :func:`find_request`.

    Attributes
    ----------
    request_id : str
    entries : list of (int, str)
        ``(objid, label)`` of each row it wrote.
    labels_version : int
        The first ``labels`` table version holding them (the version its reply named).
    """

    request_id: str
    entries: list[tuple[int, str]]
    labels_version: int


def find_request(db_path: PathLike, request_id: str) -> CommittedRequest | None:
    """The labels committed by the request ``request_id``, or ``None`` when it wrote none.

    Raises
    ------
    ValueError
        If ``request_id`` is empty or malformed (:func:`check_request_id`).
    """
    if not check_request_id(request_id):
        raise ValueError("find_request needs a request_id")
    db = connect(db_path)
    if not has_table(db, LABELS):
        return None
    dataset = db.open_table(LABELS).to_lance()
    if "request_id" not in dataset.schema.names:
        return None
    where = f"request_id = '{request_id}'"  # safe: REQUEST_ID_PATTERN has no quote
    rows = dataset.to_table(columns=["objid", "label"], filter=where)
    if rows.num_rows == 0:
        return None

    def holds(version: int) -> bool:
        try:
            return dataset.checkout_version(version).count_rows(filter=where) > 0
        except (OSError, ValueError):  # a version before the request_id column existed
            return False

    # Rows are only appended: the versions holding the request are a suffix of the history; find its start.
    versions = sorted(int(v["version"]) for v in dataset.versions())
    lo, hi = 0, len(versions) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if holds(versions[mid]) else (mid + 1, hi)
    entries = list(zip(rows.column("objid").to_pylist(), rows.column("label").to_pylist()))
    return CommittedRequest(request_id, entries, versions[lo])


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
