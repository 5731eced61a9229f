"""Label-free quality of stored embeddings: read them (and a label column) from an ``objects`` table.

The scores themselves are :func:`encoders.training.diagnostics.quality_report` (numpy only); this module
reads what they score from the index, which :mod:`encoders` may not import.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["db_embeddings"]


def db_embeddings(
    db: Path, label_column: str | None = None, limit: int | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray | None]:
    """Embeddings (and labels) from the ``objects`` table of ``db``; at most ``limit``, a seeded subset.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray or None)
        float32 ``(N, D)`` embeddings and the label column as strings ('' for null), or ``None``
        when ``label_column`` is ``None``, absent, or entirely empty.
    """
    from ssald_index.store import ObjectStore, embedding_matrix

    store = ObjectStore.open(db)
    names = set(store.table.schema.names)
    columns = ["embedding"] + ([label_column] if label_column and label_column in names else [])
    data = store.read(columns)
    z = embedding_matrix(data)
    labels = None
    if len(columns) == 2:
        labels = np.array(["" if v is None else str(v) for v in data.column(label_column).to_pylist()])
        if not np.any(labels != ""):
            labels = None
    if limit is not None and len(z) > limit:
        idx = np.sort(np.random.default_rng(seed).choice(len(z), limit, replace=False))
        z, labels = z[idx], None if labels is None else labels[idx]
    return z, labels
