"""HTTP answers of the web app: table results as JSON or a table file, and failed RPCs as HTTP errors.

Every table result comes as JSON by default or, with ``format=``, as one of :data:`clients.tables.FORMATS`
(CSV, VOTable, FITS, Parquet) with its media type and a download filename. In JSON, the 64-bit
identifiers (``objid``, ``specobjid``) are decimal strings, as in protobuf's JSON mapping, so that a
browser's JavaScript keeps all their digits; ``GET`` parameters accept them as numbers.

A failed RPC answers with the HTTP status of its gRPC code (:data:`HTTP_STATUS`) and the server's own
message: ``{"error": MESSAGE, "code": "NOT_FOUND"}``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from fastapi.responses import JSONResponse, Response

from clients.client import GalaxyObject
from clients.errors import SsaldError
from clients.tables import FORMATS, objects_table, table_bytes

__all__ = [
    "HTTP_STATUS",
    "ID_FIELDS",
    "TableFormat",
    "error_response",
    "jsonable",
    "table_response",
]

#: The HTTP status of each gRPC status code a call can fail with; any other code is 502 (the server failed).
HTTP_STATUS = {
    "INVALID_ARGUMENT": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "FAILED_PRECONDITION": 409,
    "RESOURCE_EXHAUSTED": 429,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}

#: Fields that hold 64-bit identifiers: strings in JSON.
ID_FIELDS = frozenset({"objid", "specobjid"})

#: The ``format`` query parameter of every table result.
TableFormat = Literal["json", "csv", "votable", "fits", "parquet"]


def jsonable(value: Any) -> Any:
    """``value`` (dataclasses, lists, dicts, datetimes) as plain JSON values, identifiers as strings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {
            k: (str(v) if k in ID_FIELDS and v is not None else jsonable(v)) for k, v in value.items()
        }  # fmt: skip
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _without_embedding(value: Any) -> Any:
    # Neighbours and the like never carry an embedding; leave the always-null key out of their JSON.
    data = jsonable(value)
    if isinstance(data, dict) and data.get("embedding", 0) is None:
        del data["embedding"]
    return data


def table_response(
    objects: Sequence[GalaxyObject],
    fmt: str,
    name: str,
    key: str,
    row_type: type[GalaxyObject] = GalaxyObject,
    extra: dict[str, Any] | None = None,
    columns: dict[str, list[Any]] | None = None,
) -> Response:
    """A table result: ``{key: [rows], **extra}`` as JSON, or the rows as a file of format ``fmt``.

    Parameters
    ----------
    objects : sequence of GalaxyObject
        The rows, all of ``row_type``.
    fmt : str
        ``json`` or a key of :data:`clients.tables.FORMATS`.
    name : str
        Stem of the download filename, e.g. ``similar-1237648720693755918``.
    key : str
        The JSON key of the rows, e.g. ``neighbours``.
    row_type : type
        The class of the rows, which gives the columns of an empty table.
    extra : dict, optional
        More JSON members (e.g. ``n_found``); not in the table files.
    columns : dict, optional
        More columns, one value per row (e.g. cross-match marks): members of each JSON row, columns of the
        table files.
    """
    columns = columns or {}
    if fmt == "json":
        rows = [_without_embedding(o) for o in objects]
        for column, values in columns.items():
            for row, value in zip(rows, values):
                row[column] = value
        return JSONResponse({key: rows, **jsonable(extra or {})})
    suffix, media_type = FORMATS[fmt]
    table = objects_table(objects, row_type)
    for column, values in columns.items():
        table[column] = [float("nan") if v is None else v for v in values] if len(values) else []
    body = table_bytes(table, fmt)
    return Response(
        body, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{name}{suffix}"'}
    )


def error_response(error: SsaldError) -> JSONResponse:
    """The HTTP answer of a failed call: its gRPC code's status and the server's message."""
    status = HTTP_STATUS.get(error.code, 502)
    return JSONResponse({"error": str(error), "code": error.code}, status_code=status)
