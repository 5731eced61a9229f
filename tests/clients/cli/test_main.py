from __future__ import annotations

import re
import subprocess
import sys

from clients.cli import COMMAND_MODULES, build_parser


def ssald(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "clients.cli", *args], capture_output=True, text=True, timeout=timeout)


def test_help_lists_every_subcommand_without_loading_heavy_packages():
    out = ssald("--help")
    assert out.returncode == 0
    for command in ("simulate", "train", "export", "ingest", "serve", "similar", "demo", "al"):
        assert command in out.stdout
    # Every command module is imported by build_parser(); their work loads only when they run.
    heavy = {"torch", "numpy", "onnxruntime", "lancedb", "pyarrow", "galsim", "astropy", "sklearn", "server.app"}
    code = f"import sys, clients.cli; clients.cli.build_parser(); print(sorted({heavy} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    assert "clients.cli.al" in COMMAND_MODULES and build_parser().prog == "ssald"


def test_expected_errors_are_one_line_not_tracebacks(tmp_path):
    out = ssald(
        "ingest", "--data", str(tmp_path / "nope"), "--model", str(tmp_path / "m.onnx"), "--db", str(tmp_path / "db")
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.startswith("ssald ingest: error:")


def test_demo_end_to_end_small(tmp_path):
    """The README's main job, at a small size: simulate, train, export, ingest, serve, query."""
    out = ssald("demo", "--workdir", str(tmp_path / "demo"), "--n", "240", "--epochs", "1")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    last = out.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"dual-nucleus among 10 neighbours: (\d+)/10 \(prevalence (\d+\.\d)%\)", last)
    assert match, last
    assert 0 <= int(match.group(1)) <= 10
    assert "listening on 127.0.0.1:" in out.stdout
    assert "stopped" in out.stdout
    assert (tmp_path / "demo" / "model.onnx").exists()
