"""``ssald similar``: the table it prints and its exit codes, against a real server."""

from __future__ import annotations

import argparse

import pytest

from clients import GalaxyObject, Neighbour
from clients.cli import build_parser
from clients.cli.similar import COLUMNS, format_neighbours


def _parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["similar", *argv])


def _object(**overrides) -> dict:
    base = dict(
        objid=1237648720693755918, ra=150.123456789, dec=-2.5, survey="SYNTH", bands="u,g,r,i,z", source="x",
        mag_u=None, mag_g=None, mag_r=None, mag_i=None, mag_z=None, specobjid=None, z=None, z_err=None,
        spec_class=None, spec_subclass=None, bpt_class=None, truth_class=None, model_id="m",
    )  # fmt: skip
    return {**base, **overrides}


def test_format_neighbours_aligns_columns_and_marks_missing_values() -> None:
    query = GalaxyObject(**_object(z=0.1, spec_class="GALAXY", truth_class="dual_agn"))
    neighbours = [
        Neighbour(**_object(objid=7, z=0.0312, spec_class="GALAXY", bpt_class="Seyfert"), distance=0.01),
        Neighbour(**_object(objid=1237648720693755999, truth_class="merger"), distance=0.256789),
    ]
    text = format_neighbours(query, neighbours)
    header, names, first, second = text.splitlines()
    assert header.startswith("neighbours of objid 1237648720693755918 (")
    assert "truth_class=dual_agn" in header and "z=0.1000" in header
    assert names.split() == list(COLUMNS)
    assert first.split() == ["1", "7", "0.0100", "150.12346", "-2.50000", "0.0312", "GALAXY", "Seyfert", "-"]
    assert second.split() == [
        "2", "1237648720693755999", "0.2568", "150.12346", "-2.50000", "-", "-", "-", "merger",
    ]  # fmt: skip
    # numeric columns right-aligned: the objid and distance columns end at the same offsets on every line
    for column in ("objid", "distance", "z"):
        end = names.index(column) + len(column)
        assert first[end - 1] != " " and second[end - 1] != " " and first[end : end + 1] in ("", " ")


def test_format_neighbours_accepts_a_bare_objid_and_no_neighbours() -> None:
    assert format_neighbours(5, []) == "neighbours of objid 5\n(no neighbours)"


def test_similar_prints_the_table(address, db, capsys) -> None:
    _, rows = db
    args = _parse(str(rows[2]["objid"]), "--server", address, "-k", "5")
    assert args.func(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"neighbours of objid {rows[2]['objid']}")
    assert lines[1].split() == list(COLUMNS)
    assert [line.split()[0] for line in lines[2:]] == ["1", "2", "3", "4", "5"]


@pytest.mark.parametrize(
    ("argv", "code", "text"),
    [(["42"], "NOT_FOUND", "objid 42"), (["42", "-k", "0"], "INVALID_ARGUMENT", "got 0")],
)
def test_similar_errors_are_one_line_and_non_zero(address, capsys, argv, code, text) -> None:
    args = _parse(*argv, "--server", address)
    assert args.func(args) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith(f"ssald similar: {code}: ")
    assert text in captured.err


def test_similar_unreachable_server(capsys) -> None:
    args = _parse("42", "--server", "127.0.0.1:1", "--timeout", "2")
    assert args.func(args) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and ("UNAVAILABLE" in err or "DEADLINE_EXCEEDED" in err)


def test_parser_defaults() -> None:
    args = _parse("17", "--server", "h:1")
    assert (args.objid, args.server, args.k, args.timeout) == (17, "h:1", 10, 10.0)


def test_similar_batch_prints_a_table_per_input_and_each_failure_on_its_line(address, db, tmp_path, capsys) -> None:
    _, rows = db
    batch = tmp_path / "queries.txt"
    batch.write_text(
        f"# objids and positions\n{rows[2]['objid']}\n{rows[5]['ra']}, {rows[5]['dec']}\n\n42\n{rows[7]['objid']}\n"
    )
    args = _parse("--batch", str(batch), "--server", address, "-k", "3")
    assert args.func(args) == 1  # one input failed
    captured = capsys.readouterr()
    assert captured.err.splitlines() == ["ssald similar: line 5: NOT_FOUND: objid 42 is not in the objects table"]
    headers = [line for line in captured.out.splitlines() if line.startswith("neighbours of objid")]
    # objids first, then positions: the call's order
    assert [h.split()[3] for h in headers] == [str(rows[i]["objid"]) for i in (2, 7, 5)]
    assert f"ra={rows[5]['ra']:.5f}" in headers[2]
    ranks = [line.split()[0] for line in captured.out.splitlines() if line.strip()[:1].isdigit()]
    assert ranks == ["1", "2", "3"] * 3


def test_similar_batch_file_errors(address, tmp_path, capsys) -> None:
    batch = tmp_path / "bad.txt"
    batch.write_text("1 2 3\n")
    args = _parse("--batch", str(batch), "--server", address)
    assert args.func(args) == 1
    assert "bad.txt line 1: expected an objid or 'RA DEC'" in capsys.readouterr().err
    args = _parse("42", "--batch", str(batch), "--server", address)
    assert args.func(args) == 1
    assert "not both" in capsys.readouterr().err
