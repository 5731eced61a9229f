"""A bad web flag (an unreadable cross-match catalogue, a non-positive upload limit) ends ``ssald serve --web``
and ``ssald web`` with one error line, before the server or the web app starts."""

from __future__ import annotations

import pytest

from clients.cli import main as ssald


def _bad_files(tmp_path) -> dict[str, tuple[list[str], str]]:
    garbage = tmp_path / "garbage.fits"
    garbage.write_bytes(b"\x00\x01 not a table at all")
    columns = tmp_path / "columns.csv"
    columns.write_text("name,flux\na,1\n")
    return {
        "garbage": (
            ["--crossmatch", str(garbage)],
            f"cannot read cross-match catalogue {str(garbage)!r}: Format could not be identified",
        ),
        "missing": (
            ["--crossmatch", str(tmp_path / "missing.fits")],
            f"cannot read cross-match catalogue {str(tmp_path / 'missing.fits')!r}: [Errno 2] No such file",
        ),
        "columns": (["--crossmatch", str(columns)], "has no objid and no RA/Dec columns (columns: name, flux)"),
        "radius": (["--crossmatch", str(columns), "--crossmatch-radius", "0"], "radius must be positive"),
        "upload": (["--max-upload-mb", "0"], "--max-upload-mb must be positive, got 0.0"),
    }


@pytest.mark.parametrize("case", ["garbage", "missing", "columns", "radius", "upload"])
def test_serve_web_with_a_bad_web_flag_exits_with_one_error_line(case, tmp_path, capsys):
    flags, message = _bad_files(tmp_path)[case]
    # The database does not exist: the command must end before the server would open it.
    argv = ["serve", "--db", str(tmp_path / "db"), "--port", "0", "--refresh", "0", "--web", "0", *flags]
    assert ssald(argv) == 1
    out, err = capsys.readouterr()
    assert out == ""  # no "listening on": the server never started
    (line,) = err.splitlines()
    assert line.startswith("ssald serve: error: ") and message in line, line


@pytest.mark.parametrize("case", ["garbage", "upload"])
def test_ssald_web_with_a_bad_web_flag_exits_with_one_error_line(case, tmp_path, capsys):
    flags, message = _bad_files(tmp_path)[case]
    assert ssald(["web", "--server", "127.0.0.1:9", "--port", "0", *flags]) == 2  # a usage error
    out, err = capsys.readouterr()
    (line,) = err.splitlines()
    assert out == "" and line.startswith("ssald web: error: ") and message in line, line
