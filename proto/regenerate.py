"""Regenerate the committed Python stubs from ``proto/ssald.proto``.

Run from anywhere as ``python -m proto.regenerate``; it runs, from the repository root::

    python -m grpc_tools.protoc -I. --python_out=. --grpc_python_out=. --pyi_out=. proto/ssald.proto

Needs ``grpcio-tools`` (a dev dependency); the generated stubs themselves need only ``protobuf`` and
``grpcio``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

__all__ = ["PROTO_FILE", "REPO_ROOT", "protoc_command", "regenerate", "main"]

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTO_FILE = "proto/ssald.proto"


def protoc_command(out_dir: str = ".") -> list[str]:
    """The protoc command line, to be run with the repository root as working directory.

    Parameters
    ----------
    out_dir : str
        Where the generated modules go (``.`` writes them next to the ``.proto``, as committed).

    Returns
    -------
    list of str
        ``[sys.executable, "-m", "grpc_tools.protoc", ...]``.
    """
    return [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        "-I.",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--pyi_out={out_dir}",
        PROTO_FILE,
    ]


def regenerate(out_dir: str | Path = ".") -> None:
    """Run protoc from the repository root.

    Parameters
    ----------
    out_dir : str or Path
        Output root; the stubs land in ``out_dir/proto/``. Relative paths are relative to the
        repository root.

    Raises
    ------
    subprocess.CalledProcessError
        If protoc fails (a syntax error in the ``.proto``, ``grpcio-tools`` missing).
    """
    subprocess.run(protoc_command(str(out_dir)), cwd=REPO_ROOT, check=True)


def main() -> int:
    """Regenerate the stubs in place and say where they went."""
    regenerate()
    print(f"regenerated stubs from {PROTO_FILE} in {REPO_ROOT / 'proto'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
