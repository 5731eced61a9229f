from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Object(_message.Message):
    __slots__ = ("objid", "ra", "dec", "survey", "bands", "source", "mag_u", "mag_g", "mag_r", "mag_i", "mag_z", "specobjid", "z", "z_err", "spec_class", "spec_subclass", "bpt_class", "truth_class", "model_id", "embedding")
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
    def __init__(self, objid: _Optional[int] = ..., ra: _Optional[float] = ..., dec: _Optional[float] = ..., survey: _Optional[str] = ..., bands: _Optional[str] = ..., source: _Optional[str] = ..., mag_u: _Optional[float] = ..., mag_g: _Optional[float] = ..., mag_r: _Optional[float] = ..., mag_i: _Optional[float] = ..., mag_z: _Optional[float] = ..., specobjid: _Optional[int] = ..., z: _Optional[float] = ..., z_err: _Optional[float] = ..., spec_class: _Optional[str] = ..., spec_subclass: _Optional[str] = ..., bpt_class: _Optional[str] = ..., truth_class: _Optional[str] = ..., model_id: _Optional[str] = ..., embedding: _Optional[_Iterable[float]] = ...) -> None: ...

class FindSimilarRequest(_message.Message):
    __slots__ = ("objid", "k")
    OBJID_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    objid: int
    k: int
    def __init__(self, objid: _Optional[int] = ..., k: _Optional[int] = ...) -> None: ...

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
    __slots__ = ("n_objects", "model_id", "embedding_dim")
    N_OBJECTS_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_DIM_FIELD_NUMBER: _ClassVar[int]
    n_objects: int
    model_id: str
    embedding_dim: int
    def __init__(self, n_objects: _Optional[int] = ..., model_id: _Optional[str] = ..., embedding_dim: _Optional[int] = ...) -> None: ...
