"""SsaldClient.find_similar_batch and find_similar_to_examples against a real server over a real table."""

from __future__ import annotations

import numpy as np
import pytest

from clients import BatchResult, GalaxyObject, InvalidArgument, NotFound, SsaldClient
from tests.server.helpers import exact_neighbours


@pytest.fixture(scope="module")
def client(address):
    with SsaldClient(address, timeout=10.0) as c:
        yield c


def _rocchio(rows: list[dict], positives: list[int], negatives: list[int], weight: float, k: int) -> list[int]:
    """Reference: cosine top-k to unit(mean unit positives - weight x mean unit negatives), examples left out."""
    vectors = {r["objid"]: np.asarray(r["embedding"], np.float64) / np.linalg.norm(r["embedding"]) for r in rows}
    query = np.mean([vectors[o] for o in positives], axis=0)
    if negatives:
        query = query - weight * np.mean([vectors[o] for o in negatives], axis=0)
    query /= np.linalg.norm(query)
    others = [o for o in vectors if o not in {*positives, *negatives}]
    return sorted(others, key=lambda o: 1.0 - vectors[o] @ query)[:k]


def test_batch_results_are_plain_values_with_errors_as_values(client, db) -> None:
    _, rows = db
    objids = [rows[3]["objid"], 12345, rows[9]["objid"]]
    position = (rows[20]["ra"], rows[20]["dec"])
    results = list(client.find_similar_batch(objids, positions=[position, (10.0, -89.99)], k=5, radius_arcsec=2.0))
    assert [r.index for r in results] == [0, 1, 2, 3, 4] and all(isinstance(r, BatchResult) for r in results)
    for result, objid in zip(results[:3], objids):
        assert result.objid == objid and result.match is None
    assert [n.objid for n in results[0].neighbours] == [o for o, _ in exact_neighbours(rows, objids[0], 5)]
    assert results[0].ok and results[2].ok and not results[1].ok
    assert isinstance(results[1].error, NotFound) and "12345" in str(results[1].error) and not results[1].neighbours
    matched = results[3]
    assert isinstance(matched.match, GalaxyObject) and matched.objid == matched.match.objid == rows[20]["objid"]
    assert matched.separation_arcsec == pytest.approx(0.0, abs=1e-6)
    assert [n.objid for n in matched.neighbours] == [n.objid for n in client.find_similar(rows[20]["objid"], k=5)]
    assert isinstance(results[4].error, NotFound) and results[4].objid is None and results[4].match is None


def test_batch_request_errors_raise_typed_while_iterating(client, db) -> None:
    results = client.find_similar_batch(list(range(1, 10_002)), k=3)
    with pytest.raises(InvalidArgument, match="at most 10000 inputs"):
        next(results)
    with pytest.raises(InvalidArgument, match="k must be"):
        list(client.find_similar_batch([db[1][0]["objid"]], k=0))


def test_batch_stopped_early_leaves_the_client_usable(client, db) -> None:
    _, rows = db
    results = client.find_similar_batch([r["objid"] for r in rows] * 20, k=3)
    assert next(results).index == 0
    results.close()  # cancels the call
    assert len(client.find_similar(rows[0]["objid"], k=2)) == 2


def test_examples_match_the_rocchio_reference(client, db) -> None:
    _, rows = db
    positives, negatives = [rows[i]["objid"] for i in (1, 4, 8)], [rows[i]["objid"] for i in (2, 5)]
    plain = client.find_similar_to_examples(positives, k=8)
    assert [n.objid for n in plain] == _rocchio(rows, positives, [], 0.5, 8)
    default = client.find_similar_to_examples(positives, negatives, k=8)
    assert [n.objid for n in default] == _rocchio(rows, positives, negatives, 0.5, 8)
    heavy = client.find_similar_to_examples(positives, negatives, k=8, negative_weight=2.0)
    assert [n.objid for n in heavy] == _rocchio(rows, positives, negatives, 2.0, 8)
    assert [n.objid for n in heavy] != [n.objid for n in plain]
    unweighted = client.find_similar_to_examples(positives, negatives, k=8, negative_weight=0.0)
    expected = [o for o in _rocchio(rows, positives, [], 0.5, 10) if o not in negatives][:8]  # only excluded
    assert [n.objid for n in unweighted] == expected
    assert [n.distance for n in default] == sorted(n.distance for n in default)


def test_examples_filters_and_exclusions(client, db) -> None:
    _, rows = db
    positives = [rows[0]["objid"], rows[6]["objid"]]
    first = client.find_similar_to_examples(positives, k=3)
    later = client.find_similar_to_examples(positives, k=3, exclude_objids=[n.objid for n in first])
    assert not {n.objid for n in later} & {n.objid for n in first}
    galaxies = client.find_similar_to_examples(positives, k=10, spec_class="GALAXY")
    assert len(galaxies) == 10 and all(n.spec_class == "GALAXY" for n in galaxies)


def test_examples_errors_are_typed(client, db) -> None:
    _, rows = db
    with pytest.raises(NotFound, match="example objids 99"):
        client.find_similar_to_examples([rows[0]["objid"], 99])
    with pytest.raises(InvalidArgument, match="at least one positive"):
        client.find_similar_to_examples([], [rows[0]["objid"]])
    with pytest.raises(InvalidArgument, match="negative_weight"):
        client.find_similar_to_examples([rows[0]["objid"]], [rows[1]["objid"]], negative_weight=-1.0)
