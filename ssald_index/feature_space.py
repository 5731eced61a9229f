"""Search spaces that add the non-parametric morphology to the embedding: a physics prior.

``embedding``
    The unit embedding; the server searches it by cosine through its ANN index.
``morphology``
    The ``morph_*`` columns (:data:`ssald_index.schema.MORPHOLOGY_FEATURES`), NaN imputed with the column
    median, each standardised over the table and divided by sqrt(number of columns), so the mean squared
    norm of a row is about 1.
``embedding+morphology``
    The unit embedding centred on its mean and scaled to a mean squared norm of 1, beside the morphology
    part times ``morphology_weight`` (1: the two parts weigh the same).

Distances in the two morphology spaces are Euclidean. :class:`FeatureSpaces` builds them for every object
of an objects-table version, keeps the latest few, and searches them exactly
(:func:`ssald_index.metric_search.exact_neighbours`).
"""

from __future__ import annotations

import math
import threading
import warnings
from typing import Any

import numpy as np

from ssald_index.filters import Filter
from ssald_index.metric import check_choice
from ssald_index.metric_search import EmbeddingRows, ExactSpace, LRUCache, exact_neighbours
from ssald_index.schema import MORPHOLOGY_FEATURES, morphology_matrix, unit_rows

__all__ = [
    "SPACES",
    "DEFAULT_SPACE",
    "MAX_MORPHOLOGY_WEIGHT",
    "NoMorphology",
    "check_space",
    "check_morphology_weight",
    "resolve_space",
    "standardise_morphology",
    "feature_space",
    "read_morphology",
    "FeatureSpaces",
]

SPACES = ("embedding", "morphology", "embedding+morphology")
DEFAULT_SPACE = "embedding"
MAX_MORPHOLOGY_WEIGHT = 10.0


class NoMorphology(ValueError):
    """No object has a morphology value (columns absent or all null): ``FAILED_PRECONDITION``."""


def check_space(space: str) -> str:
    """``space`` if it names one of :data:`SPACES` (``""``: :data:`DEFAULT_SPACE`), else a ``ValueError``."""
    return check_choice(space, SPACES, DEFAULT_SPACE, "space")


def check_morphology_weight(weight: float | None) -> float:
    """``weight`` (``None`` or 0: 1.0) if in (0, :data:`MAX_MORPHOLOGY_WEIGHT`], else a ``ValueError``."""
    weight = 1.0 if weight is None or weight == 0 else float(weight)
    if not 0 < weight <= MAX_MORPHOLOGY_WEIGHT:
        raise ValueError(f"morphology_weight must lie in (0, {MAX_MORPHOLOGY_WEIGHT:g}], got {weight!r}")
    return weight


def resolve_space(space: str, morphology_weight: float | None = None, metric: bool = False) -> tuple[str, float]:
    """A request's checked (space, weight).

    Parameters
    ----------
    space : str
        One of :data:`SPACES`; ``""`` for the default.
    morphology_weight : float, optional
        ``None`` or 0 for the default 1.0; only with a morphology space.
    metric : bool
        The request also asks for a learned metric, which learns from the embedding (plus the morphology
        with ``"embedding+morphology"``): ``"morphology"`` alone is refused, as the learned kinds build on
        the unit embedding.

    Raises
    ------
    ValueError
        Unknown space, weight out of range or given with ``"embedding"``, ``"morphology"`` with a metric.
    """
    space, weight = check_space(space), check_morphology_weight(morphology_weight)
    if space == "embedding" and morphology_weight:
        raise ValueError(f"morphology_weight {morphology_weight!r} needs space 'morphology' or 'embedding+morphology'")
    if metric and space == "morphology":
        raise ValueError(
            "a learned metric learns from the embedding: use space 'embedding+morphology' to learn from the "
            "embedding and the morphology together"
        )
    return space, weight


def standardise_morphology(morphology: np.ndarray | None) -> np.ndarray:
    """Morphology columns with NaN replaced by the column median (0 for an empty column), then standardised.

    Parameters
    ----------
    morphology : ndarray, shape (N, M), or None
        The ``morph_*`` values, NaN (or inf) where not measured.

    Returns
    -------
    ndarray of float64, shape (N, M)
        Mean 0 and standard deviation 1 per column; a constant column is all 0.

    Raises
    ------
    NoMorphology
        ``morphology`` is None or holds no finite value.
    """
    if morphology is None or not np.isfinite(morphology).any():
        raise NoMorphology(
            "no object has a morphology value (the morph_* columns are absent or all null): ingest with "
            "morphology (the default of `ssald ingest`)"
        )
    m = np.asarray(morphology, dtype=np.float64)
    m = np.where(np.isfinite(m), m, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column: its median is 0
        median = np.nan_to_num(np.nanmedian(m, axis=0))
    m = np.where(np.isfinite(m), m, median)
    std = m.std(axis=0)
    return (m - m.mean(axis=0)) / np.where(std > 0, std, 1.0)


def _embedding_part(embeddings: np.ndarray) -> np.ndarray:
    u = unit_rows(np.asarray(embeddings, dtype=np.float64))
    c = u - u.mean(axis=0)
    rms = math.sqrt(float(np.mean(np.einsum("ij,ij->i", c, c)))) if len(c) else 0.0
    return c / (rms or 1.0)


def feature_space(
    embeddings: np.ndarray,
    morphology: np.ndarray | None,
    space: str = "embedding+morphology",
    morphology_weight: float = 1.0,
    *,
    standardised: bool = False,
) -> np.ndarray:
    """Every object's vector in ``space`` (see the module docstring); Euclidean distance ranks neighbours.

    Parameters
    ----------
    embeddings : ndarray, shape (N, D)
        Any norm; rows are normalised.
    morphology : ndarray, shape (N, M), or None
        The ``morph_*`` values (NaN where not measured); unused for ``"embedding"``.
    space : {"embedding", "morphology", "embedding+morphology"}
    morphology_weight : float
        Weight of the morphology part against the embedding part, in (0, 10].
    standardised : bool
        ``morphology`` is already :func:`standardise_morphology`'s output.

    Returns
    -------
    ndarray of float32, shape (N, d)
        ``"embedding"``: the unit embeddings (D columns); ``"morphology"``: M columns;
        ``"embedding+morphology"``: D + M columns.

    Raises
    ------
    NoMorphology
        A morphology space, but no morphology value.
    ValueError
        Unknown space, weight out of range, mismatched row counts.
    """
    space, weight = check_space(space), check_morphology_weight(morphology_weight)
    x = np.asarray(embeddings)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be a 2-d (N, D) array, got shape {x.shape}")
    if space == "embedding":
        return unit_rows(x.astype(np.float64)).astype(np.float32)
    m = np.asarray(morphology, dtype=np.float64) if standardised else standardise_morphology(morphology)
    if m.ndim != 2 or len(m) != len(x):
        raise ValueError(f"morphology must be (N, M) with N = {len(x)} rows, got shape {m.shape}")
    m = m / math.sqrt(m.shape[1])
    if space == "morphology":
        return m.astype(np.float32)
    return np.hstack([_embedding_part(x), weight * m]).astype(np.float32)


def read_morphology(store: Any, emb: EmbeddingRows) -> np.ndarray:
    """The ``morph_*`` columns of ``store``'s rows in ``emb``'s row order, float64 (N, M), NaN where absent."""
    present = [c for c in MORPHOLOGY_FEATURES if c in store.table.schema.names]
    out = np.full((len(emb.objids), len(MORPHOLOGY_FEATURES)), np.nan)
    if present:
        table = store.read(["objid", *present])
        at = emb.rows_of(table.column("objid").to_numpy())
        out[at[at >= 0]] = morphology_matrix(table)[at >= 0]
    return out


class FeatureSpaces:
    """The morphology spaces of a served table, built on demand and kept for the latest few keys.

    Parameters
    ----------
    max_cached : int
        Spaces kept, keyed by (space, weight, objects version); least recently used dropped first.
    """

    def __init__(self, max_cached: int = 2) -> None:
        self._spaces: LRUCache[tuple[str, float, int], ExactSpace] = LRUCache(max_cached)
        self.max_cached = max_cached
        self._morphology: tuple[int, np.ndarray] | None = None
        self._lock = threading.Lock()

    def morphology(self, store: Any, emb: EmbeddingRows) -> np.ndarray:
        """:func:`standardise_morphology` of the table's morphology in ``emb``'s row order (kept per version).

        Raises
        ------
        NoMorphology
            The table has no morphology columns, or they are all null.
        """
        with self._lock:
            if self._morphology is None or self._morphology[0] != int(emb.version):
                if not set(MORPHOLOGY_FEATURES) & set(store.table.schema.names):
                    raise NoMorphology(
                        f"table {store.table.name!r} has no morph_* columns (written before morphology was "
                        "measured): re-ingest with morphology (the default of `ssald ingest`)"
                    )
                try:
                    m = standardise_morphology(read_morphology(store, emb))
                except NoMorphology:
                    raise NoMorphology(
                        f"table {store.table.name!r} has morph_* columns but every value is null: ingest with "
                        "morphology (the default of `ssald ingest`; not --no-morphology)"
                    ) from None
                self._morphology = (int(emb.version), m)
            return self._morphology[1]

    def space(self, store: Any, emb: EmbeddingRows, space: str, morphology_weight: float = 1.0) -> ExactSpace:
        """Every object of ``emb`` in a morphology ``space`` (:func:`feature_space`), unless cached.

        Raises
        ------
        NoMorphology
            No morphology value in the table.
        ValueError
            Unknown space, ``"embedding"`` (searched by the ANN index, not here), weight out of range.
        """
        space, weight = check_space(space), check_morphology_weight(morphology_weight)
        if space == "embedding":
            raise ValueError("space 'embedding' is searched by cosine in the ANN index, not as a feature space")
        key = (space, weight, int(emb.version))
        with self._lock:
            found = self._spaces.get(key)
            if found is not None:
                return found
        z = feature_space(emb.x, self.morphology(store, emb), space, weight, standardised=True)
        found = ExactSpace(key, emb.objids, z, np.einsum("ij,ij->i", z, z))
        with self._lock:
            self._spaces.put(key, found)
        return found

    def neighbours(
        self,
        store: Any,
        emb: EmbeddingRows,
        objid: int,
        k: int,
        space: str,
        morphology_weight: float = 1.0,
        filter: Filter | None = None,
        exclude_radius_arcsec: float = 0.0,
    ) -> list[dict[str, Any]]:
        """The ``k`` nearest neighbours of an object in a morphology space, itself excluded.

        The contract of :meth:`ssald_index.store.ObjectStore.neighbours`, except that ``distance`` is
        Euclidean in the space.

        Raises
        ------
        ObjectNotFound
            ``objid`` is not in the table.
        NoMorphology
            No morphology value in the table.
        ValueError
            Bad ``k``, filter, space or weight.
        """
        space, weight = check_space(space), check_morphology_weight(morphology_weight)
        return exact_neighbours(
            store, emb, objid, k, lambda: self.space(store, emb, space, weight), filter, exclude_radius_arcsec
        )
