"""Ingest options: defaults in one place, validated on construction (the CLI's part: tests/clients/cli)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.options import IngestOptions


@pytest.mark.parametrize("bad", [{"batch_size": 0}, {"chunk_size": 0}, {"engine": "spark"}])
def test_bad_options_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError, match="must be"):
        IngestOptions(**bad)


def test_options_module_is_light() -> None:
    code = "import ingest.options, sys; bad = {'numpy', 'torch'} & set(sys.modules); assert not bad, bad"
    repo = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)})
