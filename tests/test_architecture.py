"""The architecture of docs/ARCHITECTURE.md, checked by tools rather than by reading.

* import-linter keeps the contracts declared in ``pyproject.toml`` (no cycles, the layers of the data
  flow, a torch-free serving path, client library modules that need only the proto stubs, library
  code that never imports a command);
* no module imports another module's private (``_name``) names;
* pylint's copy-paste detector finds no block of six or more repeated lines in library code.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("proto", "ssald_index", "encoders", "ingest", "server", "clients")
GENERATED = {"ssald_pb2.py", "ssald_pb2_grpc.py"}


def library_files() -> list[Path]:
    """Every hand-written module of the six packages (generated stubs excluded)."""
    return sorted(
        path
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if path.name not in GENERATED and "__pycache__" not in path.parts
    )


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_imports(source: str, own: str, label: str) -> list[str]:
    """``from x import _y`` and ``x._y`` where ``x`` is another project module, as ``label:line: text``."""
    tree = ast.parse(source, filename=label)
    aliases: dict[str, str] = {}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] not in PACKAGES or node.module == own:
                continue
            for alias in node.names:
                if is_private(alias.name):
                    found.append(f"{label}:{node.lineno}: from {node.module} import {alias.name}")
                else:
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PACKAGES and alias.name != own:
                    aliases[alias.asname or alias.name.split(".")[0]] = alias.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and is_private(node.attr):
            if node.value.id in aliases:
                found.append(f"{label}:{node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_import_contracts_are_kept() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports())"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout, result.stdout


def test_no_private_names_cross_modules() -> None:
    found = [
        line
        for path in library_files()
        for line in private_imports(path.read_text(), module_name(path), str(path.relative_to(ROOT)))
    ]
    assert not found, "private names used across modules:\n" + "\n".join(found)


def test_private_name_check_sees_both_forms() -> None:
    source = "from ssald_index.store import _hidden, public\nimport ssald_index.store as s\ns._other()\ns.__doc__\n"
    found = private_imports(source, "server.probe", "probe.py")
    assert found == ["probe.py:1: from ssald_index.store import _hidden", "probe.py:3: s._other"]
    assert private_imports("from server.probe import _own\n", "server.probe", "probe.py") == []


def test_no_copied_blocks_in_library_code() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pylint",
            "--disable=all",
            "--enable=duplicate-code",
            "--min-similarity-lines=6",
            "--ignore-imports=y",
            "--ignore-docstrings=y",
            "--ignore-comments=y",
            "--ignore-signatures=y",
            "--ignore=" + ",".join(sorted(GENERATED)),
            "--score=n",
            *PACKAGES,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "R0801" not in result.stdout, result.stdout
    assert result.returncode == 0, result.stdout + result.stderr
