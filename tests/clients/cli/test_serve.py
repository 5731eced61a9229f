"""``python -m server serve`` is ``ssald serve`` alone (the server itself runs in tests/server/test_app.py)."""

from __future__ import annotations

import contextlib
import io

import pytest

import server.__main__
from clients.cli import build_parser


def test_python_m_server_has_the_serve_command_of_ssald(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        server.__main__.main(["serve", "--help"])
    alone = capsys.readouterr().out
    with contextlib.redirect_stdout(io.StringIO()) as out, pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    # the same description and options; only the usage lines (prog, wrapping) differ
    assert alone.startswith("usage: python -m server serve")
    assert alone[alone.index("Serve the ") :] == out.getvalue()[out.getvalue().index("Serve the ") :]
