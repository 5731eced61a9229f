"""The committed stubs match ``proto/ssald.proto``, and the API matches the storage contract."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from proto import regenerate, ssald_pb2

GENERATED = ("ssald_pb2.py", "ssald_pb2.pyi", "ssald_pb2_grpc.py")
DERIVED_COLUMNS = {"ingested_at"}


def test_committed_stubs_are_up_to_date(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools")
    subprocess.run(regenerate.protoc_command(str(tmp_path)), cwd=regenerate.REPO_ROOT, check=True)
    stale = [
        name
        for name in GENERATED
        if (tmp_path / "proto" / name).read_bytes() != (regenerate.REPO_ROOT / "proto" / name).read_bytes()
    ]
    assert not stale, f"stubs {stale} are stale: run `python -m proto.regenerate` and commit the result"


def test_documented_command_is_the_one_run() -> None:
    command = "python -m grpc_tools.protoc -I. --python_out=. --grpc_python_out=. --pyi_out=. proto/ssald.proto"
    assert " ".join(["python", *regenerate.protoc_command()[1:]]) == command
    import proto

    assert command in proto.__doc__
    assert command in (regenerate.REPO_ROOT / "proto" / "ssald.proto").read_text()


def test_service_has_the_documented_rpcs() -> None:
    service = ssald_pb2.DESCRIPTOR.services_by_name["Ssald"]
    assert service.full_name == "ssald.v1.Ssald"
    assert {m.name: (m.input_type.name, m.output_type.name) for m in service.methods} == {
        "FindSimilar": ("FindSimilarRequest", "NeighboursResponse"),
        "GetObject": ("GetObjectRequest", "Object"),
        "Stats": ("StatsRequest", "StatsResponse"),
        "SearchVector": ("SearchVectorRequest", "NeighboursResponse"),
        "FindSimilarToImage": ("FindSimilarToImageRequest", "NeighboursResponse"),
        "ConeSearch": ("ConeSearchRequest", "ConeSearchResponse"),
        "ObjectsInCone": ("ObjectsInConeRequest", "ObjectsInConeResponse"),
        "Anomalies": ("AnomaliesRequest", "AnomaliesResponse"),
        "NextToLabel": ("NextToLabelRequest", "NextToLabelResponse"),
        "SubmitLabels": ("SubmitLabelsRequest", "SubmitLabelsResponse"),
        "Candidates": ("CandidatesRequest", "CandidatesResponse"),
        "GetStamp": ("GetStampRequest", "Stamp"),
        "FindSimilarBatch": ("FindSimilarBatchRequest", "BatchNeighbours"),
        "FindSimilarToExamples": ("FindSimilarToExamplesRequest", "NeighboursResponse"),
        "MapPoints": ("MapPointsRequest", "MapPointsChunk"),
    }
    for streamed in ("FindSimilarBatch", "MapPoints"):
        method = service.methods_by_name[streamed]
        assert method.server_streaming and not method.client_streaming


def test_object_message_mirrors_the_objects_schema() -> None:
    module = pytest.importorskip("ssald_index.schema")
    schema = module.objects_schema(8)
    fields = ssald_pb2.Object.DESCRIPTOR.fields_by_name
    # The morphology columns are for filters and classifiers; query results do not carry them.
    columns = {f.name: f for f in schema if f.name not in {*DERIVED_COLUMNS, *module.MORPHOLOGY_COLUMNS}}
    assert set(fields) == set(columns)
    optional = {name for name, fd in fields.items() if fd.has_presence}
    # Every nullable metadata column is `optional` on the wire, except the always-written identity and
    # provenance columns, which a row cannot lack.
    always_set = {"objid", "ra", "dec", "survey", "bands", "source", "model_id", "embedding"}
    assert optional == {name for name, f in columns.items() if f.nullable} - always_set
