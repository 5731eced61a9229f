from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Filter(_message.Message):
    __slots__ = ("z_min", "z_max", "spec_class", "bpt_class", "magnitudes", "where")
    Z_MIN_FIELD_NUMBER: _ClassVar[int]
    Z_MAX_FIELD_NUMBER: _ClassVar[int]
    SPEC_CLASS_FIELD_NUMBER: _ClassVar[int]
    BPT_CLASS_FIELD_NUMBER: _ClassVar[int]
    MAGNITUDES_FIELD_NUMBER: _ClassVar[int]
    WHERE_FIELD_NUMBER: _ClassVar[int]
    z_min: float
    z_max: float
    spec_class: _containers.RepeatedScalarFieldContainer[str]
    bpt_class: _containers.RepeatedScalarFieldContainer[str]
    magnitudes: _containers.RepeatedCompositeFieldContainer[MagnitudeRange]
    where: str
    def __init__(self, z_min: _Optional[float] = ..., z_max: _Optional[float] = ..., spec_class: _Optional[_Iterable[str]] = ..., bpt_class: _Optional[_Iterable[str]] = ..., magnitudes: _Optional[_Iterable[_Union[MagnitudeRange, _Mapping]]] = ..., where: _Optional[str] = ...) -> None: ...

class MagnitudeRange(_message.Message):
    __slots__ = ("column", "min", "max")
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    column: str
    min: float
    max: float
    def __init__(self, column: _Optional[str] = ..., min: _Optional[float] = ..., max: _Optional[float] = ...) -> None: ...

class Object(_message.Message):
    __slots__ = ("objid", "ra", "dec", "survey", "bands", "source", "mag_u", "mag_g", "mag_r", "mag_i", "mag_z", "specobjid", "z", "z_err", "spec_class", "spec_subclass", "bpt_class", "truth_class", "model_id", "embedding", "density_score", "cluster", "map_x", "map_y", "density_model")
    OBJID_FIELD_NUMBER: _ClassVar[int]
    RA_FIELD_NUMBER: _ClassVar[int]
    DEC_FIELD_NUMBER: _ClassVar[int]
    SURVEY_FIELD_NUMBER: _ClassVar[int]
    BANDS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    MAG_U_FIELD_NUMBER: _ClassVar[int]
    MAG_G_FIELD_NUMBER: _ClassVar[int]
    MAG_R_FIELD_NUMBER: _ClassVar[int]
    MAG_I_FIELD_NUMBER: _ClassVar[int]
    MAG_Z_FIELD_NUMBER: _ClassVar[int]
    SPECOBJID_FIELD_NUMBER: _ClassVar[int]
    Z_FIELD_NUMBER: _ClassVar[int]
    Z_ERR_FIELD_NUMBER: _ClassVar[int]
    SPEC_CLASS_FIELD_NUMBER: _ClassVar[int]
    SPEC_SUBCLASS_FIELD_NUMBER: _ClassVar[int]
    BPT_CLASS_FIELD_NUMBER: _ClassVar[int]
    TRUTH_CLASS_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    DENSITY_SCORE_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    MAP_X_FIELD_NUMBER: _ClassVar[int]
    MAP_Y_FIELD_NUMBER: _ClassVar[int]
    DENSITY_MODEL_FIELD_NUMBER: _ClassVar[int]
    objid: int
    ra: float
    dec: float
    survey: str
    bands: str
    source: str
    mag_u: float
    mag_g: float
    mag_r: float
    mag_i: float
    mag_z: float
    specobjid: int
    z: float
    z_err: float
    spec_class: str
    spec_subclass: str
    bpt_class: str
    truth_class: str
    model_id: str
    embedding: _containers.RepeatedScalarFieldContainer[float]
    density_score: float
    cluster: int
    map_x: float
    map_y: float
    density_model: str
    def __init__(self, objid: _Optional[int] = ..., ra: _Optional[float] = ..., dec: _Optional[float] = ..., survey: _Optional[str] = ..., bands: _Optional[str] = ..., source: _Optional[str] = ..., mag_u: _Optional[float] = ..., mag_g: _Optional[float] = ..., mag_r: _Optional[float] = ..., mag_i: _Optional[float] = ..., mag_z: _Optional[float] = ..., specobjid: _Optional[int] = ..., z: _Optional[float] = ..., z_err: _Optional[float] = ..., spec_class: _Optional[str] = ..., spec_subclass: _Optional[str] = ..., bpt_class: _Optional[str] = ..., truth_class: _Optional[str] = ..., model_id: _Optional[str] = ..., embedding: _Optional[_Iterable[float]] = ..., density_score: _Optional[float] = ..., cluster: _Optional[int] = ..., map_x: _Optional[float] = ..., map_y: _Optional[float] = ..., density_model: _Optional[str] = ...) -> None: ...

class LearnedMetric(_message.Message):
    __slots__ = ("label", "kind")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    label: str
    kind: str
    def __init__(self, label: _Optional[str] = ..., kind: _Optional[str] = ...) -> None: ...

class FindSimilarRequest(_message.Message):
    __slots__ = ("objid", "k", "filter", "exclude_radius_arcsec", "metric", "space", "morphology_weight")
    OBJID_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_RADIUS_ARCSEC_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    SPACE_FIELD_NUMBER: _ClassVar[int]
    MORPHOLOGY_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    objid: int
    k: int
    filter: Filter
    exclude_radius_arcsec: float
    metric: LearnedMetric
    space: str
    morphology_weight: float
    def __init__(self, objid: _Optional[int] = ..., k: _Optional[int] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ..., exclude_radius_arcsec: _Optional[float] = ..., metric: _Optional[_Union[LearnedMetric, _Mapping]] = ..., space: _Optional[str] = ..., morphology_weight: _Optional[float] = ...) -> None: ...

class SearchVectorRequest(_message.Message):
    __slots__ = ("vector", "k", "filter", "exclude_objids")
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_OBJIDS_FIELD_NUMBER: _ClassVar[int]
    vector: _containers.RepeatedScalarFieldContainer[float]
    k: int
    filter: Filter
    exclude_objids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, vector: _Optional[_Iterable[float]] = ..., k: _Optional[int] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ..., exclude_objids: _Optional[_Iterable[int]] = ...) -> None: ...

class FindSimilarToImageRequest(_message.Message):
    __slots__ = ("image", "k", "filter")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    k: int
    filter: Filter
    def __init__(self, image: _Optional[bytes] = ..., k: _Optional[int] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ...) -> None: ...

class ConeSearchRequest(_message.Message):
    __slots__ = ("ra", "dec", "radius_arcsec", "k", "filter", "exclude_radius_arcsec", "metric", "space", "morphology_weight")
    RA_FIELD_NUMBER: _ClassVar[int]
    DEC_FIELD_NUMBER: _ClassVar[int]
    RADIUS_ARCSEC_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_RADIUS_ARCSEC_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    SPACE_FIELD_NUMBER: _ClassVar[int]
    MORPHOLOGY_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    ra: float
    dec: float
    radius_arcsec: float
    k: int
    filter: Filter
    exclude_radius_arcsec: float
    metric: LearnedMetric
    space: str
    morphology_weight: float
    def __init__(self, ra: _Optional[float] = ..., dec: _Optional[float] = ..., radius_arcsec: _Optional[float] = ..., k: _Optional[int] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ..., exclude_radius_arcsec: _Optional[float] = ..., metric: _Optional[_Union[LearnedMetric, _Mapping]] = ..., space: _Optional[str] = ..., morphology_weight: _Optional[float] = ...) -> None: ...

class ConeSearchResponse(_message.Message):
    __slots__ = ("match", "separation_arcsec", "neighbours", "model_id")
    MATCH_FIELD_NUMBER: _ClassVar[int]
    SEPARATION_ARCSEC_FIELD_NUMBER: _ClassVar[int]
    NEIGHBOURS_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    match: Object
    separation_arcsec: float
    neighbours: _containers.RepeatedCompositeFieldContainer[Neighbour]
    model_id: str
    def __init__(self, match: _Optional[_Union[Object, _Mapping]] = ..., separation_arcsec: _Optional[float] = ..., neighbours: _Optional[_Iterable[_Union[Neighbour, _Mapping]]] = ..., model_id: _Optional[str] = ...) -> None: ...

class ObjectsInConeRequest(_message.Message):
    __slots__ = ("ra", "dec", "radius_arcsec", "limit", "filter")
    RA_FIELD_NUMBER: _ClassVar[int]
    DEC_FIELD_NUMBER: _ClassVar[int]
    RADIUS_ARCSEC_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    ra: float
    dec: float
    radius_arcsec: float
    limit: int
    filter: Filter
    def __init__(self, ra: _Optional[float] = ..., dec: _Optional[float] = ..., radius_arcsec: _Optional[float] = ..., limit: _Optional[int] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ...) -> None: ...

class ObjectInCone(_message.Message):
    __slots__ = ("object", "separation_arcsec")
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    SEPARATION_ARCSEC_FIELD_NUMBER: _ClassVar[int]
    object: Object
    separation_arcsec: float
    def __init__(self, object: _Optional[_Union[Object, _Mapping]] = ..., separation_arcsec: _Optional[float] = ...) -> None: ...

class ObjectsInConeResponse(_message.Message):
    __slots__ = ("objects", "n_found")
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    N_FOUND_FIELD_NUMBER: _ClassVar[int]
    objects: _containers.RepeatedCompositeFieldContainer[ObjectInCone]
    n_found: int
    def __init__(self, objects: _Optional[_Iterable[_Union[ObjectInCone, _Mapping]]] = ..., n_found: _Optional[int] = ...) -> None: ...

class AnomaliesRequest(_message.Message):
    __slots__ = ("n", "filter")
    N_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    n: int
    filter: Filter
    def __init__(self, n: _Optional[int] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ...) -> None: ...

class Anomaly(_message.Message):
    __slots__ = ("object",)
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    object: Object
    def __init__(self, object: _Optional[_Union[Object, _Mapping]] = ...) -> None: ...

class AnomaliesResponse(_message.Message):
    __slots__ = ("anomalies",)
    ANOMALIES_FIELD_NUMBER: _ClassVar[int]
    anomalies: _containers.RepeatedCompositeFieldContainer[Anomaly]
    def __init__(self, anomalies: _Optional[_Iterable[_Union[Anomaly, _Mapping]]] = ...) -> None: ...

class Neighbour(_message.Message):
    __slots__ = ("object", "distance")
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    object: Object
    distance: float
    def __init__(self, object: _Optional[_Union[Object, _Mapping]] = ..., distance: _Optional[float] = ...) -> None: ...

class NeighboursResponse(_message.Message):
    __slots__ = ("neighbours", "model_id")
    NEIGHBOURS_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    neighbours: _containers.RepeatedCompositeFieldContainer[Neighbour]
    model_id: str
    def __init__(self, neighbours: _Optional[_Iterable[_Union[Neighbour, _Mapping]]] = ..., model_id: _Optional[str] = ...) -> None: ...

class GetObjectRequest(_message.Message):
    __slots__ = ("objid", "with_embedding")
    OBJID_FIELD_NUMBER: _ClassVar[int]
    WITH_EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    objid: int
    with_embedding: bool
    def __init__(self, objid: _Optional[int] = ..., with_embedding: _Optional[bool] = ...) -> None: ...

class StatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StatsResponse(_message.Message):
    __slots__ = ("n_objects", "model_id", "embedding_dim", "indexes", "table_version", "n_scored", "n_labels", "n_labelled_objects", "label_counts", "labels_version")
    class LabelCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    N_OBJECTS_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_DIM_FIELD_NUMBER: _ClassVar[int]
    INDEXES_FIELD_NUMBER: _ClassVar[int]
    TABLE_VERSION_FIELD_NUMBER: _ClassVar[int]
    N_SCORED_FIELD_NUMBER: _ClassVar[int]
    N_LABELS_FIELD_NUMBER: _ClassVar[int]
    N_LABELLED_OBJECTS_FIELD_NUMBER: _ClassVar[int]
    LABEL_COUNTS_FIELD_NUMBER: _ClassVar[int]
    LABELS_VERSION_FIELD_NUMBER: _ClassVar[int]
    n_objects: int
    model_id: str
    embedding_dim: int
    indexes: _containers.RepeatedCompositeFieldContainer[IndexState]
    table_version: int
    n_scored: int
    n_labels: int
    n_labelled_objects: int
    label_counts: _containers.ScalarMap[str, int]
    labels_version: int
    def __init__(self, n_objects: _Optional[int] = ..., model_id: _Optional[str] = ..., embedding_dim: _Optional[int] = ..., indexes: _Optional[_Iterable[_Union[IndexState, _Mapping]]] = ..., table_version: _Optional[int] = ..., n_scored: _Optional[int] = ..., n_labels: _Optional[int] = ..., n_labelled_objects: _Optional[int] = ..., label_counts: _Optional[_Mapping[str, int]] = ..., labels_version: _Optional[int] = ...) -> None: ...

class IndexState(_message.Message):
    __slots__ = ("column", "index_type", "indexed_rows", "unindexed_rows")
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    INDEX_TYPE_FIELD_NUMBER: _ClassVar[int]
    INDEXED_ROWS_FIELD_NUMBER: _ClassVar[int]
    UNINDEXED_ROWS_FIELD_NUMBER: _ClassVar[int]
    column: str
    index_type: str
    indexed_rows: int
    unindexed_rows: int
    def __init__(self, column: _Optional[str] = ..., index_type: _Optional[str] = ..., indexed_rows: _Optional[int] = ..., unindexed_rows: _Optional[int] = ...) -> None: ...

class NextToLabelRequest(_message.Message):
    __slots__ = ("label", "n", "strategy", "seed_objid", "filter", "classifier", "exclude_objids")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    SEED_OBJID_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    CLASSIFIER_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_OBJIDS_FIELD_NUMBER: _ClassVar[int]
    label: str
    n: int
    strategy: str
    seed_objid: int
    filter: Filter
    classifier: str
    exclude_objids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, label: _Optional[str] = ..., n: _Optional[int] = ..., strategy: _Optional[str] = ..., seed_objid: _Optional[int] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ..., classifier: _Optional[str] = ..., exclude_objids: _Optional[_Iterable[int]] = ...) -> None: ...

class LabelRequestItem(_message.Message):
    __slots__ = ("object", "reason", "probability", "similarity")
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    object: Object
    reason: str
    probability: float
    similarity: float
    def __init__(self, object: _Optional[_Union[Object, _Mapping]] = ..., reason: _Optional[str] = ..., probability: _Optional[float] = ..., similarity: _Optional[float] = ...) -> None: ...

class NextToLabelResponse(_message.Message):
    __slots__ = ("items", "strategy", "n_positive", "n_negative")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    N_POSITIVE_FIELD_NUMBER: _ClassVar[int]
    N_NEGATIVE_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[LabelRequestItem]
    strategy: str
    n_positive: int
    n_negative: int
    def __init__(self, items: _Optional[_Iterable[_Union[LabelRequestItem, _Mapping]]] = ..., strategy: _Optional[str] = ..., n_positive: _Optional[int] = ..., n_negative: _Optional[int] = ...) -> None: ...

class LabelEntry(_message.Message):
    __slots__ = ("objid", "label", "user", "note")
    OBJID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    objid: int
    label: str
    user: str
    note: str
    def __init__(self, objid: _Optional[int] = ..., label: _Optional[str] = ..., user: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class SubmitLabelsRequest(_message.Message):
    __slots__ = ("labels", "retrain", "classifier", "request_id")
    LABELS_FIELD_NUMBER: _ClassVar[int]
    RETRAIN_FIELD_NUMBER: _ClassVar[int]
    CLASSIFIER_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    labels: _containers.RepeatedCompositeFieldContainer[LabelEntry]
    retrain: bool
    classifier: str
    request_id: str
    def __init__(self, labels: _Optional[_Iterable[_Union[LabelEntry, _Mapping]]] = ..., retrain: _Optional[bool] = ..., classifier: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class ScoreRun(_message.Message):
    __slots__ = ("label", "classifier", "model_id", "label_version", "n_positive", "n_negative", "metrics", "n_objects", "trained_at")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    LABEL_FIELD_NUMBER: _ClassVar[int]
    CLASSIFIER_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    N_POSITIVE_FIELD_NUMBER: _ClassVar[int]
    N_NEGATIVE_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    N_OBJECTS_FIELD_NUMBER: _ClassVar[int]
    TRAINED_AT_FIELD_NUMBER: _ClassVar[int]
    label: str
    classifier: str
    model_id: str
    label_version: int
    n_positive: int
    n_negative: int
    metrics: _containers.ScalarMap[str, float]
    n_objects: int
    trained_at: str
    def __init__(self, label: _Optional[str] = ..., classifier: _Optional[str] = ..., model_id: _Optional[str] = ..., label_version: _Optional[int] = ..., n_positive: _Optional[int] = ..., n_negative: _Optional[int] = ..., metrics: _Optional[_Mapping[str, float]] = ..., n_objects: _Optional[int] = ..., trained_at: _Optional[str] = ...) -> None: ...

class RetrainResult(_message.Message):
    __slots__ = ("label", "run", "skipped")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    label: str
    run: ScoreRun
    skipped: str
    def __init__(self, label: _Optional[str] = ..., run: _Optional[_Union[ScoreRun, _Mapping]] = ..., skipped: _Optional[str] = ...) -> None: ...

class SubmitLabelsResponse(_message.Message):
    __slots__ = ("n_written", "labels_version", "label_counts", "retrained", "replayed")
    class LabelCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    N_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    LABELS_VERSION_FIELD_NUMBER: _ClassVar[int]
    LABEL_COUNTS_FIELD_NUMBER: _ClassVar[int]
    RETRAINED_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    n_written: int
    labels_version: int
    label_counts: _containers.ScalarMap[str, int]
    retrained: _containers.RepeatedCompositeFieldContainer[RetrainResult]
    replayed: bool
    def __init__(self, n_written: _Optional[int] = ..., labels_version: _Optional[int] = ..., label_counts: _Optional[_Mapping[str, int]] = ..., retrained: _Optional[_Iterable[_Union[RetrainResult, _Mapping]]] = ..., replayed: _Optional[bool] = ...) -> None: ...

class CandidatesRequest(_message.Message):
    __slots__ = ("label", "n", "filter", "exclude_labelled")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_LABELLED_FIELD_NUMBER: _ClassVar[int]
    label: str
    n: int
    filter: Filter
    exclude_labelled: bool
    def __init__(self, label: _Optional[str] = ..., n: _Optional[int] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ..., exclude_labelled: _Optional[bool] = ...) -> None: ...

class Candidate(_message.Message):
    __slots__ = ("object", "score", "current_label")
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    CURRENT_LABEL_FIELD_NUMBER: _ClassVar[int]
    object: Object
    score: float
    current_label: str
    def __init__(self, object: _Optional[_Union[Object, _Mapping]] = ..., score: _Optional[float] = ..., current_label: _Optional[str] = ...) -> None: ...

class CandidatesResponse(_message.Message):
    __slots__ = ("candidates", "run", "stale")
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    run: ScoreRun
    stale: bool
    def __init__(self, candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ..., run: _Optional[_Union[ScoreRun, _Mapping]] = ..., stale: _Optional[bool] = ...) -> None: ...

class GetStampRequest(_message.Message):
    __slots__ = ("objid",)
    OBJID_FIELD_NUMBER: _ClassVar[int]
    objid: int
    def __init__(self, objid: _Optional[int] = ...) -> None: ...

class Stamp(_message.Message):
    __slots__ = ("objid", "png", "source")
    OBJID_FIELD_NUMBER: _ClassVar[int]
    PNG_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    objid: int
    png: bytes
    source: str
    def __init__(self, objid: _Optional[int] = ..., png: _Optional[bytes] = ..., source: _Optional[str] = ...) -> None: ...

class SkyPosition(_message.Message):
    __slots__ = ("ra", "dec")
    RA_FIELD_NUMBER: _ClassVar[int]
    DEC_FIELD_NUMBER: _ClassVar[int]
    ra: float
    dec: float
    def __init__(self, ra: _Optional[float] = ..., dec: _Optional[float] = ...) -> None: ...

class FindSimilarBatchRequest(_message.Message):
    __slots__ = ("objids", "positions", "radius_arcsec", "k", "filter", "exclude_radius_arcsec", "metric", "space", "morphology_weight")
    OBJIDS_FIELD_NUMBER: _ClassVar[int]
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    RADIUS_ARCSEC_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_RADIUS_ARCSEC_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    SPACE_FIELD_NUMBER: _ClassVar[int]
    MORPHOLOGY_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    objids: _containers.RepeatedScalarFieldContainer[int]
    positions: _containers.RepeatedCompositeFieldContainer[SkyPosition]
    radius_arcsec: float
    k: int
    filter: Filter
    exclude_radius_arcsec: float
    metric: LearnedMetric
    space: str
    morphology_weight: float
    def __init__(self, objids: _Optional[_Iterable[int]] = ..., positions: _Optional[_Iterable[_Union[SkyPosition, _Mapping]]] = ..., radius_arcsec: _Optional[float] = ..., k: _Optional[int] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ..., exclude_radius_arcsec: _Optional[float] = ..., metric: _Optional[_Union[LearnedMetric, _Mapping]] = ..., space: _Optional[str] = ..., morphology_weight: _Optional[float] = ...) -> None: ...

class BatchError(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class BatchNeighbours(_message.Message):
    __slots__ = ("index", "objid", "match", "separation_arcsec", "neighbours", "error", "model_id")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    OBJID_FIELD_NUMBER: _ClassVar[int]
    MATCH_FIELD_NUMBER: _ClassVar[int]
    SEPARATION_ARCSEC_FIELD_NUMBER: _ClassVar[int]
    NEIGHBOURS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    index: int
    objid: int
    match: Object
    separation_arcsec: float
    neighbours: _containers.RepeatedCompositeFieldContainer[Neighbour]
    error: BatchError
    model_id: str
    def __init__(self, index: _Optional[int] = ..., objid: _Optional[int] = ..., match: _Optional[_Union[Object, _Mapping]] = ..., separation_arcsec: _Optional[float] = ..., neighbours: _Optional[_Iterable[_Union[Neighbour, _Mapping]]] = ..., error: _Optional[_Union[BatchError, _Mapping]] = ..., model_id: _Optional[str] = ...) -> None: ...

class FindSimilarToExamplesRequest(_message.Message):
    __slots__ = ("positive_objids", "negative_objids", "k", "filter", "exclude_radius_arcsec", "exclude_objids", "negative_weight")
    POSITIVE_OBJIDS_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_OBJIDS_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_RADIUS_ARCSEC_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_OBJIDS_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    positive_objids: _containers.RepeatedScalarFieldContainer[int]
    negative_objids: _containers.RepeatedScalarFieldContainer[int]
    k: int
    filter: Filter
    exclude_radius_arcsec: float
    exclude_objids: _containers.RepeatedScalarFieldContainer[int]
    negative_weight: float
    def __init__(self, positive_objids: _Optional[_Iterable[int]] = ..., negative_objids: _Optional[_Iterable[int]] = ..., k: _Optional[int] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ..., exclude_radius_arcsec: _Optional[float] = ..., exclude_objids: _Optional[_Iterable[int]] = ..., negative_weight: _Optional[float] = ...) -> None: ...

class MapPointsRequest(_message.Message):
    __slots__ = ("color_by", "label")
    COLOR_BY_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    color_by: str
    label: str
    def __init__(self, color_by: _Optional[str] = ..., label: _Optional[str] = ...) -> None: ...

class MapPointsChunk(_message.Message):
    __slots__ = ("objids", "x", "y", "values", "categories", "n_total")
    OBJIDS_FIELD_NUMBER: _ClassVar[int]
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    N_TOTAL_FIELD_NUMBER: _ClassVar[int]
    objids: bytes
    x: bytes
    y: bytes
    values: bytes
    categories: _containers.RepeatedScalarFieldContainer[str]
    n_total: int
    def __init__(self, objids: _Optional[bytes] = ..., x: _Optional[bytes] = ..., y: _Optional[bytes] = ..., values: _Optional[bytes] = ..., categories: _Optional[_Iterable[str]] = ..., n_total: _Optional[int] = ...) -> None: ...
