"""``ssald serve`` as a process: ``python -m server serve`` is the same command, a server without a token
refuses every interface, the tokens never reach its output, and the Docker image's command needs a token
(the server itself runs in tests/server/test_app.py)."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import signal
import subprocess
import sys

import pytest

import server.__main__
from clients import PermissionDenied, SsaldClient, Unauthenticated
from clients.cli import build_parser
from clients.cli.serve import server_options
from server.options import InsecureBind
from tests.server.helpers import FIRST_OBJID, N_OBJECTS, REPO_ROOT, serve_process, server_environment, write_db


def test_python_m_server_has_the_serve_command_of_ssald(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        server.__main__.main(["serve", "--help"])
    alone = capsys.readouterr().out
    with contextlib.redirect_stdout(io.StringIO()) as out, pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    # the same description and options; only the usage lines (prog, wrapping) differ
    assert alone.startswith("usage: python -m server serve")
    assert alone[alone.index("Serve the ") :] == out.getvalue()[out.getvalue().index("Serve the ") :]


TOKEN = "serve-token-4b8e2d1c9f"
READ_TOKEN = "serve-read-token-7a0c5e3b"
WRONG = "serve-wrong-token-1f9d6c2a"


def _serve(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "clients.cli", *args]
    return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_serve_refuses_every_interface_without_a_token_unless_insecure(tmp_path) -> None:
    db_path = tmp_path / "db.lance"
    write_db(db_path)
    refused = _serve("serve", "--db", str(db_path), "--host", "0.0.0.0", "--port", "0", env=server_environment())
    assert refused.returncode == 1
    assert "refusing to listen on '0.0.0.0' without a token" in refused.stderr and "--insecure" in refused.stderr
    assert refused.stdout == ""

    with serve_process(db_path, "--host", "0.0.0.0", "--insecure", env=server_environment()) as (_, address):
        assert address.startswith("0.0.0.0:")
        with SsaldClient("127.0.0.1:" + address.rsplit(":", 1)[1]) as client:
            assert client.stats()["n_objects"] == N_OBJECTS


def test_the_tokens_never_reach_the_servers_output(tmp_path) -> None:
    db_path = tmp_path / "db.lance"
    write_db(db_path)
    (tmp_path / "read_token").write_text(READ_TOKEN)
    env = server_environment(SSALD_TOKEN=TOKEN)
    args = ("--read-token-file", str(tmp_path / "read_token"))
    with serve_process(db_path, *args, env=env, stderr=subprocess.PIPE) as (proc, address):
        for token, error in [(None, Unauthenticated), (WRONG, Unauthenticated), (READ_TOKEN, PermissionDenied)]:
            with SsaldClient(address, token=token) as client, pytest.raises(error):
                client.submit_labels([(FIRST_OBJID, "merger")])
        with SsaldClient(address, token=TOKEN) as client:
            assert client.submit_labels([(FIRST_OBJID, "merger")]).n_written == 1
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        output = proc.stdout.read() + proc.stderr.read()
    assert output.count("UNAUTHENTICATED from") == 2 and output.count("PERMISSION_DENIED from") == 1  # logged...
    for secret in (TOKEN, READ_TOKEN, WRONG):
        assert secret not in output  # ...without the tokens


@pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")
def test_a_token_file_open_to_other_users_is_warned_about_never_quoted(tmp_path, caplog, monkeypatch) -> None:
    monkeypatch.delenv("SSALD_READ_TOKEN", raising=False)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    args = build_parser().parse_args(["serve", "--db", str(tmp_path / "db.lance"), "--token-file", str(token_file)])
    token_file.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        assert server_options(args).security.token == TOKEN  # still served: a warning, as ssh gives
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert f"token file {token_file}" in warning and "(mode 0644)" in warning
    assert f"chmod 600 {token_file}" in warning and TOKEN not in warning

    caplog.clear()
    token_file.chmod(0o600)
    with caplog.at_level(logging.WARNING):
        assert server_options(args).security.token == TOKEN
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def _dockerfile_command() -> list[str]:
    lines = (REPO_ROOT / "Dockerfile").read_text().splitlines()
    (cmd,) = [line for line in lines if line.startswith("CMD ")]
    return json.loads(cmd.removeprefix("CMD "))


def test_the_dockerfile_command_refuses_to_start_without_a_token(monkeypatch) -> None:
    command = _dockerfile_command()
    assert command[:2] == ["ssald", "serve"] and "--insecure" not in command
    args = build_parser().parse_args(command[1:])
    assert args.host == "0.0.0.0"

    for name in ("SSALD_TOKEN", "SSALD_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(InsecureBind):
        server_options(args)
    started = _serve(*command[1:], env=server_environment())  # the image's command, as `docker run` would start it
    assert started.returncode == 1, started.stderr
    assert "refusing to listen on '0.0.0.0' without a token" in started.stderr

    monkeypatch.setenv("SSALD_TOKEN", TOKEN)
    assert server_options(args).security.token == TOKEN  # with the secret it would start
