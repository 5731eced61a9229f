"""Fuzzing every RPC (issue 15): generated requests get a client-side status, never INTERNAL or UNKNOWN.

The requests are drawn from each method's request message descriptor, field by field, so a new RPC or
field is fuzzed without a change here: numbers include their extremes, NaN and infinities; strings are
arbitrary unicode, sometimes long, and sometimes a value the server knows (a space, a strategy, a filter
column), so the deeper checks are reached; repeated fields have varied lengths; objids are mostly those of
the table, so the OK paths run too. Runs are derandomised (the same examples in CI each time); hypothesis
prints a failing example, which replays with ``@example``.
"""

from __future__ import annotations

import io
import math

import grpc
import numpy as np
import pytest
from astropy.io import fits
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proto import ssald_pb2, ssald_pb2_grpc
from server.wire import SSALD_SERVICE
from ssald_index.active.classify import CLASSIFIERS
from ssald_index.active.strategies import STRATEGIES
from ssald_index.feature_space import SPACES
from ssald_index.metric import METRIC_KINDS
from tests.server.helpers import make_rows, running_server, write_db

TIMEOUT = 60.0
#: What a client may be told; INTERNAL, UNKNOWN (and DEADLINE_EXCEEDED, a hang) are server bugs.
ALLOWED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.UNAUTHENTICATED,
}
#: Examples per RPC: the whole module stays well under a minute on two cores. SubmitLabels retrains.
EXAMPLES = {"SubmitLabels": 20, "NextToLabel": 40, "Candidates": 40, "FindSimilar": 60, "ConeSearch": 60}
DEFAULT_EXAMPLES = 100

ROWS = make_rows()
OBJIDS = [row["objid"] for row in ROWS]
I32 = (-(2**31), 2**31 - 1)
I64 = (-(2**63), 2**63 - 1)
INTEGER_BOUNDS = {
    FieldDescriptor.TYPE_INT32: I32,
    FieldDescriptor.TYPE_SINT32: I32,
    FieldDescriptor.TYPE_SFIXED32: I32,
    FieldDescriptor.TYPE_INT64: I64,
    FieldDescriptor.TYPE_SINT64: I64,
    FieldDescriptor.TYPE_SFIXED64: I64,
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
#: At most this many fields of a message are drawn wild, the rest plausible: each example probes a few
#: fields past the checks of the others (a wild k would hide everything behind "k must be ...").
MAX_WILD = 2
#: Floats that break arithmetic, drawn half the time a float is drawn wild (with each type's extremes).
SPECIAL_FLOATS = [math.nan, math.inf, -math.inf, -0.0]
#: Embedding dimension of the served table: that of ``tiny_model`` (tests/conftest.py, widths[-1]).
DIM = 32


def _stamp_files() -> list[bytes]:
    """A FITS and an NPY stamp of 5 bands, 64 px: uploads the server reads and embeds."""
    cube = np.random.default_rng(0).normal(1.0, 0.5, size=(5, 64, 64)).astype(np.float32)
    fits_file, npy_file = io.BytesIO(), io.BytesIO()
    fits.PrimaryHDU(cube).writeto(fits_file)
    np.save(npy_file, cube)
    return [fits_file.getvalue(), npy_file.getvalue()]


# Plausible values the server gives a meaning to, by field name, so examples get past the first check.
# Nothing else about a message is listed here. A row drawn once per example (st.shared) gives ra and
# dec of the same object, so a cone search finds it.
_ROW = st.shared(st.sampled_from(ROWS), key="row")
KNOWN = {
    "space": st.sampled_from(["", *SPACES]),
    "kind": st.sampled_from(["", *METRIC_KINDS]),
    "strategy": st.sampled_from(["", *STRATEGIES]),
    "classifier": st.sampled_from(["", *CLASSIFIERS]),
    "label": st.sampled_from(["merger", "not_merger", "spiral", "not_spiral", "dual_agn"]),
    "column": st.sampled_from(["mag_u", "mag_g", "mag_r", "mag_i", "mag_z"]),
    "spec_class": st.sampled_from(["GALAXY", "QSO"]),
    "bpt_class": st.sampled_from(["Seyfert", "LINER"]),
    "where": st.sampled_from(["", "z > 0.1", "mag_r < 20 AND ra > 10", "truth_class = 'spiral'", "(z >"]),
    "objid": st.sampled_from(OBJIDS),
    "seed_objid": st.sampled_from(OBJIDS),
    "exclude_objids": st.sampled_from(OBJIDS),
    "ra": _ROW.map(lambda row: row["ra"]),
    "dec": _ROW.map(lambda row: row["dec"]),
    "radius_arcsec": st.floats(0.1, 3600),
    "exclude_radius_arcsec": st.floats(0, 3600),
    "morphology_weight": st.floats(0, 10, width=32),
    "z_min": st.floats(0, 0.25, width=32),
    "z_max": st.floats(0.125, 1, width=32),
    "min": st.floats(14, 20, width=32),
    "max": st.floats(18, 25, width=32),
    "image": st.sampled_from(_stamp_files()),
}


def _plausible_value(field: FieldDescriptor, depth: int) -> st.SearchStrategy:
    """One value a client would send: a known name, a small count, a table objid, a small number."""
    t = field.type
    if field.name in KNOWN:
        return KNOWN[field.name]
    if t == FieldDescriptor.TYPE_MESSAGE:
        return message_strategy(field.message_type, depth + 1)
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(-1, 1, width=64 if t == FieldDescriptor.TYPE_DOUBLE else 32).filter(lambda x: x != 0)
    if t in INTEGER_BOUNDS:
        return st.integers(1, 20)
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t == FieldDescriptor.TYPE_STRING:
        return st.text(max_size=12)
    if t == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if t == FieldDescriptor.TYPE_ENUM:
        return st.sampled_from([v.number for v in field.enum_type.values])
    raise TypeError(f"field {field.full_name} has type {t}, which the fuzzer does not draw")


def _plausible(field: FieldDescriptor, depth: int) -> st.SearchStrategy:
    """The field as a client would fill it: short lists (a vector of the table's dimension), often unset."""
    element = _plausible_value(field, depth)
    if field.is_repeated:
        floats = field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)
        return st.lists(element, min_size=DIM, max_size=DIM) if floats else st.lists(element, max_size=3)
    if field.has_presence:
        return st.one_of(st.none(), element)
    return element


def _wild(field: FieldDescriptor, depth: int) -> st.SearchStrategy:
    """The field as no client should fill it: extremes, NaN and infinities, odd or long unicode, long lists."""
    t = field.type
    if t == FieldDescriptor.TYPE_MESSAGE:
        element = message_strategy(field.message_type, depth + 1, max_wild=len(field.message_type.fields))
    elif t == FieldDescriptor.TYPE_DOUBLE:
        element = st.one_of(st.sampled_from(SPECIAL_FLOATS + [1.7976931348623157e308, 5e-324]), st.floats())
    elif t == FieldDescriptor.TYPE_FLOAT:
        element = st.one_of(st.sampled_from(SPECIAL_FLOATS + [3.4028234663852886e38, 1e-45]), st.floats(width=32))
    elif t in INTEGER_BOUNDS:
        low, high = INTEGER_BOUNDS[t]
        edges = sorted(v for v in {low, high, low + 1, high - 1, -1, 0, 1, 1000, 1001} if low <= v <= high)
        element = st.one_of(st.sampled_from(edges), st.integers(low, high))
    elif t == FieldDescriptor.TYPE_BOOL:
        element = st.booleans()
    elif t == FieldDescriptor.TYPE_STRING:
        element = st.one_of(st.text(), st.text(min_size=1000, max_size=9000))
    elif t == FieldDescriptor.TYPE_BYTES:
        element = st.one_of(st.binary(max_size=256), st.binary(min_size=5000, max_size=20000))
    elif t == FieldDescriptor.TYPE_ENUM:
        element = st.integers(*I32)
    else:
        raise TypeError(f"field {field.full_name} has type {t}, which the fuzzer does not draw")
    if field.is_repeated:
        long = st.lists(_plausible_value(field, depth), min_size=100, max_size=3000)
        return st.one_of(st.lists(element, max_size=8), long)
    return element


def _build(descriptor: Descriptor, values: dict) -> object:
    message = message_factory.GetMessageClass(descriptor)()
    for name, value in values.items():
        field = descriptor.fields_by_name[name]
        if value is None:
            continue
        if field.is_repeated:
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                for item in value:
                    getattr(message, name).add().CopyFrom(item)
            else:
                getattr(message, name).extend(value)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            getattr(message, name).CopyFrom(value)
        else:
            setattr(message, name, value)
    return message


def message_strategy(descriptor: Descriptor, depth: int = 0, max_wild: int = MAX_WILD) -> st.SearchStrategy:
    """Messages of ``descriptor``: up to ``max_wild`` fields drawn wild, the others plausible, by type.

    Nested messages are drawn down to 3 levels, below which they are left empty.
    """
    if depth > 3:
        return st.just(message_factory.GetMessageClass(descriptor)())
    names = [f.name for f in descriptor.fields]
    plausible = {f.name: _plausible(f, depth) for f in descriptor.fields}
    wild = {f.name: _wild(f, depth) for f in descriptor.fields}

    def fields(wild_names: frozenset[str]) -> st.SearchStrategy:
        chosen = {name: wild[name] if name in wild_names else plausible[name] for name in names}
        return st.fixed_dictionaries(chosen).map(lambda values: _build(descriptor, values))

    if not names:
        return st.just(message_factory.GetMessageClass(descriptor)())
    return st.frozensets(st.sampled_from(names), max_size=max_wild).flatmap(fields)


@pytest.fixture(scope="module")
def channel(tmp_path_factory, survey, tiny_model):
    """A channel to a real server with the tiny ONNX model over its own 50-object table.

    The table is ``ROWS`` with embeddings of the model's dimension (image queries search it) and stamp
    files of the synthetic survey as sources (GetStamp draws them); SubmitLabels writes to its labels.
    """
    from encoders.embedder import OnnxEmbedder

    assert OnnxEmbedder(tiny_model).embedding_dim == DIM, "the tiny model changed: update DIM"
    vectors = np.random.default_rng(1).normal(size=(len(ROWS), DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    stamps = sorted((survey / "stamps").glob("*.fits"))
    rows = [
        {**row, "embedding": vector.tolist(), "source": str(stamp)} for row, vector, stamp in zip(ROWS, vectors, stamps)
    ]
    path = tmp_path_factory.mktemp("fuzz") / "ssald.lance"
    write_db(path, rows)
    with running_server(path, model_path=tiny_model) as address, grpc.insecure_channel(address) as chan:
        yield chan


def _code(channel: grpc.Channel, method: str, request) -> tuple[grpc.StatusCode, str]:
    descriptor = SSALD_SERVICE.methods_by_name[method]
    # Server-streaming RPCs (FindSimilarBatch, MapPoints) are read to their end: an error may come mid-stream.
    multicallable = channel.unary_stream if descriptor.server_streaming else channel.unary_unary
    call = multicallable(
        f"/{SSALD_SERVICE.full_name}/{method}",
        request_serializer=type(request).SerializeToString,
        response_deserializer=message_factory.GetMessageClass(descriptor.output_type).FromString,
    )
    try:
        answer = call(request, timeout=TIMEOUT)
        if descriptor.server_streaming:
            for _ in answer:
                pass
    except grpc.RpcError as error:
        return error.code(), error.details()
    return grpc.StatusCode.OK, ""


@pytest.mark.parametrize("method", [m.name for m in SSALD_SERVICE.methods])
def test_generated_requests_get_client_side_codes(channel, method) -> None:
    descriptor = SSALD_SERVICE.methods_by_name[method].input_type

    @settings(
        max_examples=EXAMPLES.get(method, DEFAULT_EXAMPLES),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )
    @given(request=message_strategy(descriptor))
    def answers(request) -> None:
        code, details = _code(channel, method, request)
        assert code in ALLOWED, f"{method} answered {code.name}: {details}"

    answers()


def test_server_alive_after_fuzzing(channel) -> None:
    """Runs after the fuzz tests (file order): the same server still answers health and queries."""
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    stats = ssald_pb2_grpc.SsaldStub(channel).Stats(ssald_pb2.StatsRequest(), timeout=TIMEOUT)
    assert stats.n_objects == len(ROWS)
