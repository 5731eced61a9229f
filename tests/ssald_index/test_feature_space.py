"""The morphology search spaces, against an independent numpy computation."""

from __future__ import annotations

import numpy as np
import pytest

from ssald_index.active.classify import feature_matrix
from ssald_index.feature_space import (
    NoMorphology,
    check_morphology_weight,
    feature_space,
    resolve_space,
    standardise_morphology,
)


def _inputs(n: int = 40, d: int = 6, m: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=0.5, scale=2.0, size=(n, d)).astype(np.float32)
    morph = rng.gamma(2.0, size=(n, m)) * np.arange(1, m + 1)
    morph[rng.random((n, m)) < 0.15] = np.nan
    morph[3, 2] = np.inf
    return x, morph


def _reference_morphology(morph: np.ndarray) -> np.ndarray:
    out = np.empty_like(morph)
    for j in range(morph.shape[1]):
        col = morph[:, j].copy()
        finite = col[np.isfinite(col)]
        col[~np.isfinite(col)] = np.median(finite) if len(finite) else 0.0
        sd = np.sqrt(np.mean((col - col.mean()) ** 2))
        out[:, j] = (col - col.mean()) / (sd if sd > 0 else 1.0)
    return out / np.sqrt(morph.shape[1])


def _reference_embedding(x: np.ndarray) -> np.ndarray:
    u = x.astype(np.float64) / np.linalg.norm(x.astype(np.float64), axis=1)[:, None]
    c = u - u.mean(axis=0)
    return c / np.sqrt(np.mean(np.sum(c**2, axis=1)))


def test_morphology_space_matches_a_reference():
    x, morph = _inputs()
    out = feature_space(x, morph, "morphology")
    assert out.dtype == np.float32 and out.shape == (40, 10)
    assert np.allclose(out, _reference_morphology(morph), atol=1e-5)
    assert np.mean(np.sum(out.astype(np.float64) ** 2, axis=1)) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("weight", [1.0, 0.25, 10.0])
def test_combined_space_matches_a_reference(weight):
    x, morph = _inputs()
    out = feature_space(x, morph, "embedding+morphology", morphology_weight=weight)
    expected = np.hstack([_reference_embedding(x), weight * _reference_morphology(morph)])
    assert out.shape == (40, 16) and np.allclose(out, expected, atol=1e-5)
    assert np.mean(np.sum(out[:, :6].astype(np.float64) ** 2, axis=1)) == pytest.approx(1.0, abs=1e-5)


def test_embedding_space_is_the_unit_embedding_and_needs_no_morphology():
    x, _ = _inputs()
    out = feature_space(x, None, "embedding")
    assert np.allclose(out, x / np.linalg.norm(x, axis=1)[:, None], atol=1e-6)


def test_an_empty_or_constant_column_is_zero_and_precomputed_morphology_is_taken_as_is():
    x, morph = _inputs()
    morph[:, 0] = np.nan
    morph[:, 1] = 7.0
    s = standardise_morphology(morph)
    assert np.isfinite(s).all() and not s[:, :2].any()
    assert np.array_equal(
        feature_space(x, s, "embedding+morphology", standardised=True), feature_space(x, morph, "embedding+morphology")
    )


def test_classifier_features_share_the_standardisation():
    x, morph = _inputs()
    assert np.allclose(feature_matrix(x, morph, "morphology"), standardise_morphology(morph), atol=1e-6)


def test_bad_inputs_raise_value_errors_naming_the_problem():
    x, morph = _inputs()
    with pytest.raises(NoMorphology, match="no object has a morphology value"):
        feature_space(x, np.full_like(morph, np.nan), "morphology")
    with pytest.raises(NoMorphology):
        feature_space(x, None, "embedding+morphology")
    with pytest.raises(ValueError, match="unknown space 'pixels'; choose from embedding, morphology"):
        feature_space(x, morph, "pixels")
    with pytest.raises(ValueError, match=r"morphology_weight must lie in \(0, 10\], got 11.0"):
        feature_space(x, morph, "embedding+morphology", morphology_weight=11)
    with pytest.raises(ValueError, match="N = 40 rows"):
        feature_space(x, morph[:5], "morphology")
    assert check_morphology_weight(0) == check_morphology_weight(None) == 1.0
    with pytest.raises(ValueError, match="morphology_weight"):
        check_morphology_weight(-1.0)


def test_resolve_space_checks_combinations():
    assert resolve_space("") == ("embedding", 1.0)
    assert resolve_space("embedding+morphology", 2.0, metric=True) == ("embedding+morphology", 2.0)
    with pytest.raises(ValueError, match="needs space 'morphology' or 'embedding\\+morphology'"):
        resolve_space("embedding", 2.0)
    with pytest.raises(ValueError, match="use space 'embedding\\+morphology'"):
        resolve_space("morphology", metric=True)
