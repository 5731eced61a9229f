"""Clusters and 2-D maps of the embedding space, stored as the ``cluster``, ``map_x``, ``map_y`` columns.

:func:`update_maps` fits MiniBatchKMeans and a 2-D projection on a sample of the embeddings, then
assigns / transforms every object in chunks. The projection is UMAP (cosine metric) by default; ``pca``
is a cheap linear alternative (and what the tests use: UMAP's first call compiles with numba for about
a minute). :func:`plot_map` draws the stored map coloured by any column.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from ssald_index.store import embedding_matrix

if TYPE_CHECKING:
    from ssald_index.store import ObjectStore

__all__ = ["MAP_COLOURS", "PROJECTIONS", "MapPoints", "map_points", "plot_map", "update_maps"]

PROJECTIONS = ("umap", "pca")
_CHUNK = 65536
#: Columns :func:`map_points` colours by: numbers as they are, classes as codes into the category names.
MAP_COLOURS = {
    "cluster": "number",
    "density_score": "number",
    "spec_class": "category",
    "bpt_class": "category",
    "truth_class": "category",
}


@dataclass
class MapPoints:
    """Every mapped object: ``objids`` (int64, sorted), ``x``, ``y`` and ``values`` (float32; NaN: none)
    and, for a categorical colour, the ``categories`` that the values index."""

    objids: np.ndarray
    x: np.ndarray
    y: np.ndarray
    values: np.ndarray
    categories: list[str] = field(default_factory=list)


def map_points(store: ObjectStore, color_by: str = "cluster") -> MapPoints:
    """The stored map of every object that has one, and one column to colour it by.

    Read from the served metadata cache when the store has one (no table scan), else from the table.

    Parameters
    ----------
    store : ObjectStore
    color_by : str
        A key of :data:`MAP_COLOURS`.

    Raises
    ------
    ValueError
        Unknown ``color_by``.
    """
    if color_by not in MAP_COLOURS:
        raise ValueError(f"unknown map colour {color_by!r}; expected one of {', '.join(MAP_COLOURS)}")
    names = ["objid", "map_x", "map_y", color_by]
    cache = store.cache
    if cache is not None:
        cols = {name: cache.column(name) for name in names}
    else:
        data = store.read(names).sort_by("objid")
        cols = {name: data.column(name).to_numpy(zero_copy_only=False) for name in names}
    x = cols["map_x"].astype(np.float32)
    y = cols["map_y"].astype(np.float32)
    keep = np.isfinite(x) & np.isfinite(y)
    raw = cols[color_by][keep]
    categories: list[str] = []
    if MAP_COLOURS[color_by] == "number":
        values = np.asarray(raw, dtype=np.float64).astype(np.float32)
    else:
        present = np.not_equal(raw, None)
        names, codes = np.unique(raw[present].astype(str), return_inverse=True)
        categories = [str(name) for name in names]
        values = np.full(len(raw), np.nan, dtype=np.float32)
        values[present] = codes
    objids = np.asarray(cols["objid"], dtype=np.int64)[keep]
    return MapPoints(objids, x[keep], y[keep], values, categories)


def _fit_projection(method: str, sample: np.ndarray, seed: int) -> Any:
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit(sample)
    if method == "umap":
        import umap

        return umap.UMAP(n_components=2, metric="cosine", random_state=seed, n_jobs=1).fit(sample)
    raise ValueError(f"unknown projection {method!r}; expected one of {', '.join(PROJECTIONS)}")


def update_maps(
    store: ObjectStore,
    n_clusters: int = 20,
    projection: str = "umap",
    sample: int = 50_000,
    seed: int = 0,
    progress: bool = True,
) -> int:
    """Fit clusters and a 2-D map on a sample, apply them to every object and store the columns.

    Parameters
    ----------
    store : ObjectStore
    n_clusters : int
        MiniBatchKMeans clusters (at most the number of objects).
    projection : {"umap", "pca"}
    sample : int
        Objects the models are fit on.
    seed : int
    progress : bool

    Returns
    -------
    int
        Objects written.
    """
    from sklearn.cluster import MiniBatchKMeans

    if projection not in PROJECTIONS:
        raise ValueError(f"unknown projection {projection!r}; expected one of {', '.join(PROJECTIONS)}")
    if n_clusters < 1:
        raise ValueError(f"n_clusters must be >= 1, got {n_clusters}")
    data = store.read(["objid", "embedding"])
    n = data.num_rows
    if n == 0:
        return 0
    vectors = embedding_matrix(data)
    rng = np.random.default_rng(seed)
    fit = vectors[np.sort(rng.choice(n, size=min(sample, n), replace=False))]
    kmeans = MiniBatchKMeans(n_clusters=min(n_clusters, len(fit)), random_state=seed, n_init=3).fit(fit)
    proj = _fit_projection(projection, fit, seed)
    cluster = np.empty(n, np.int32)
    xy = np.empty((n, 2), np.float32)
    bar = tqdm(total=n, desc=f"map ({projection})", unit="obj", disable=not progress)
    for lo in range(0, n, _CHUNK):
        chunk = vectors[lo : lo + _CHUNK]
        cluster[lo : lo + len(chunk)] = kmeans.predict(chunk)
        xy[lo : lo + len(chunk)] = proj.transform(chunk)
        bar.update(len(chunk))
    bar.close()
    update = pa.table({"objid": data.column("objid"), "cluster": cluster, "map_x": xy[:, 0], "map_y": xy[:, 1]})
    schema = store.table.schema
    update = update.cast(pa.schema([schema.field(c) for c in update.column_names]))
    store.table.merge_insert("objid").when_matched_update_all().execute(update)
    store.table.optimize()  # rewritten rows back into the indexes
    return n


def plot_map(
    store: ObjectStore,
    out: str | os.PathLike[str],
    color: str = "cluster",
    max_points: int = 200_000,
    extra_panel: Callable[[Any], None] | None = None,
) -> Path:
    """Scatter the stored map (``map_x``, ``map_y``) coloured by a column; returns the PNG path.

    ``extra_panel(ax)``, when given, draws into a second panel on the right (e.g. a stamp mosaic).

    Raises
    ------
    ValueError
        If the map was never computed or ``color`` is not a column.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if color not in store.table.schema.names:
        raise ValueError(f"cannot colour by {color!r}: not a column of the objects table")
    t = store.table.search().where("map_x IS NOT NULL").select(["map_x", "map_y", color]).limit(None).to_arrow()
    if t.num_rows == 0:
        raise ValueError("the map was never computed: run `ssald map --fit` (or ssald_index.maps.update_maps) first")
    if t.num_rows > max_points:
        t = t.take(pa.array(np.random.default_rng(0).choice(t.num_rows, max_points, replace=False)))
    x, y = t.column("map_x").to_numpy(), t.column("map_y").to_numpy()
    values = ["none" if v is None else str(v) for v in t.column(color).to_pylist()]
    if extra_panel is None:
        fig, ax = plt.subplots(figsize=(8, 8))
    else:
        fig, (ax, right) = plt.subplots(1, 2, figsize=(16, 8))
        extra_panel(right)
    names = sorted(set(values))
    cmap = plt.get_cmap("tab20", max(len(names), 1))
    for i, name in enumerate(names):
        mask = np.array([v == name for v in values])
        ax.scatter(x[mask], y[mask], s=2, color=cmap(i), label=name if len(names) <= 20 else None)
    if len(names) <= 20:
        ax.legend(markerscale=5, fontsize=7, title=color)
    ax.set_xlabel("map_x")
    ax.set_ylabel("map_y")
    ax.set_title(f"{len(x)} objects coloured by {color}")
    out = Path(out)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
