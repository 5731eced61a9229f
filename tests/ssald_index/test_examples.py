"""The query of "more like these, unlike those", and the checks of its examples and of batch requests."""

from __future__ import annotations

import numpy as np
import pytest

from ssald_index.batch import MAX_BATCH_INPUTS, check_batch
from ssald_index.examples import MAX_EXAMPLES, check_examples, example_query


def test_example_query_weighs_every_example_alike_whatever_its_norm() -> None:
    rng = np.random.default_rng(3)
    pos, neg = rng.normal(size=(3, 8)), rng.normal(size=(2, 8))
    scaled = pos * np.array([[1.0], [40.0], [0.01]])  # norms must not weigh the examples
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)  # noqa: E731
    expected = unit(unit(pos).sum(axis=0) / 3 - 0.3 * unit(neg).sum(axis=0) / 2)
    np.testing.assert_allclose(example_query(scaled, neg, negative_weight=0.3), expected, rtol=1e-12)
    np.testing.assert_allclose(example_query(pos), unit(unit(pos).mean(axis=0)), rtol=1e-12)
    np.testing.assert_allclose(example_query(pos, neg, negative_weight=0.0), example_query(pos), rtol=1e-12)


def test_examples_that_cancel_or_have_no_direction_are_refused() -> None:
    v = np.array([[1.0, 2.0, 0.0]])
    with pytest.raises(ValueError, match="cancel out"):
        example_query(v, 3 * v, negative_weight=1.0)
    with pytest.raises(ValueError, match="negative example 1 has no direction"):
        example_query(v, np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="negative_weight must lie in"):
        example_query(v, v, negative_weight=float("nan"))


def test_check_examples_deduplicates_in_order_and_names_conflicts() -> None:
    assert check_examples([5, 3, 5], [7, 7]) == ([5, 3], [7])
    with pytest.raises(ValueError, match="objids 3, 5 are given as both"):
        check_examples([5, 3], [3, 5, 9])
    check_examples(range(MAX_EXAMPLES - 1), [MAX_EXAMPLES])
    with pytest.raises(ValueError, match=f"at most {MAX_EXAMPLES}"):
        check_examples(range(MAX_EXAMPLES), [MAX_EXAMPLES])


def test_check_batch_bounds() -> None:
    check_batch(MAX_BATCH_INPUTS - 1, 1, 3.0, 10)
    with pytest.raises(ValueError, match=f"at most {MAX_BATCH_INPUTS} inputs, got {MAX_BATCH_INPUTS + 1}"):
        check_batch(MAX_BATCH_INPUTS, 1, 3.0, 10)
    check_batch(2, 0, 0.0, 10)  # no positions: the radius is unused
    with pytest.raises(ValueError, match="radius_arcsec"):
        check_batch(0, 1, float("nan"), 10)
