"""update_maps with UMAP (the suite's one UMAP test: its first call compiles with numba for about a minute)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ssald_index.maps import update_maps
from ssald_index.store import ObjectStore
from tests.ssald_index.test_store import DIM, make_rows


def test_umap_fit_on_a_sample_separates_two_populations(tmp_path):
    rows = make_rows(np.arange(1, 401))
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(2, DIM))
    side = np.arange(400) % 2
    vec = centres[side] + 0.05 * rng.normal(size=(400, DIM))
    vec = (vec / np.linalg.norm(vec, axis=1, keepdims=True)).astype(np.float32)
    idx = rows.schema.get_field_index("embedding")
    rows = rows.set_column(
        idx, rows.schema.field("embedding"), pa.FixedSizeListArray.from_arrays(pa.array(vec.ravel()), DIM)
    )
    store = ObjectStore.write(tmp_path / "db", rows)
    # Fit on 150 objects, transform all 400; two clusters requested.
    assert update_maps(store, n_clusters=2, projection="umap", sample=150, progress=False) == 400
    t = store.table.search().select(["objid", "cluster", "map_x", "map_y"]).limit(None).to_arrow()
    order = np.argsort(t.column("objid").to_numpy())
    cluster = t.column("cluster").to_numpy()[order]
    xy = np.stack([t.column("map_x").to_numpy(), t.column("map_y").to_numpy()], 1)[order]
    assert {tuple(sorted(set(cluster[side == s]))) for s in (0, 1)} in ({(0,), (1,)},)
    # The two populations occupy separate regions of the map: every point is nearer its own centroid.
    centroids = np.stack([xy[side == s].mean(0) for s in (0, 1)])
    nearest = np.argmin(((xy[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    assert np.array_equal(nearest, side)
