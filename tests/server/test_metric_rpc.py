"""FindSimilar / ConeSearch in a metric learned from labels, against a real server and table (issue 13)."""

from __future__ import annotations

import numpy as np
import pytest

from clients import FailedPrecondition, InvalidArgument, SsaldClient
from clients.cli import build_parser
from server.handle import StoreHandle
from ssald_index.active.labels import Label, add_labels
from ssald_index.active.learned import LearnedSpaces
from ssald_index.active.session import ActiveLearning
from ssald_index.metric import fit_metric
from tests.server.helpers import make_rows, running_server, write_db

LABEL, N, DIM = "merger", 300, 16


def _survey(seed: int = 5) -> tuple[list[dict], np.ndarray]:
    """300 rows whose 10% mergers sit apart along one random direction drowned in 15 noisy ones."""
    rng = np.random.default_rng(seed)
    y = (rng.random(N) < 0.1).astype(np.int64)
    x = rng.normal(size=(N, DIM))
    x[:, 0] = rng.normal(scale=0.3, size=N) + 2.5 * y
    x = x @ np.linalg.qr(rng.normal(size=(DIM, DIM)))[0]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    rows = make_rows(n=N, dim=DIM, seed=seed)
    for row, v, c in zip(rows, x, y):
        row["embedding"] = v.astype(np.float32).tolist()
        row["truth_class"] = LABEL if c else "spiral"
    return rows, y


@pytest.fixture()
def served(tmp_path):
    """(db_path, rows, y, labelled {objid: label}, client): 12 mergers and 36 others labelled."""
    rows, y = _survey()
    path = tmp_path / "ssald.lance"
    write_db(path, rows)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    labelled = {rows[i]["objid"]: LABEL for i in pos[:12]}
    labelled |= {rows[i]["objid"]: f"not_{LABEL}" for i in neg[:30]}
    labelled |= {rows[i]["objid"]: "ring" for i in neg[30:36]}  # another class counts as a negative
    with running_server(path, refresh_s=0) as address, SsaldClient(address, timeout=60) as client:
        client.submit_labels(list(labelled.items()))
        yield path, rows, y, labelled, client


def _reference(rows: list[dict], labelled: dict[int, str], query: int, k: int, kind: str) -> list[int]:
    """Brute force: fit_metric on the same labels, every object mapped, Euclidean neighbours (query out)."""
    ids = np.array([r["objid"] for r in rows])
    x = np.array([r["embedding"] for r in rows], dtype=np.float32)
    at = {o: i for i, o in enumerate(ids.tolist())}
    lab = np.array([at[o] for o in labelled])
    z = fit_metric(x, lab, np.array([v == LABEL for v in labelled.values()], dtype=int), kind=kind).transform(x)
    z = z.astype(np.float64)
    d = np.sum((z - z[at[query]]) ** 2, axis=1)
    order = [j for j in np.lexsort((ids, d)) if ids[j] != query][:k]
    return [int(ids[j]) for j in order]


@pytest.mark.parametrize("kind", ["probe", "nca", "head"])
def test_learned_metric_neighbours_match_a_brute_force_reference(served, kind):
    _, rows, y, labelled, client = served
    query = next(r["objid"] for r, c in zip(rows, y) if c and r["objid"] not in labelled)
    found = client.find_similar(query, k=10, metric_label=LABEL, metric_kind=kind)
    assert [n.objid for n in found] == _reference(rows, labelled, query, 10, kind)
    assert query not in {n.objid for n in found}
    distances = [n.distance for n in found]
    assert distances == sorted(distances) and distances[0] >= 0


def test_learned_metric_finds_more_of_the_class_than_the_embedding(served):
    _, rows, y, labelled, client = served
    queries = [r["objid"] for r, c in zip(rows, y) if c and r["objid"] not in labelled]
    truth = {r["objid"]: r["truth_class"] for r in rows}

    def precision(**metric) -> float:
        hits = [truth[n.objid] == LABEL for q in queries for n in client.find_similar(q, k=10, **metric)]
        return float(np.mean(hits))

    default, learned = precision(), precision(metric_label=LABEL)
    assert learned > default + 0.3, (default, learned)
    first = queries[0]
    assert [n.objid for n in client.find_similar(first, k=10)] != [
        n.objid for n in client.find_similar(first, k=10, metric_label=LABEL)
    ]


def test_unknown_or_thin_labels_are_failed_precondition_naming_the_counts(served):
    _, rows, _, labelled, client = served
    with pytest.raises(FailedPrecondition, match=r"label 'ring_galaxy' has 0 positive and 48 negative labels") as err:
        client.find_similar(rows[0]["objid"], k=5, metric_label="ring_galaxy")
    assert err.value.code == "FAILED_PRECONDITION"
    # "ring" has 6 positives but the metric needs negatives too: every other label counts as one.
    assert client.find_similar(rows[0]["objid"], k=5, metric_label="ring")
    client.submit_labels([(next(r["objid"] for r in rows if r["objid"] not in labelled), "bar")])
    with pytest.raises(FailedPrecondition, match=r"'bar' has 1 positive and 48 negative labels; .* at least 2 of each"):
        client.find_similar(rows[0]["objid"], k=5, metric_label="bar")


def test_bad_metric_requests_are_invalid_arguments(served):
    _, rows, _, _, client = served
    objid = rows[0]["objid"]
    with pytest.raises(InvalidArgument, match="unknown metric kind 'lmnn'; choose from probe, nca, head"):
        client.find_similar(objid, metric_label=LABEL, metric_kind="lmnn")
    with pytest.raises(InvalidArgument, match="metric.kind 'nca' needs metric.label"):
        client.find_similar(objid, metric_kind="nca")
    with pytest.raises(InvalidArgument, match="k must be an integer between 1 and 1000"):
        client.find_similar(objid, k=0, metric_label=LABEL)
    with pytest.raises(InvalidArgument, match="bad filter"):
        client.find_similar(objid, metric_label=LABEL, where="no_such_column > 1")
    with pytest.raises(KeyError):
        client.find_similar(12345, metric_label=LABEL)


def test_filters_and_sky_exclusion_apply_in_the_learned_space(served):
    _, rows, _, labelled, client = served
    query = rows[3]["objid"]
    found = client.find_similar(query, k=20, metric_label=LABEL, z_max=0.15, spec_class="GALAXY")
    assert len(found) == 20 and all(n.z is not None and n.z <= 0.15 and n.spec_class == "GALAXY" for n in found)
    unfiltered = client.find_similar(query, k=1000, metric_label=LABEL)
    assert len(unfiltered) == N - 1
    # The nearest neighbour, moved onto the query's sky position, is left out with an exclusion radius.
    nearest = unfiltered[0].objid
    kept = [n.objid for n in client.find_similar(query, k=5, metric_label=LABEL, exclude_radius_arcsec=1.0)]
    assert nearest in kept  # elsewhere on the sky: not excluded
    ra, dec = rows[3]["ra"], rows[3]["dec"]
    match = client.cone_search(ra, dec, radius_arcsec=1.0, k=5, metric_label=LABEL)
    assert match.match.objid == query
    assert [n.objid for n in match.neighbours] == [n.objid for n in unfiltered[:5]]


def test_sky_exclusion_drops_a_close_pair(tmp_path):
    rows, _ = _survey()
    rows[1]["ra"], rows[1]["dec"] = rows[0]["ra"], rows[0]["dec"] + 1.0 / 3600
    rows[1]["embedding"] = rows[0]["embedding"]
    path = tmp_path / "ssald.lance"
    write_db(path, rows)
    with running_server(path, refresh_s=0) as address, SsaldClient(address, timeout=60) as client:
        client.submit_labels([(rows[i]["objid"], LABEL if i < 4 else "spiral") for i in range(2, 10)])
        near = client.find_similar(rows[0]["objid"], k=3, metric_label=LABEL)
        assert near[0].objid == rows[1]["objid"] and near[0].distance == pytest.approx(0.0, abs=1e-3)
        apart = client.find_similar(rows[0]["objid"], k=3, metric_label=LABEL, exclude_radius_arcsec=2.0)
        assert rows[1]["objid"] not in {n.objid for n in apart}


def test_spaces_are_cached_until_the_labels_change(served):
    path, rows, _, labelled, _ = served
    emb = ActiveLearning(StoreHandle(path, refresh_s=0)).embeddings()
    spaces = LearnedSpaces(path, max_cached=2)
    first = spaces.space(emb, LABEL)
    assert spaces.space(emb, LABEL, "probe") is first and first.key[:2] == (LABEL, "probe")
    assert first.z.shape == (N, DIM + 1) and first.metric.n_positive == 12
    add_labels(path, [Label(next(r["objid"] for r in rows if r["objid"] not in labelled), LABEL)])
    second = spaces.space(emb, LABEL)
    assert second is not first and second.key[2] > first.key[2] and second.metric.n_positive == 13
    spaces.space(emb, LABEL, "nca")
    spaces.space(emb, LABEL, "head")
    assert spaces.space(emb, LABEL) is not second  # evicted: two spaces kept


def test_cli_similar_takes_a_metric_label(served, capsys):
    _, rows, _, _, _ = served
    parser = build_parser()
    address = served[4].address
    args = parser.parse_args(["similar", str(rows[4]["objid"]), "--server", address, "-k", "3"])
    args_metric = parser.parse_args(
        ["similar", str(rows[4]["objid"]), "--server", address, "-k", "3", "--metric-label", LABEL]
    )
    assert args_metric.metric_label == LABEL and args_metric.metric_kind == ""
    assert args.func(args) == 0
    plain = capsys.readouterr().out
    assert args_metric.func(args_metric) == 0
    learned = capsys.readouterr().out
    assert len(learned.splitlines()) == 5 and learned != plain
    unknown = parser.parse_args(
        ["similar", str(rows[4]["objid"]), "--server", address, "--metric-label", "nope", "--metric-kind", "nca"]
    )
    assert unknown.func(unknown) == 1
    assert "FAILED_PRECONDITION: label 'nope' has 0 positive" in capsys.readouterr().err
