"""Arrow schemas of every SSALD table, declared once.

Every module that reads or writes a table imports its schema from here.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from encoders.morphology import MORPHOLOGY_FEATURES

__all__ = [
    "OBJECTS",
    "OBJID_MIN",
    "OBJID_MAX",
    "LABELS",
    "QUARANTINE",
    "MODELS",
    "MAGNITUDE_COLUMNS",
    "MORPHOLOGY_FEATURES",
    "MORPHOLOGY_FLAG",
    "MORPHOLOGY_COLUMNS",
    "OBJECT_METADATA_COLUMNS",
    "LABELS_SCHEMA",
    "QUARANTINE_SCHEMA",
    "MODELS_SCHEMA",
    "SCORES_PREFIX",
    "SCORE_RUNS",
    "SCORES_SCHEMA",
    "SCORE_RUNS_SCHEMA",
    "objects_schema",
    "embedding_dim",
    "embedding_matrix",
    "morphology_matrix",
    "unit_rows",
]

OBJECTS = "objects"
#: The objids an object may carry: SDSS ``objID`` leaves bit 63 unused and never packs all-zero fields, and the
#: ``objects`` table stores them as int64, so 1 .. 2**63 - 1 (0 and negatives are not objids).
OBJID_MIN, OBJID_MAX = 1, 2**63 - 1
LABELS = "labels"
QUARANTINE = "quarantine"
MODELS = "models"
# One ``scores_<label>`` table per label, rewritten whole by each retrain; ``score_runs`` keeps every run.
SCORES_PREFIX = "scores_"
SCORE_RUNS = "score_runs"

MAGNITUDE_COLUMNS = ("mag_u", "mag_g", "mag_r", "mag_i", "mag_z")

# Non-parametric morphology measured at ingest (MORPHOLOGY_FEATURES named by encoders.morphology); null where
# not measured. Kept out of OBJECT_METADATA_COLUMNS: tables written before they existed lack them, and query
# results do not carry them.
MORPHOLOGY_FLAG = "morph_flag"
MORPHOLOGY_COLUMNS = (*MORPHOLOGY_FEATURES, MORPHOLOGY_FLAG)

_TIMESTAMP = pa.timestamp("us", tz="UTC")

_METADATA_FIELDS = [
    pa.field("objid", pa.int64(), nullable=False),
    pa.field("ra", pa.float64()),
    pa.field("dec", pa.float64()),
    pa.field("survey", pa.string()),
    pa.field("bands", pa.string()),
    pa.field("source", pa.string()),
    *[pa.field(name, pa.float32()) for name in MAGNITUDE_COLUMNS],
    pa.field("specobjid", pa.int64()),
    pa.field("z", pa.float32()),
    pa.field("z_err", pa.float32()),
    pa.field("spec_class", pa.string()),
    pa.field("spec_subclass", pa.string()),
    pa.field("bpt_class", pa.string()),
    # Ground truth, only for simulated surveys; null for real data.
    pa.field("truth_class", pa.string()),
    pa.field("model_id", pa.string()),
    # Derived columns, filled by later jobs (density, clustering, 2-D map).
    pa.field("density_score", pa.float32()),
    pa.field("cluster", pa.int32()),
    pa.field("map_x", pa.float32()),
    pa.field("map_y", pa.float32()),
    # The scorer behind density_score (e.g. "knn10:MODEL_ID").
    pa.field("density_model", pa.string()),
    pa.field("ingested_at", _TIMESTAMP),
]

OBJECT_METADATA_COLUMNS: tuple[str, ...] = tuple(f.name for f in _METADATA_FIELDS)

_MORPHOLOGY_FIELDS = [
    *[pa.field(name, pa.float32()) for name in MORPHOLOGY_FEATURES],
    pa.field(MORPHOLOGY_FLAG, pa.int32()),
]


def objects_schema(dim: int) -> pa.Schema:
    """Schema of the ``objects`` table for embeddings of dimension ``dim``.

    Parameters
    ----------
    dim : int
        Embedding dimension D; the ``embedding`` column is ``fixed_size_list<float32>[D]``.

    Returns
    -------
    pyarrow.Schema
    """
    if not isinstance(dim, int) or dim < 1:
        raise ValueError(f"embedding dimension must be a positive integer, got {dim!r}")
    return pa.schema([*_METADATA_FIELDS, *_MORPHOLOGY_FIELDS, pa.field("embedding", pa.list_(pa.float32(), dim))])


def embedding_dim(schema: pa.Schema) -> int:
    """Embedding dimension D of an ``objects`` schema."""
    return schema.field("embedding").type.list_size


def embedding_matrix(table: pa.Table | pa.RecordBatch, column: str = "embedding") -> np.ndarray:
    """The fixed-size-list embedding ``column`` of a table or record batch as a float32 ``(N, D)`` array."""
    col = table.column(column)
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    flat = col.flatten().to_numpy(zero_copy_only=False)
    return flat.reshape(table.num_rows, col.type.list_size).astype(np.float32, copy=False)


def morphology_matrix(table: pa.Table | pa.RecordBatch) -> np.ndarray:
    """The ``MORPHOLOGY_FEATURES`` columns of a table as float64 ``(N, M)``; NaN where null or absent."""
    out = np.full((table.num_rows, len(MORPHOLOGY_FEATURES)), np.nan)
    for j, name in enumerate(MORPHOLOGY_FEATURES):
        if name in table.column_names:
            out[:, j] = table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
    return out


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Each row of ``x`` scaled to unit L2 length (cosine geometry); all-zero rows stay zero."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


LABELS_SCHEMA = pa.schema(
    [
        pa.field("objid", pa.int64(), nullable=False),
        pa.field("label", pa.string(), nullable=False),
        pa.field("user", pa.string()),
        pa.field("created_at", _TIMESTAMP),
        pa.field("note", pa.string()),
        # The SubmitLabels request that wrote the row (null for rows written without one, or before the
        # column existed): a retry with the same id finds its labels already committed and writes nothing.
        pa.field("request_id", pa.string()),
    ]
)

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("objid", pa.int64()),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("at", _TIMESTAMP),
    ]
)

MODELS_SCHEMA = pa.schema(
    [
        pa.field("model_id", pa.string(), nullable=False),
        pa.field("onnx_sha256", pa.string()),
        pa.field("bands", pa.string()),
        pa.field("stamp_size", pa.int32()),
        pa.field("embedding_dim", pa.int32()),
        # JSON documents: normalisation parameters, training config and diagnostics.
        pa.field("normalisation", pa.string()),
        pa.field("training", pa.string()),
        pa.field("diagnostics", pa.string()),
        pa.field("registered_at", _TIMESTAMP),
    ]
)

# Classifier scores of every object for one label. The run that wrote them (classifier, model_id,
# label-set version, metrics) is kept in the schema metadata, so scores and their tags change together.
SCORES_SCHEMA = pa.schema(
    [
        pa.field("objid", pa.int64(), nullable=False),
        pa.field("score", pa.float32()),
    ]
)

SCORE_RUNS_SCHEMA = pa.schema(
    [
        pa.field("label", pa.string(), nullable=False),
        pa.field("classifier", pa.string()),
        pa.field("model_id", pa.string()),
        # Version of the ``labels`` table the classifier was trained from.
        pa.field("label_version", pa.int64()),
        pa.field("n_positive", pa.int64()),
        pa.field("n_negative", pa.int64()),
        # JSON document: cross-validated metrics.
        pa.field("metrics", pa.string()),
        pa.field("n_objects", pa.int64()),
        pa.field("trained_at", _TIMESTAMP),
    ]
)
