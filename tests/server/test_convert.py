"""``bounded_message``: what a status message may carry (issue 15, fault 7), without a server."""

from __future__ import annotations

from server.convert import MAX_STATUS_BYTES, bounded_message


def test_short_messages_pass_unchanged() -> None:
    assert bounded_message("objid 7 is not in the objects table") == "objid 7 is not in the objects table"


def test_lance_sql_and_build_locations_are_removed_and_the_filter_kept() -> None:
    raw = (
        "bad filter '(z >)': Invalid user input: Error parsing statement: SELECT 1 FROM t WHERE ((z >)) "
        "(sql parser error: Expected: an expression, found: )), /home/runner/work/lance/rust/lance/src/sql.rs:109:22"
    )
    out = bounded_message(raw)
    assert "SELECT" not in out and "/home/" not in out and ".rs:" not in out
    assert "(z >)" in out and "sql parser error" in out


def test_absolute_server_paths_become_placeholders() -> None:
    assert bounded_message("no table in /srv/ssald/db.lance/objects") == "no table in <path>"


def test_lists_runs_and_length_are_bounded() -> None:
    listed = bounded_message("missing: " + ", ".join(str(i) for i in range(1000, 1100)))
    assert listed == "missing: " + ", ".join(str(i) for i in range(1000, 1010)) + " and 90 more"
    run = bounded_message("x" * 10_000)
    assert "[9880 characters]" in run and len(run) < 300
    spaced = bounded_message("é > 0 AND " * 10_000)
    assert len(spaced.encode()) <= MAX_STATUS_BYTES and spaced.endswith("bytes in all]")
