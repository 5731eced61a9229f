"""The limits table in ``proto/ssald.proto``'s header gives the value of each constant it names, and names every
limit the server enforces (issue 15): the documentation of the limits cannot drift from the code."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest

PROTO = Path(__file__).resolve().parents[2] / "proto" / "ssald.proto"
README = PROTO.parents[1] / "README.md"

# A row of the table: "//   <what>   <value> [MiB]   <module.path.CONSTANT>".
_ROW = re.compile(r"^//   (?P<what>\S.*?)\s{2,}(?P<value>2\^\d+|\d+)(?P<mib> MiB)?\s{2,}(?P<name>[a-z_]+(?:\.\w+)+)$")

# Every limit issue 15 asks the header to document: these rows may change value, never disappear.
REQUIRED = {
    "server.options.Limits.max_receive_bytes",
    "server.options.Limits.max_send_bytes",
    "clients.client.MAX_MESSAGE_BYTES",
    "server.options.Limits.max_concurrent_rpcs",
    "ssald_index.filters.MAX_WHERE_CHARS",
    "ssald_index.filters.MAX_WHERE_DEPTH",
    "ssald_index.filters.MAX_WHERE_TERMS",
    "ssald_index.filters.MAX_WHERE_OPERATORS",
    "encoders.stamps.stamp.MAX_STAMP_BYTES",
    "encoders.stamps.stamp.MAX_STAMP_SIDE",
    "encoders.stamps.stamp.MAX_STAMP_VALUES",
    "ssald_index.active.labels.MAX_LABELS_PER_CALL",
    "ssald_index.active.labels.MAX_LABEL_LENGTH",
    "ssald_index.search.MAX_K",
    "ssald_index.batch.MAX_BATCH_INPUTS",
}


def header() -> str:
    """The comment block above ``syntax = "proto3";``."""
    text = PROTO.read_text()
    return text[: text.index('syntax = "proto3";')]


def documented_limits(text: str) -> dict[str, tuple[str, int]]:
    """``{constant: (what, value)}`` of every row of the limits table in ``text``."""
    rows = {}
    for line in text.splitlines():
        match = _ROW.match(line)
        if match is None:
            continue
        base, _, exponent = match["value"].partition("^")
        value = int(base) ** int(exponent) if exponent else int(base)
        rows[match["name"]] = (match["what"], value * 2**20 if match["mib"] else value)
    return rows


def constant(dotted: str) -> Any:
    """The value named by ``package.module.NAME`` or ``package.module.Class.field`` (a dataclass default)."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            value: Any = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            value = getattr(value, name)
        return value
    raise ModuleNotFoundError(f"no module in {dotted!r}")


def test_the_table_is_read_as_written() -> None:
    rows = documented_limits(
        "//   request message (server)   65 MiB   server.options.Limits.max_receive_bytes\n"
        "//   values                     2^24     encoders.stamps.stamp.MAX_STAMP_VALUES\n"
        "// prose that names 8192 (ssald_index.filters.MAX_WHERE_CHARS) is not a row\n"
    )
    assert rows == {
        "server.options.Limits.max_receive_bytes": ("request message (server)", 65 * 2**20),
        "encoders.stamps.stamp.MAX_STAMP_VALUES": ("values", 2**24),
    }


def test_every_limit_is_documented() -> None:
    missing = REQUIRED - set(documented_limits(header()))
    assert not missing, f"proto/ssald.proto's limits table lacks {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(documented_limits(header())))
def test_each_documented_value_is_the_constants(name: str) -> None:
    what, value = documented_limits(header())[name]
    actual = constant(name)
    assert actual == value, f"proto/ssald.proto says {what} is {value}, but {name} is {actual!r}"


def test_readme_states_the_same_limits() -> None:
    """README's "Serving on a network" gives the main limits with the same values."""
    readme = README.read_text()
    section = readme[readme.index("### Serving on a network") :]
    section = section[: section.index("\n### ", 1)]
    limits = documented_limits(header())
    for name in (
        "server.options.Limits.max_concurrent_rpcs",
        "ssald_index.filters.MAX_WHERE_CHARS",
        "ssald_index.filters.MAX_WHERE_DEPTH",
        "ssald_index.filters.MAX_WHERE_TERMS",
        "ssald_index.filters.MAX_WHERE_OPERATORS",
        "encoders.stamps.stamp.MAX_STAMP_SIDE",
        "ssald_index.active.labels.MAX_LABELS_PER_CALL",
        "ssald_index.active.labels.MAX_LABEL_LENGTH",
    ):
        value = limits[name][1]
        assert re.search(rf"\b{value:,}\b|\b{value}\b", section), f"README's limits lack {name} = {value}"
    for mib in ("server.options.Limits.max_receive_bytes", "encoders.stamps.stamp.MAX_STAMP_BYTES"):
        assert f"{limits[mib][1] // 2**20} MiB" in section, f"README's limits lack {mib}"
