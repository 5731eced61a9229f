"""ssald_index.filters: SQL of metadata filters and cone boxes, and how a bad filter is reported."""

from __future__ import annotations

import pytest

from ssald_index.filters import Filter, cone_where, run_filtered, sql_string


def test_quotes_in_class_names_are_escaped():
    assert Filter(spec_class=["it's"]).sql() == "spec_class IN ('it''s')"
    assert sql_string("O'Neil") == "'O''Neil'"


def test_empty_filter_has_no_sql():
    assert Filter().sql() is None and not Filter()


def test_cone_box_handles_ra_wrap_and_poles():
    assert "ra >= 359.9" in cone_where(0.05, 0.0, 360.0) and "OR ra <= 0.15" in cone_where(0.05, 0.0, 360.0)
    assert "ra" not in cone_where(10.0, 89.99, 60.0).replace("dec", "")


def test_run_filtered_names_the_users_filter_only():
    def bad():
        raise ValueError("parse error")

    with pytest.raises(ValueError, match="bad filter 'x >'"):
        run_filtered(bad, "x >")
    with pytest.raises(ValueError, match="^parse error$"):
        run_filtered(bad, None)
