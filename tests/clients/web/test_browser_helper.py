"""The browser tests' gate (:func:`tests.clients.web.conftest.chromium`): without Chromium on PATH they skip
with how to install it, and fail instead where ``SSALD_REQUIRE_BROWSER=1`` (CI)."""

from __future__ import annotations

import importlib.util
import os
import stat

import pytest

from tests.clients.web.conftest import INSTALL, chromium

Skipped, Failed = pytest.skip.Exception, pytest.fail.Exception


def _problem() -> str:
    """What the gate reports on a PATH without Chromium (the playwright package is checked second)."""
    if importlib.util.find_spec("playwright") is None:
        return f"the playwright package is missing: {INSTALL}"
    return f"no Chromium on PATH: {INSTALL}"


def test_without_chromium_on_path_the_browser_tests_skip_saying_how_to_install_it(tmp_path):
    with pytest.raises(Skipped) as skipped:
        chromium({"PATH": str(tmp_path)})
    assert skipped.value.msg == _problem()
    assert "apt-get install -y chromium" in skipped.value.msg


def test_with_ssald_require_browser_they_fail_instead(tmp_path):
    with pytest.raises(Failed) as failed:
        chromium({"PATH": str(tmp_path), "SSALD_REQUIRE_BROWSER": "1"})
    assert failed.value.msg == f"SSALD_REQUIRE_BROWSER=1 and {_problem()}"
    with pytest.raises(Skipped):  # only "1" requires it
        chromium({"PATH": str(tmp_path), "SSALD_REQUIRE_BROWSER": "0"})


def test_a_chromium_on_path_is_the_one_used(tmp_path):
    pytest.importorskip("playwright.sync_api", reason=f"the playwright package is missing: {INSTALL}")
    for name in ("chromium-browser", "chromium"):
        folder = tmp_path / name
        folder.mkdir()
        fake = folder / name
        fake.write_text("#!/bin/sh\n")
        fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
        assert chromium({"SSALD_REQUIRE_BROWSER": "1"}, path=str(folder)) == str(fake)
    both = os.pathsep.join([str(tmp_path / "chromium-browser"), str(tmp_path / "chromium")])
    assert chromium({"PATH": both}) == str(tmp_path / "chromium" / "chromium")  # chromium first
