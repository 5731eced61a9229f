"""FindSimilar / ConeSearch in the morphology search spaces, against a real server and table (issue 13)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from clients import FailedPrecondition, InvalidArgument, SsaldClient
from clients.cli import build_parser
from ssald_index.metric import fit_metric
from ssald_index.schema import MORPHOLOGY_COLUMNS, MORPHOLOGY_FEATURES, OBJECTS, objects_schema
from tests.server.helpers import make_rows, running_server, write_db

LABEL, N, DIM = "merger", 300, 16


def _survey(seed: int = 11) -> tuple[list[dict], np.ndarray]:
    """Random embeddings; 10% mergers that only their asymmetry, multimode and second peak give away."""
    rng = np.random.default_rng(seed)
    y = rng.random(N) < 0.1
    rows = make_rows(n=N, dim=DIM, seed=seed)
    for i, (row, c) in enumerate(zip(rows, y)):
        row["truth_class"] = LABEL if c else "spiral"
        for name in MORPHOLOGY_FEATURES:
            value = rng.normal(0.5, 0.1)
            if name in ("morph_asymmetry", "morph_multimode", "morph_second_peak") and c:
                value += 0.6
            row[name] = None if (i * 7 + len(name)) % 23 == 0 else float(np.float32(value))
        row["morph_flag"] = 0
    return rows, y


def _reference(rows: list[dict], query: int, k: int, space: str, weight: float = 1.0) -> list[int]:
    """Brute force over every row, the query left out, ties by objid."""
    ids = np.array([r["objid"] for r in rows])
    m = np.array([[np.nan if r[c] is None else r[c] for c in MORPHOLOGY_FEATURES] for r in rows], dtype=np.float64)
    for j in range(m.shape[1]):
        m[np.isnan(m[:, j]), j] = np.median(m[~np.isnan(m[:, j]), j])
    z = (m - m.mean(axis=0)) / m.std(axis=0) / np.sqrt(m.shape[1])
    if space == "embedding+morphology":
        e = np.array([r["embedding"] for r in rows], dtype=np.float64)
        e = e / np.linalg.norm(e, axis=1)[:, None]
        e -= e.mean(axis=0)
        z = np.hstack([e / np.sqrt(np.mean(np.sum(e**2, axis=1))), weight * z])
    d = np.sum((z - z[ids == query][0]) ** 2, axis=1)
    return [int(ids[j]) for j in np.lexsort((ids, d)) if ids[j] != query][:k]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(rows, y, client) over a real table and server."""
    rows, y = _survey()
    path = tmp_path_factory.mktemp("space") / "ssald.lance"
    write_db(path, rows)
    with running_server(path, refresh_s=0) as address, SsaldClient(address, timeout=60) as client:
        yield rows, y, client


def _precision(client: SsaldClient, rows: list[dict], y: np.ndarray, **kwargs) -> float:
    truth = {r["objid"]: c for r, c in zip(rows, y)}
    queries = [r["objid"] for r, c in zip(rows, y) if c]
    return float(np.mean([truth[n.objid] for q in queries for n in client.find_similar(q, k=10, **kwargs)]))


def test_morphology_space_finds_the_class_the_embedding_cannot(served):
    rows, y, client = served
    embedding, morphology = _precision(client, rows, y), _precision(client, rows, y, space="morphology")
    combined = _precision(client, rows, y, space="embedding+morphology", morphology_weight=3.0)
    assert embedding < 0.25 and morphology > 0.8 and combined > embedding + 0.4, (embedding, morphology, combined)


@pytest.mark.parametrize(
    ("space", "weight"), [("morphology", None), ("embedding+morphology", None), ("embedding+morphology", 0.3)]
)
def test_neighbours_match_a_brute_force_reference(served, space, weight):
    rows, y, client = served
    for query in (rows[0]["objid"], next(r["objid"] for r, c in zip(rows, y) if c)):
        found = client.find_similar(query, k=15, space=space, morphology_weight=weight)
        assert [n.objid for n in found] == _reference(rows, query, 15, space, weight or 1.0)
        distances = [n.distance for n in found]
        assert distances == sorted(distances) and distances[0] > 0


def test_filters_exclusions_and_cone_search_apply_in_the_space(served):
    rows, _, client = served
    query = rows[3]["objid"]
    found = client.find_similar(query, k=20, space="morphology", z_max=0.15, spec_class="GALAXY")
    assert len(found) == 20 and all(n.z is not None and n.z <= 0.15 and n.spec_class == "GALAXY" for n in found)
    everything = client.find_similar(query, k=1000, space="embedding+morphology")
    assert len(everything) == N - 1 and query not in {n.objid for n in everything}
    match = client.cone_search(rows[3]["ra"], rows[3]["dec"], radius_arcsec=1.0, k=5, space="embedding+morphology")
    assert match.match.objid == query
    assert [n.objid for n in match.neighbours] == [n.objid for n in everything[:5]]


def test_filter_keeps_the_reference_order(served):
    rows, _, client = served
    query = rows[3]["objid"]
    found = [n.objid for n in client.find_similar(query, k=1000, space="morphology", z_max=0.15)]
    kept = {r["objid"] for r in rows if r["z"] is not None and r["z"] <= 0.15}
    assert found == [o for o in _reference(rows, query, N, "morphology") if o in kept]


def test_sky_exclusion_drops_a_close_pair(tmp_path):
    rows, _ = _survey()
    rows[1]["ra"], rows[1]["dec"] = rows[0]["ra"], rows[0]["dec"] + 1.0 / 3600
    for name in MORPHOLOGY_FEATURES:
        rows[1][name] = rows[0][name]
    path = tmp_path / "ssald.lance"
    write_db(path, rows)
    with running_server(path, refresh_s=0) as address, SsaldClient(address, timeout=60) as client:
        near = client.find_similar(rows[0]["objid"], k=3, space="morphology")
        assert near[0].objid == rows[1]["objid"] and near[0].distance == pytest.approx(0.0, abs=1e-3)
        apart = client.find_similar(rows[0]["objid"], k=3, space="morphology", exclude_radius_arcsec=2.0)
        assert rows[1]["objid"] not in {n.objid for n in apart}


def test_a_learned_metric_learns_from_the_morphology_too(served):
    rows, y, client = served
    labelled = [r["objid"] for r, c in zip(rows, y) if c][:10] + [r["objid"] for r, c in zip(rows, y) if not c][:30]
    truth = {r["objid"]: c for r, c in zip(rows, y)}
    client.submit_labels([(o, LABEL if truth[o] else "spiral") for o in labelled])
    queries = [r["objid"] for r, c in zip(rows, y) if c and r["objid"] not in labelled]

    def precision(**kwargs) -> float:
        hits = [truth[n.objid] for q in queries for n in client.find_similar(q, k=10, metric_label=LABEL, **kwargs)]
        return float(np.mean(hits))

    embedding_only, with_morphology = precision(), precision(space="embedding+morphology")
    assert with_morphology > embedding_only + 0.3, (embedding_only, with_morphology)
    # Reference: fit_metric on the same labels with the standardised morphology as extra features.
    ids = np.array([r["objid"] for r in rows])
    x = np.array([r["embedding"] for r in rows], dtype=np.float32)
    m = np.array([[np.nan if r[c] is None else r[c] for c in MORPHOLOGY_FEATURES] for r in rows])
    m = np.where(np.isnan(m), np.nanmedian(m, axis=0), m)
    m = (m - m.mean(axis=0)) / m.std(axis=0)
    rows_l = np.array([int(np.flatnonzero(ids == o)[0]) for o in labelled])
    metric = fit_metric(x, rows_l, np.array([truth[o] for o in labelled], dtype=int), extra=m)
    z = metric.transform(x, m).astype(np.float64)
    q = queries[0]
    d = np.sum((z - z[ids == q][0]) ** 2, axis=1)
    expected = [int(ids[j]) for j in np.lexsort((ids, d)) if ids[j] != q][:10]
    assert [n.objid for n in client.find_similar(q, k=10, metric_label=LABEL, space="embedding+morphology")] == expected


def test_bad_space_requests_are_invalid_arguments(served):
    rows, _, client = served
    objid = rows[0]["objid"]
    with pytest.raises(InvalidArgument, match="unknown space 'pixels'; choose from embedding, morphology"):
        client.find_similar(objid, space="pixels")
    with pytest.raises(InvalidArgument, match=r"morphology_weight must lie in \(0, 10\], got 11"):
        client.find_similar(objid, space="embedding+morphology", morphology_weight=11)
    with pytest.raises(InvalidArgument, match="morphology_weight"):
        client.find_similar(objid, space="embedding+morphology", morphology_weight=0)
    with pytest.raises(InvalidArgument, match="needs space 'morphology' or 'embedding\\+morphology'"):
        client.find_similar(objid, morphology_weight=2.0)
    with pytest.raises(InvalidArgument, match="use space 'embedding\\+morphology'"):
        client.find_similar(objid, space="morphology", metric_label=LABEL)
    with pytest.raises(InvalidArgument, match="k must be an integer between 1 and 1000"):
        client.find_similar(objid, k=0, space="morphology")
    with pytest.raises(InvalidArgument, match="bad filter"):
        client.find_similar(objid, space="morphology", where="no_such_column > 1")
    with pytest.raises(InvalidArgument, match="unknown space"):
        client.cone_search(rows[0]["ra"], rows[0]["dec"], 1.0, space="Morphology")
    with pytest.raises(KeyError):
        client.find_similar(12345, space="morphology")


def test_a_table_without_morphology_is_a_failed_precondition(tmp_path):
    import lancedb

    rows = make_rows(n=30, dim=DIM)
    write_db(tmp_path / "null", rows)  # morph_* columns, every value null
    old = pa.Table.from_pylist(rows, schema=objects_schema(DIM)).drop_columns(list(MORPHOLOGY_COLUMNS))
    lancedb.connect(tmp_path / "old").create_table(OBJECTS, data=old)  # written before the columns existed
    for db, problem in (("null", "has morph_\\* columns but every value is null"), ("old", "has no morph_\\* columns")):
        with running_server(tmp_path / db, refresh_s=0) as address, SsaldClient(address, timeout=60) as client:
            assert len(client.find_similar(rows[0]["objid"], k=3)) == 3
            for space in ("morphology", "embedding+morphology"):
                with pytest.raises(FailedPrecondition, match=f"table 'objects' {problem}") as err:
                    client.find_similar(rows[0]["objid"], k=3, space=space)
                assert err.value.code == "FAILED_PRECONDITION"
            with pytest.raises(FailedPrecondition, match=problem):
                client.cone_search(rows[0]["ra"], rows[0]["dec"], 1.0, k=3, space="morphology")


def test_cli_similar_takes_a_space(served, capsys):
    rows, _, client = served
    parser = build_parser()
    base = ["similar", str(rows[4]["objid"]), "--server", client.address, "-k", "3"]
    plain, spaced = (
        parser.parse_args(base),
        parser.parse_args([*base, "--space", "embedding+morphology", "--morphology-weight", "2"]),
    )
    assert spaced.space == "embedding+morphology" and spaced.morphology_weight == 2.0
    assert plain.func(plain) == 0
    embedding = capsys.readouterr().out
    assert spaced.func(spaced) == 0
    combined = capsys.readouterr().out
    assert len(combined.splitlines()) == 5 and combined != embedding
    expected = _reference(rows, rows[4]["objid"], 3, "embedding+morphology", 2.0)
    assert [int(line.split()[1]) for line in combined.splitlines()[2:]] == expected
    bad = parser.parse_args([*base, "--space", "pixels"])
    assert bad.func(bad) == 1
    assert "INVALID_ARGUMENT: unknown space 'pixels'" in capsys.readouterr().err
