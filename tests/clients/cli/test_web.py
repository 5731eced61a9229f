"""``ssald web`` and ``ssald serve --web`` as a user runs them: child processes, real servers, SIGINT."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading

import httpx

from tests.server.helpers import REPO_ROOT, running_server, write_db


def _start(command: list[str], lines: int) -> tuple[subprocess.Popen, list[str]]:
    """Run ``ssald COMMAND`` and read its first ``lines`` lines of stdout (killed after 60 s without them)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "clients.cli", *command], cwd=REPO_ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    timer = threading.Timer(60, proc.kill)
    timer.start()
    try:
        return proc, [proc.stdout.readline() for _ in range(lines)]
    finally:
        timer.cancel()


def _stop(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    return proc.returncode, out


def test_ssald_web_serves_a_remote_server_and_stops_on_sigint(tmp_path):
    write_db(tmp_path / "db")
    with running_server(tmp_path / "db", refresh_s=0) as address:
        proc, (line,) = _start(["web", "--server", address, "--port", "0"], 1)
        try:
            match = re.fullmatch(r"web on (http://127\.0\.0\.1:\d+)/\n", line)
            assert match, line
            assert httpx.get(f"{match.group(1)}/api/stats", timeout=30).json()["n_objects"] == 50
        finally:
            code, out = _stop(proc)
    assert (code, out) == (0, "stopped (SIGINT)\n")


def test_ssald_web_refuses_to_listen_beyond_loopback_without_a_token(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "clients.cli", "web", "--server", "127.0.0.1:9", "--host", "0.0.0.0", "--port", "0"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 2
    assert "refusing to serve the web app on '0.0.0.0', beyond loopback, without a token" in done.stderr


def test_ssald_serve_web_runs_both_in_one_process(tmp_path):
    write_db(tmp_path / "db")
    proc, lines = _start(["serve", "--db", str(tmp_path / "db"), "--port", "0", "--refresh", "0", "--web", "0"], 2)
    try:
        assert re.fullmatch(r"listening on 127\.0\.0\.1:\d+\n", lines[0]), lines
        match = re.fullmatch(r"web on (http://127\.0\.0\.1:\d+)/\n", lines[1])
        assert match, lines
        scs = httpx.get(f"{match.group(1)}/scs", params={"RA": 10, "DEC": 5, "SR": 0.5}, timeout=30)
        assert scs.status_code == 200 and b'ucd="ID_MAIN"' in scs.content
        assert httpx.get(f"{match.group(1)}/api/stats", timeout=30).json()["n_objects"] == 50
    finally:
        code, out = _stop(proc)
    assert code == 0 and out.endswith("stopped (SIGINT)\n")
