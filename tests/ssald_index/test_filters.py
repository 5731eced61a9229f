"""ssald_index.filters: SQL of metadata filters and cone boxes, and how a bad filter is reported."""

from __future__ import annotations

import pytest

from ssald_index.filters import (
    MAX_QUOTED_CHARS,
    MAX_WHERE_CHARS,
    MAX_WHERE_DEPTH,
    MAX_WHERE_OPERATORS,
    MAX_WHERE_TERMS,
    Filter,
    check_where,
    cone_where,
    run_filtered,
    sql_string,
)


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


@pytest.mark.parametrize(
    "where",
    [
        "source LIKE '%(?)$1:a%'",  # parentheses and placeholders inside a literal are text
        "source = 'it''s (closed'",
        '"z" > 0 AND `mag_r` < 17.5e0',
        "z::double > .5 AND (spec_class IN ('GALAXY', 'QSO') OR z IS NULL)",
        "lower(bpt_class) <> 'agn' AND NOT (z BETWEEN 0.1 AND 0.2)",
    ],
)
def test_check_where_allows_ordinary_filters(where):
    assert check_where(f"  {where} ") == where
    assert Filter(where=where).sql() == f"({where})"


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("true)) OR ((true", "did not open"),
        ("true) OR (true", "did not open"),
        ("(z > 0", "never closed"),
        ("(z > 0]", "did not open"),
        ("objid = $1", "placeholder"),
        ("objid = :a", "placeholder"),
        ("objid = ?", "placeholder"),
        ("objid = @a", "placeholder"),
        ("z > 0 -- )", "comment"),
        ("z > 0 /* ) */", "comment"),
        ("source = 'open", "unterminated"),
        ("source = E'x'", "prefixed string"),
        ("z > 0; DROP TABLE objects", "unexpected character"),
        ("()", "no operand"),
    ],
)
def test_check_where_rejects_escapes_placeholders_and_comments(where, reason):
    with pytest.raises(ValueError, match=reason):
        check_where(where)
    with pytest.raises(ValueError, match=reason):
        Filter(where=where)


def test_check_where_limits_are_exact_and_named():
    operators = "+".join(["z"] * (MAX_WHERE_OPERATORS)) + " > 0"  # MAX - 1 '+' and one '>'
    assert check_where(operators) == operators
    with pytest.raises(ValueError, match=f"has {MAX_WHERE_OPERATORS + 1} operators; at most {MAX_WHERE_OPERATORS}"):
        check_where("z + " + operators)
    terms = "objid IN (" + ", ".join(["1"] * (MAX_WHERE_TERMS - 1)) + ")"
    assert check_where(terms) == terms
    with pytest.raises(ValueError, match=f"has {MAX_WHERE_TERMS + 1} terms .*; at most {MAX_WHERE_TERMS}"):
        check_where(terms.replace("(1,", "(1, 1,"))
    deep = "(" * MAX_WHERE_DEPTH + "z > 0" + ")" * MAX_WHERE_DEPTH
    assert check_where(deep) == deep
    with pytest.raises(ValueError, match=f"has {MAX_WHERE_DEPTH + 1} levels of brackets; at most {MAX_WHERE_DEPTH}"):
        check_where(f"({deep})")
    long = "z > 0" + " " * (MAX_WHERE_CHARS - 5)
    assert check_where(long) == "z > 0"
    with pytest.raises(ValueError, match=f"has {MAX_WHERE_CHARS + 1} characters; at most {MAX_WHERE_CHARS}"):
        check_where(long + " ")


def test_errors_quote_at_most_a_bounded_excerpt():
    where = "+".join(["z"] * 700) + " > 0"
    with pytest.raises(ValueError) as err:
        Filter(where=where)
    assert len(str(err.value)) < MAX_QUOTED_CHARS + 150 and f"({len(where)} characters)" in str(err.value)
    with pytest.raises(ValueError) as err:
        run_filtered(lambda: (_ for _ in ()).throw(ValueError("parse error")), "x" * 10_000)
    assert len(str(err.value)) < MAX_QUOTED_CHARS + 100


def test_candidate_filter_checks_the_users_where_before_wrapping():
    from ssald_index.active.candidates import candidate_filter

    with pytest.raises(ValueError, match="did not open"):
        candidate_filter(bpt_agn=True, where="true)) OR ((true")
